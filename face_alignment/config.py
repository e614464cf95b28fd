"""One model configuration: every option that changes results, with its defaults resolved once.

A :class:`ModelConfig` is built from Python keywords (:meth:`ModelConfig.build`, what
``FaceAlignment(model, ...)`` calls), from command-line flags (:func:`add_model_arguments`,
the one definition every command shares, then :func:`config_from_args`) or from JSON
(:meth:`ModelConfig.from_json`, what the dataset manifest and its Ray workers hold). Building
resolves every default (the decoding from the architecture, the context and backend from what
is installed and the precision asked for, the detector from the registry), so two configurations that mean the same thing
are equal and serialise identically: a dataset re-run with ``--decode centroid`` spelled out
matches one made without it. Where files are (paths) and which GPU is used do not change
results and are left out of equality; the files' sha256 is in it.

Options that change no result (``--cache-dir``, progress, engines) are not here.
"""
import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .backends.context import CONTEXTS, TYPE_CONFIGS, default_context_name
from .backends.registry import BACKENDS, DEFAULT_PRECISION, PRECISIONS, backend_spec, check_target, default_backend
from .cli_support import detector_name, non_negative_int, positive_int
from .errors import FaceAlignmentError, UnknownArchitectureError
from .files import sha256_of
from .pipeline.decode import DECODE_METHODS
from .pipeline.image import MAX_IMAGE_PIXELS
from .registry import CROP_AUTHORS, FAN, MODULE_COUNTS, RESNET_DEPTH
from .validation import check_positive_int, check_reference_scale, check_whole_number

DEFAULT_REFERENCE_SCALE = 195.0
DEFAULT_BATCH_SIZE = 8
# Faces landmarked per image at most, the detector's best: a detector gone wrong (random
# weights found 9,374 "faces" in one portrait) must not run FAN for many minutes.
DEFAULT_MAX_FACES = 100


@dataclass(frozen=True)
class ModelConfig:
    """What a FaceAlignment computes with. Build it with :meth:`build`, :func:`config_from_args`
    or :meth:`from_json`: they resolve defaults; the fields hold only resolved values."""

    model: str = field(compare=False)  # FAN weights (.h5), absolute path
    model_sha256: str
    arch: str  # the FAN's architecture (registry name or what the file records)
    network_size: int  # its hourglass modules
    decode: str  # one of DECODE_METHODS
    detector: str  # a name of detection.DETECTORS, or "package.module:Class"
    backend: str  # a registered backend or "package.module:Class"
    context: str  # one of CONTEXTS
    depth_model: Optional[str] = field(default=None, compare=False)  # ResNetDepth weights: 3D landmarks
    depth_model_sha256: Optional[str] = None
    flip: bool = False
    integer_landmarks: bool = False
    reference_scale: float = DEFAULT_REFERENCE_SCALE
    detector_model: Optional[str] = field(default=None, compare=False)  # the detector's weights, if given
    detector_model_sha256: Optional[str] = None
    detector_threshold: Optional[float] = None  # None: the detector's own
    detector_max_side: Optional[int] = None  # None: the detector's own
    calibrate_boxes: bool = True  # detections mapped onto the crop's boxes (detection.registry.crop_relation)
    device_id: int = field(default=0, compare=False)
    type_config: str = "float"
    precision: str = DEFAULT_PRECISION
    batch_size: int = DEFAULT_BATCH_SIZE
    max_pixels: int = MAX_IMAGE_PIXELS
    max_faces: int = DEFAULT_MAX_FACES  # per image, of those the detector finds (best first)

    def __post_init__(self):
        _check_fields(self)

    @property
    def is_3d(self) -> bool:
        return self.depth_model_sha256 is not None

    # -- building -----------------------------------------------------------------------

    @classmethod
    def build(cls, model: str, depth_model: Optional[str] = None, **options) -> "ModelConfig":
        """The configuration ``FaceAlignment(model, depth_model, **options)`` runs with; the
        weight files are checked (names only) and hashed."""
        return build_config(model, depth_model, **options)[0]

    # -- comparing and serialising --------------------------------------------------------

    def differences(self, other: "ModelConfig") -> List[str]:
        """"name old -> new" for each option that changes results and differs in ``other``
        (the older one)."""
        return [f"{f.name} {getattr(other, f.name)!r} -> {getattr(self, f.name)!r}"
                for f in dataclasses.fields(self) if f.compare and getattr(self, f.name) != getattr(other, f.name)]

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ModelConfig":
        if not isinstance(data, dict):
            raise FaceAlignmentError(f"model configuration: got {type(data).__name__}; expected an object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FaceAlignmentError(f"model configuration: unknown option {unknown[0]!r}; expected "
                                     f"{', '.join(sorted(names))}")
        try:
            return cls(**data)
        except TypeError as e:  # a required option left out
            raise FaceAlignmentError(f"model configuration: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise FaceAlignmentError(f"model configuration: not valid JSON ({e})") from None
        return cls.from_dict(data)


# What each field may hold, checked on every configuration however it was made (a JSON file
# edited by hand included): (types, allowed values or None).
_OPTIONAL_STR = (str, type(None))
_FIELD_TYPES = {
    "model": (str,), "model_sha256": (str,), "arch": (str,), "network_size": (int,), "decode": (str,),
    "detector": (str,), "backend": (str,), "context": (str,), "depth_model": _OPTIONAL_STR,
    "depth_model_sha256": _OPTIONAL_STR, "flip": (bool,), "integer_landmarks": (bool,),
    "reference_scale": (float, int), "detector_model": _OPTIONAL_STR, "detector_model_sha256": _OPTIONAL_STR,
    "detector_threshold": (float, int, type(None)), "detector_max_side": (int, type(None)),
    "calibrate_boxes": (bool,), "device_id": (int,),
    "type_config": (str,), "precision": (str,), "batch_size": (int,), "max_pixels": (int,),
    "max_faces": (int,),
}
_FIELD_VALUES = {"decode": DECODE_METHODS, "context": CONTEXTS, "type_config": TYPE_CONFIGS,
                 "precision": PRECISIONS, "network_size": MODULE_COUNTS}


def _check_fields(config: ModelConfig) -> None:
    for name, types in _FIELD_TYPES.items():
        value = getattr(config, name)
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise FaceAlignmentError(f"model configuration: {name} {value!r}: expected "
                                     f"{' or '.join(t.__name__ for t in types)}")
        allowed = _FIELD_VALUES.get(name)
        if allowed is not None and value not in allowed:
            raise FaceAlignmentError(f"{name} {value!r}: expected one of {', '.join(map(str, allowed))}")
    if (config.depth_model is None) != (config.depth_model_sha256 is None):
        raise FaceAlignmentError("model configuration: depth_model and depth_model_sha256 go together")
    check_reference_scale(config.reference_scale)
    check_positive_int("batch_size", config.batch_size)
    check_positive_int("max_pixels", config.max_pixels)
    check_whole_number("device_id", config.device_id, 0)
    if config.detector_max_side is not None:
        check_positive_int("detector_max_side", config.detector_max_side)


_HASHED: Dict[Tuple, str] = {}


def file_sha256(path: str) -> str:
    """``path``'s sha256, remembered in this process while the file is unchanged (same inode,
    size and modification time): building a configuration, then a FaceAlignment from it,
    reads a 235 MB ResNetDepth once."""
    info = os.stat(path)
    key = (os.path.abspath(path), info.st_ino, info.st_size, info.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_of(path)
    return _HASHED[key]


def _hashed(weights):
    """``weights`` with its sha256 taken through :func:`file_sha256`."""
    if weights is not None and weights.path is not None:
        weights.sha256 = file_sha256(weights.path)  # fills the cached property
    return weights


def _weights_path(name: str, path, optional: bool = False) -> Optional[str]:
    if path is None and optional:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise FaceAlignmentError(f"{name}: got {path!r}; expected the path of an NNabla .h5 weight file")
    return os.fspath(path)  # as given: messages name the file as the caller did


def build_config(model: str, depth_model: Optional[str] = None, *, arch: Optional[str] = None,
                 network_size: Optional[int] = None, decode: Optional[str] = None, flip: bool = False,
                 integer_landmarks: bool = False, detector: Optional[str] = None,
                 detector_model: Optional[str] = None, cnn_detector_model: Optional[str] = None,
                 detector_threshold: Optional[float] = None, detector_max_side: Optional[int] = None,
                 calibrate_boxes: bool = True,
                 context: Optional[str] = None, device_id: int = 0, type_config: str = "float",
                 reference_scale: float = DEFAULT_REFERENCE_SCALE, batch_size: int = DEFAULT_BATCH_SIZE,
                 backend: Optional[str] = None, precision: Optional[str] = None,
                 max_pixels: Optional[int] = None, max_faces: int = DEFAULT_MAX_FACES) -> Tuple[ModelConfig, Any, Any]:
    """(configuration, FAN Weights, ResNetDepth Weights or None): the options checked, every
    default resolved, the weight files checked to hold the right networks (from their
    parameter names: no value is read) and hashed. ``cnn_detector_model`` is the older name
    of ``detector_model``: given alone, as nnabla-examples' --cnn-face-detection-model, it
    means dlib's CNN detector."""
    from .detection.registry import DEFAULT_DETECTOR, detector_class
    from .weights import open_weights

    model = _weights_path("model", model)
    depth_model = _weights_path("depth_model", depth_model, optional=True)
    if cnn_detector_model is not None and detector_model is not None and cnn_detector_model != detector_model:
        raise FaceAlignmentError("cnn_detector_model and detector_model: give one (they are the same option)")
    if detector is None:
        detector = "cnn" if cnn_detector_model is not None else DEFAULT_DETECTOR
    detector_model = detector_model if detector_model is not None else cnn_detector_model
    check_positive_int("batch_size", batch_size)
    check_positive_int("max_faces", max_faces)
    check_whole_number("device_id", device_id, 0)
    for name, count in (("max_pixels", max_pixels), ("detector_max_side", detector_max_side)):
        if count is not None:
            check_positive_int(name, count)
    if not isinstance(detector, str):
        raise FaceAlignmentError(f"detector: got {type(detector).__name__}; expected a detector's name")
    detector_class(detector)  # an unknown name, or a class that does not import, is refused now
    if context is not None and context not in CONTEXTS:
        raise FaceAlignmentError(f"context {context!r}: expected one of {', '.join(CONTEXTS)}")
    precision = precision or DEFAULT_PRECISION
    if backend is None and precision != DEFAULT_PRECISION:
        # Below fp32, the backend that runs it (OpenVINO: backends/openvino_net.py, and the
        # accuracy gate of face_alignment.precision).
        backend = next((name for name, spec in BACKENDS.items() if precision in spec.precisions), None)
    # The context a backend asked for by name can run in: its own when the default is not one.
    if context is None:
        context = default_context_name()
        if backend is not None and context not in backend_spec(backend).contexts:
            context = backend_spec(backend).contexts[0]
    backend = backend or default_backend(context)
    check_target(backend_spec(backend), context, precision)
    if type_config == "half" and context != "cudnn":
        # Refused alike on every backend: the CPU ones compute in float, and a configuration
        # recording half for float results would mislead.
        raise FaceAlignmentError(f"type_config 'half' (--type-config half, dtype float16) needs the cudnn context; "
                                 f"{backend} on {context} computes in float")
    # Both files are checked to hold the right networks, and the options below, before any
    # weight is read or any model exported: such a mistake costs no wait.
    try:
        fan_weights = open_weights(model, kind=FAN, num_modules=network_size, arch=arch)
    except UnknownArchitectureError:
        # Not a registry name, but maybe the one the file records: that is no choice at all.
        fan_weights = open_weights(model, kind=FAN, num_modules=network_size)
        if fan_weights.arch.name != arch:
            raise
    fan_weights = _hashed(fan_weights)
    depth_weights = None if depth_model is None else _hashed(open_weights(depth_model, kind=RESNET_DEPTH))
    resolved = fan_weights.arch
    if depth_weights is not None:
        check_3d_fan(model, arch, resolved)
    decode = decode or resolved.decode
    if decode not in DECODE_METHODS:
        raise FaceAlignmentError(f"decode {decode!r}: expected one of {', '.join(DECODE_METHODS)}")
    if integer_landmarks and (decode != "argmax" or resolved.crop != CROP_AUTHORS):
        raise FaceAlignmentError("integer landmarks are the authors' rounding: they need decode='argmax' "
                                 f"and the authors' crop ({resolved.name} uses {resolved.crop!r})")
    if detector_model is not None and not os.path.isfile(detector_model):
        raise FaceAlignmentError(f"{detector_model}: no such face detector model")
    config = ModelConfig(
        model=os.path.abspath(model), model_sha256=fan_weights.sha256, arch=resolved.name, network_size=resolved.num_modules,
        decode=decode, detector=detector, backend=backend,
        context=context, depth_model=None if depth_model is None else os.path.abspath(depth_model),
        depth_model_sha256=None if depth_weights is None else depth_weights.sha256, flip=bool(flip),
        integer_landmarks=bool(integer_landmarks), reference_scale=check_reference_scale(reference_scale),
        detector_model=None if detector_model is None else os.path.abspath(detector_model),
        detector_model_sha256=None if detector_model is None else file_sha256(detector_model),
        detector_threshold=None if detector_threshold is None else float(detector_threshold),
        detector_max_side=detector_max_side, calibrate_boxes=bool(calibrate_boxes), device_id=int(device_id), type_config=type_config,
        precision=precision, batch_size=int(batch_size),
        max_pixels=MAX_IMAGE_PIXELS if max_pixels is None else int(max_pixels), max_faces=int(max_faces))
    return config, fan_weights, depth_weights


def check_3d_fan(model: str, arch: Optional[str], resolved) -> None:
    """Refuse a FAN named as a 2D one (by ``arch``, by what the file records or by its name)
    for 3D landmarks: ResNetDepth's z would be paired with the wrong points. A FAN that
    nothing names (nnabla-examples' files record nothing) is taken as the caller says."""
    if resolved.landmarks != "2D":
        return
    from .registry import weights_for_file
    from .weights.h5 import read_h5_names
    from .weights.loading import ATTR_ARCH

    if arch:
        said_by = "as --arch (arch=) says"
    elif ATTR_ARCH in read_h5_names(model)[1]:
        said_by = "as the file records"
    elif weights_for_file(os.path.basename(model)) is not None:
        said_by = "as its name says; pass --arch if it is not"
    else:
        return
    raise FaceAlignmentError(f"{model}: holds {resolved.name}, a 2D-FAN ({said_by}); 3D landmarks "
                             "(--landmarks-type-3D, a depth model) need a 3D-FAN such as 3DFAN4")


def open_config_weights(config: ModelConfig):
    """(FAN Weights, ResNetDepth Weights or None) of ``config``, each file checked to still
    hold what the configuration was made with (its sha256)."""
    from .weights import open_weights

    from .registry import ARCHITECTURES
    from .weights.h5 import read_h5_names
    from .weights.loading import ATTR_ARCH

    # The architecture is named when the file records none, so that the note on an assumed
    # one, given when the configuration was built, is not given again.
    named = config.arch in ARCHITECTURES and ATTR_ARCH not in read_h5_names(config.model)[1]
    fan = open_weights(config.model, kind=FAN, num_modules=config.network_size, arch=config.arch if named else None)
    if fan.arch.name != config.arch:  # an architecture the caller chose over what the file says
        fan = open_weights(config.model, kind=FAN, num_modules=config.network_size, arch=config.arch)
    fan = _hashed(fan)
    depth = None if config.depth_model is None else _hashed(open_weights(config.depth_model, kind=RESNET_DEPTH))
    found = [("model", fan.path, fan.sha256, config.model_sha256)]
    if depth is not None:
        found.append(("depth_model", depth.path, depth.sha256, config.depth_model_sha256))
    if config.detector_model is not None:
        if not os.path.isfile(config.detector_model):
            raise FaceAlignmentError(f"{config.detector_model}: no such face detector model")
        found.append(("detector_model", config.detector_model, file_sha256(config.detector_model),
                      config.detector_model_sha256))
    for name, path, sha256, expected in found:
        if sha256 != expected:
            raise FaceAlignmentError(f"{path}: holds other weights than the configuration's {name} "
                                     f"(sha256 {sha256[:12]}..., expected {expected[:12]}...)")
    return fan, depth


# -- the command-line flags ---------------------------------------------------------------

def _reference_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = text
    try:
        return check_reference_scale(value)
    except FaceAlignmentError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _backend_name(text: str) -> str:
    from .backends.registry import BACKENDS

    if text in BACKENDS or (":" in text and all(text.partition(":")[::2])):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(BACKENDS)} or a 'package.module:Class'")


def _model_flags(decode_choices: Sequence[str]):
    """(dest, flags, argparse keywords) of every model flag, in the order --help shows them."""
    from .backends.registry import BACKENDS
    from .detection.registry import DEFAULT_DETECTOR, DETECTORS

    return [
        ("model", ("--model", "-m"), dict(help="FAN weights (.h5); default: 2DFAN4_NNabla_model.h5 here, or "
                                          "weights/2DFAN4.h5 (3DFAN4 with --landmarks-type-3D)")),
        ("landmarks_3d", ("--landmarks-type-3D",), dict(
            action="store_true", help="3D landmarks: a 3D-FAN --model and a --resnet-depth-model")),
        ("resnet_depth_model", ("--resnet-depth-model",), dict(
            help="ResNetDepth weights (.h5) for 3D; default: Resnet_Depth_NNabla_model.h5 here, or weights/depth.h5")),
        ("network_size", ("--network-size",), dict(type=int, choices=MODULE_COUNTS,
                                                   help="hourglass modules; default: what the weight file holds")),
        ("arch", ("--arch",), dict(help="architecture, for .h5 files that do not record it (e.g. ibug-2dfan2)")),
        ("reference_scale", ("--reference-scale",), dict(
            type=_reference_scale, default=DEFAULT_REFERENCE_SCALE,
            help="face box size that maps to scale 1 in the authors' crop (default: %(default)s)")),
        ("context", ("--context", "-c"), dict(
            choices=CONTEXTS, help=f"nnabla context (default: {default_context_name()}, or cpu with a backend that "
            "runs only there, such as onnxruntime; cudnn needs nnabla-ext-cuda)")),
        ("backend", ("--backend",), dict(
            type=_backend_name, metavar="{" + ",".join(BACKENDS) + "}",
            help="where the networks run: one of these, or a 'package.module:Class' of your own (default: "
            "onnxruntime where installed, else nnabla; openvino for --precision bf16 and int8; onnxruntime and "
            "openvino run on the CPU and export their model once into the export cache, see --cache-dir)")),
        ("precision", ("--precision",), dict(
            choices=PRECISIONS, default=DEFAULT_PRECISION,
            help="FAN's arithmetic: fp32 (default), or bf16 / int8 on backend openvino (int8 needs a model "
            "that python -m face_alignment.precision wrote after measuring it on your images)")),
        ("device_id", ("--device-id", "-d"), dict(type=non_negative_int, default=0,
                                                  help="GPU id for cudnn (default: %(default)s)")),
        ("type_config", ("--type-config",), dict(choices=TYPE_CONFIGS, default="float",
                                                 help="nnabla computation type (default: %(default)s)")),
        ("cnn_detector_model", ("--cnn-face-detection-model", "--cnn-face-detction-model"), dict(
            metavar="PATH", help="dlib's mmod_human_face_detector.dat; given alone, it selects dlib's cnn detector "
            "(default: looked for here and in weights/)")),
        ("detector", ("--detector",), dict(
            type=detector_name, metavar="NAME",
            help=f"face detector: {', '.join(DETECTORS)}, or package.module:Class of your own "
            f"(default: {DEFAULT_DETECTOR}; cnn with --cnn-face-detection-model)")),
        ("detector_model", ("--detector-model",), dict(
            metavar="PATH", help="the detector's weight file (default: its own, where it needs one)")),
        ("detector_threshold", ("--detector-threshold",), dict(
            type=float, metavar="SCORE", help="drop detections scoring below this (default: the detector's own)")),
        ("raw_detector_boxes", ("--raw-detector-boxes",), dict(
            action="store_true", help="crop the detector's boxes as they are, as face-alignment does (default: "
            "mapped onto the boxes dlib's HOG gives for the same face, the crop the models are used with here)")),
        ("decode", ("--decode",), dict(choices=decode_choices, help="heatmap decoding (default: the architecture's, "
                                                                    "centroid for every one known)")),
        ("integer_landmarks", ("--integer-landmarks",), dict(
            action="store_true", help="with --decode argmax: truncate to integers exactly as the authors' code")),
        ("flip", ("--flip",), dict(action="store_true", help="test-time flip augmentation")),
        ("batch_size", ("--batch-size",), dict(type=positive_int, default=DEFAULT_BATCH_SIZE,
                                               help="faces per forward pass (default: %(default)s)")),
        ("max_pixels", ("--max-pixels",), dict(
            type=positive_int, default=MAX_IMAGE_PIXELS, metavar="N",
            help="refuse images of more pixels than this, told by their header before decoding (default: %(default)s)")),
        ("max_faces", ("--max-faces",), dict(
            type=positive_int, default=DEFAULT_MAX_FACES, metavar="N",
            help="landmark at most the N best faces the detector finds in an image (default: %(default)s)")),
        ("cache_dir", ("--cache-dir",), dict(
            metavar="DIR", help="where exported models are kept (default: $FACE_ALIGNMENT_HOME/exports, "
            "~/.cache/face_alignment/exports; bounded by $FACE_ALIGNMENT_CACHE_MB, 2048 by default)")),
    ]


MODEL_FILE_FLAGS = ("model", "landmarks_3d", "resnet_depth_model")  # what a command that finds its model leaves out


def add_model_arguments(p, exclude: Sequence[str] = (), decode_choices: Sequence[str] = DECODE_METHODS) -> None:
    """The flags that say which model runs and how (weights, 3D, backend, context, precision,
    detector, decoding, flip, batch size, image size limit, export cache), defined once for
    every command; a command leaves out the ``exclude`` ones (by dest), and may offer more
    ``decode_choices`` (evaluate's "both"). :func:`config_from_args` turns them into a ModelConfig."""
    for dest, flags, options in _model_flags(tuple(decode_choices)):
        if dest not in exclude:
            p.add_argument(*flags, dest=dest, **options)


# Flags whose dest is a ModelConfig.build keyword of the same name.
_BUILD_KEYWORDS = ("arch", "network_size", "decode", "flip", "integer_landmarks", "detector", "detector_model",
                   "cnn_detector_model", "detector_threshold", "context", "device_id", "type_config", "reference_scale", "batch_size",
                   "backend", "precision", "max_pixels", "max_faces")


def config_from_args(args: argparse.Namespace, model: str, depth_model: Optional[str] = None,
                     **overrides) -> ModelConfig:
    """The configuration the flags ask for (a flag the command does not have takes its
    default); ``overrides`` replace flags (evaluate's decode)."""
    options = {name: getattr(args, name) for name in _BUILD_KEYWORDS if getattr(args, name, None) is not None}
    options["calibrate_boxes"] = not getattr(args, "raw_detector_boxes", False)
    options.update(overrides)
    return ModelConfig.build(model, depth_model, **options)
