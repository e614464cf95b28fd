"""Every model variant and every published weight file, as data in one place.

An :class:`Architecture` says how to build and use a network: which graph, how many
hourglass modules, which pooling, which crop convention and which heatmap decoding suits it.
A :class:`KnownWeights` entry says where a weight file lives, what format it is in and which
architecture it fits. Code elsewhere looks things up here instead of branching on names.
"""
import re
from dataclasses import dataclass, replace
from typing import Dict, Optional

from .errors import UnknownArchitectureError
from .shapes import CROP_SIZE, NUM_LANDMARKS

FAN = "fan"
RESNET_DEPTH = "resnet_depth"

# Crop conventions (see face_alignment.pipeline.crop).
CROP_AUTHORS = "authors"  # box centre moved up 0.12 h, square of 200 * (w + h) / 195
AUTHORS_REFERENCE_SCALE = 195.0  # the authors' crop divisor: face-alignment's for SFD, BlazeFace and dlib boxes
CROP_IBUG = "ibug"  # square of mean(w, h) / 0.55 around the box centre

# What each field of an Architecture may be: weight files record them, and are checked against these.
KINDS = (FAN, RESNET_DEPTH)
MODULE_COUNTS = (1, 2, 3, 4)  # hourglass modules a FAN may have
POOLINGS = ("avg", "max")
LANDMARK_TYPES = ("2D", "3D")
CROP_CONVENTIONS = (CROP_AUTHORS, CROP_IBUG)
# The Architecture fields that size a FAN beyond its modules and pooling (ibug's configuration).
FAN_SIZES = ("input_size", "hg_features", "hg_depth", "instance_norm", "stem_kernel", "stem_stride", "stem_pool",
             "num_landmarks")


@dataclass(frozen=True)
class Architecture:
    name: str
    kind: str  # FAN or RESNET_DEPTH
    num_modules: int = 4  # hourglass modules, one of MODULE_COUNTS (FAN only)
    pooling: str = "avg"  # one of POOLINGS, in the stem and inside the hourglasses (FAN only)
    landmarks: str = "2D"  # what the heatmaps are: "2D" contour points or "3D" projections
    crop: str = CROP_AUTHORS  # one of CROP_CONVENTIONS
    decode: str = "centroid"  # default heatmap decoding
    description: str = ""
    # The sizes of ibug's trainable FAN (its FAN.create_config); the defaults are every published FAN's.
    input_size: int = CROP_SIZE  # side of the square crop the network takes
    hg_features: int = 256  # channels inside the hourglasses
    hg_depth: int = 4  # levels of each hourglass
    instance_norm: bool = False  # InstanceNorm (no parameters) in place of BatchNorm
    stem_kernel: int = 7  # the first convolution's kernel
    stem_stride: int = 2  # ... and stride
    stem_pool: int = 2  # the stem's pooling kernel (1: none)
    num_landmarks: int = NUM_LANDMARKS  # heatmaps the network predicts

    @property
    def heatmap_size(self) -> int:
        """Side of the heatmaps: the input over the stem's stride and pooling."""
        return self.input_size // (self.stem_stride * max(self.stem_pool, 1))

    def custom_sizes(self) -> dict:
        """The FAN_SIZES fields that differ from the published networks' (a trained variant's)."""
        if self.kind != FAN:
            return {}
        return {name: getattr(self, name) for name in FAN_SIZES if getattr(self, name) != getattr(Architecture, name)}

    def graph_options(self) -> dict:
        """What face_alignment.nets.build_graph takes, besides the kind, to build this network."""
        if self.kind != FAN:
            return {}
        return {name: getattr(self, name) for name in ("num_modules", "pooling") + FAN_SIZES if name != "input_size"}


ARCHITECTURES: Dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("2DFAN4", FAN, 4, "avg", "2D", CROP_AUTHORS,
                     description="authors' 2D-FAN, 4 hourglasses"),
        Architecture("3DFAN4", FAN, 4, "avg", "3D", CROP_AUTHORS,
                     description="authors' 3D-FAN (2D projection of 3D points), 4 hourglasses"),
        Architecture("ResNetDepth", RESNET_DEPTH, landmarks="3D", crop=CROP_AUTHORS,
                     description="authors' depth regressor for 3D-FAN (ResNet-152 bottlenecks)"),
        Architecture("ibug-2dfan2", FAN, 2, "max", "2D", CROP_IBUG,
                     description="ibug's 2D-FAN, 2 hourglasses, max pooling"),
        Architecture("ibug-2dfan2_alt", FAN, 2, "max", "2D", CROP_IBUG,
                     description="ibug's alternative 2D-FAN, 2 hourglasses, max pooling"),
        Architecture("ibug-2dfan4", FAN, 4, "avg", "2D", CROP_IBUG,
                     description="ibug's 2D-FAN, 4 hourglasses, average pooling"),
    )
}

# On-disk formats of the weights people download.
FORMAT_TORCH_LEGACY = "torch-legacy"  # pre-zip torch.save of a state dict (.pth.tar)
FORMAT_TORCH_DEPTH = "torch-depth"  # {"state_dict": {"module.…": …}, …} (.pth.tar)
FORMAT_TORCHSCRIPT = "torchscript"  # torch.jit archive (.zip), face-alignment 1.3.x
FORMAT_TORCH = "torch"  # plain state dict (.pth), ibug
FORMAT_NNABLA_H5 = "nnabla-h5"  # ready to load: nnabla-examples' published files

_AUTHORS = "https://www.adrianbulat.com/downloads/python-fan/"
_NNABLA = "https://nnabla.org/pretrained-models/nnabla-examples/face-alignment/"
_IBUG = "https://github.com/hhj1897/face_alignment/raw/master/ibug/face_alignment/fan/weights/"


@dataclass(frozen=True)
class KnownWeights:
    name: str
    file_name: str
    url: str
    format: str
    arch: str

    @property
    def sha256_prefix(self) -> Optional[str]:
        """The hex digits after the dash in torch.hub-style names ("2DFAN4-11f355bf06.pth.tar"):
        by that convention the start of the file's sha256."""
        m = re.match(r"^[^-]+-([0-9a-f]{8,})\.", self.file_name)
        return m.group(1) if m else None

    @property
    def needs_conversion(self) -> bool:
        return self.format != FORMAT_NNABLA_H5

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.arch]


KNOWN_WEIGHTS: Dict[str, KnownWeights] = {
    w.name: w
    for w in (
        KnownWeights("2DFAN4", "2DFAN4-11f355bf06.pth.tar", _AUTHORS + "2DFAN4-11f355bf06.pth.tar",
                     FORMAT_TORCH_LEGACY, "2DFAN4"),
        KnownWeights("3DFAN4", "3DFAN4-7835d9f11d.pth.tar", _AUTHORS + "3DFAN4-7835d9f11d.pth.tar",
                     FORMAT_TORCH_LEGACY, "3DFAN4"),
        KnownWeights("depth", "depth-2a464da4ea.pth.tar", _AUTHORS + "depth-2a464da4ea.pth.tar",
                     FORMAT_TORCH_DEPTH, "ResNetDepth"),
        KnownWeights("2DFAN4-torchscript", "2DFAN4-cd938726ad.zip", _AUTHORS + "2DFAN4-cd938726ad.zip",
                     FORMAT_TORCHSCRIPT, "2DFAN4"),
        KnownWeights("3DFAN4-torchscript", "3DFAN4-4a694010b9.zip", _AUTHORS + "3DFAN4-4a694010b9.zip",
                     FORMAT_TORCHSCRIPT, "3DFAN4"),
        KnownWeights("depth-torchscript", "depth-6c4283c0e0.zip", _AUTHORS + "depth-6c4283c0e0.zip",
                     FORMAT_TORCHSCRIPT, "ResNetDepth"),
        KnownWeights("2DFAN4-nnabla", "2DFAN4_NNabla_model.h5", _NNABLA + "2DFAN4_NNabla_model.h5",
                     FORMAT_NNABLA_H5, "2DFAN4"),
        KnownWeights("3DFAN4-nnabla", "3DFAN4_NNabla_model.h5", _NNABLA + "3DFAN4_NNabla_model.h5",
                     FORMAT_NNABLA_H5, "3DFAN4"),
        KnownWeights("depth-nnabla", "Resnet_Depth_NNabla_model.h5",
                     _NNABLA + "Resnet_Depth_NNabla_model.h5", FORMAT_NNABLA_H5, "ResNetDepth"),
        KnownWeights("ibug-2dfan2", "2dfan2.pth", _IBUG + "2dfan2.pth", FORMAT_TORCH, "ibug-2dfan2"),
        KnownWeights("ibug-2dfan2_alt", "2dfan2_alt.pth", _IBUG + "2dfan2_alt.pth", FORMAT_TORCH,
                     "ibug-2dfan2_alt"),
        KnownWeights("ibug-2dfan4", "2dfan4.pth", _IBUG + "2dfan4.pth", FORMAT_TORCH, "ibug-2dfan4"),
    )
}


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}; expected one of {', '.join(ARCHITECTURES)}") from None


def known_weights(name: str) -> KnownWeights:
    try:
        return KNOWN_WEIGHTS[name]
    except KeyError:
        raise UnknownArchitectureError(
            f"unknown model {name!r}; expected one of {', '.join(KNOWN_WEIGHTS)}") from None


def _stem(file_name: str) -> str:
    """"2DFAN4-11f355bf06.pth.tar" -> "2DFAN4", "2dfan2_alt.pth" -> "2dfan2_alt"."""
    return re.split(r"[-.]", file_name, maxsplit=1)[0]


def weights_for_file(file_name: str) -> Optional[KnownWeights]:
    """The published weights a file's name says it holds: the exact published name, else the
    longest published stem the name starts with, followed by anything but a letter or digit
    ("2DFAN4-rand.pth.tar", "2DFAN4.h5", "2dfan2_alt-finetuned.pth", but not "2DFAN40.pth").
    Case matters: "2DFAN4" is the authors', "2dfan4" is ibug's."""
    for w in KNOWN_WEIGHTS.values():
        if w.file_name == file_name:
            return w
    named = [w for w in KNOWN_WEIGHTS.values()
             if re.match(re.escape(_stem(w.file_name)) + r"(?![A-Za-z0-9])", file_name)]
    return max(named, key=lambda w: len(_stem(w.file_name)), default=None)


# What a FAN whose name says nothing is taken to be, by its number of hourglass modules:
# nnabla-examples' converter takes any FAN-4 for the authors' 2DFAN4, and ibug's two FAN-2
# files (2dfan2, 2dfan2_alt) share one configuration.
DEFAULT_FAN = {4: "2DFAN4", 2: "ibug-2dfan2"}


def default_architecture(kind: str, num_modules: Optional[int]) -> Architecture:
    """The architecture weights of ``kind`` (and ``num_modules``) are taken to be when nothing
    names it: ResNetDepth, :data:`DEFAULT_FAN`, or for a module count nobody published the
    authors' FAN with that many hourglasses."""
    if kind == RESNET_DEPTH:
        return ARCHITECTURES["ResNetDepth"]
    if num_modules in DEFAULT_FAN:
        return ARCHITECTURES[DEFAULT_FAN[num_modules]]
    return replace(ARCHITECTURES["2DFAN4"], name=f"FAN{num_modules}", num_modules=num_modules,
                   description=f"authors' FAN, {num_modules} hourglasses")
