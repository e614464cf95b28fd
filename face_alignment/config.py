"""One model configuration: every option that changes results, with its defaults resolved once.

A :class:`ModelConfig` is built from Python keywords (:meth:`ModelConfig.build`, what
``FaceAlignment(model, ...)`` calls), from command-line flags
(:func:`face_alignment.cli_flags.config_from_args`) or from JSON
(:meth:`ModelConfig.from_json`, what the dataset manifest and its Ray workers hold). Building
resolves every default (the decoding from the architecture, the context and backend from what
is installed and the precision asked for, the detector from the registry), so two configurations that mean the same thing
are equal and serialise identically: a dataset re-run with ``--decode centroid`` spelled out
matches one made without it. Where files are (paths) and which GPU is used do not change
results and are left out of equality; the files' sha256 is in it.

Options that change no result (``--cache-dir``, progress, engines) are not here.
"""
import dataclasses
import json
import numbers
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .backends.context import CONTEXTS, TYPE_CONFIGS, default_context_name
from .backends.registry import BACKENDS, DEFAULT_PRECISION, PRECISIONS, backend_spec, check_target, default_backend
from .errors import FaceAlignmentError, UnknownArchitectureError
from .files import sha256_of
from .pipeline.decode import DECODE_METHODS
from .pipeline.image import MAX_IMAGE_PIXELS
from .registry import AUTHORS_REFERENCE_SCALE, CROP_AUTHORS, FAN, MODULE_COUNTS, RESNET_DEPTH
from .shapes import CROP_SIZE, HEATMAP_SIZE
from .validation import check_positive_int, check_reference_scale, check_whole_number

DEFAULT_BATCH_SIZE = 8
# Faces landmarked per image at most, the detector's best: a detector gone wrong (random
# weights found 9,374 "faces" in one portrait) must not run FAN for many minutes.
DEFAULT_MAX_FACES = 100


@dataclass(frozen=True)
class ModelConfig:
    """What a FaceAlignment computes with. Build it with :meth:`build`,
    :func:`~face_alignment.cli_flags.config_from_args` or :meth:`from_json`: they resolve
    defaults; the fields hold only resolved values."""

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
    reference_scale: float = AUTHORS_REFERENCE_SCALE
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
        # Numbers as they are used (an int scale as a float, numpy's integers as ints), each by
        # its rule: a configuration is checked, and serialises the same, however it was made.
        for name, rule in _NUMBER_RULES.items():
            object.__setattr__(self, name, rule(name, getattr(self, name)))
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


def _optional(rule):
    return lambda name, value: None if value is None else rule(name, value)


def _score(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FaceAlignmentError(f"{name}: got {value!r}; expected a number")
    return float(value)


# The rules of the numbers, each returning the value as used.
_NUMBER_RULES = {
    "reference_scale": lambda name, value: check_reference_scale(value),
    "batch_size": check_positive_int,
    "max_pixels": check_positive_int,
    "max_faces": check_positive_int,
    "device_id": lambda name, value: check_whole_number(name, value, 0),
    "detector_max_side": _optional(check_positive_int),
    "detector_threshold": _optional(_score),
}
# What each other field may hold, checked on every configuration however it was made (a JSON
# file edited by hand included): (types, allowed values or None).
_OPTIONAL_STR = (str, type(None))
_FIELD_TYPES = {
    "model": (str,), "model_sha256": (str,), "arch": (str,), "network_size": (int,), "decode": (str,),
    "detector": (str,), "backend": (str,), "context": (str,), "depth_model": _OPTIONAL_STR,
    "depth_model_sha256": _OPTIONAL_STR, "flip": (bool,), "integer_landmarks": (bool,),
    "detector_model": _OPTIONAL_STR, "detector_model_sha256": _OPTIONAL_STR, "calibrate_boxes": (bool,),
    "type_config": (str,), "precision": (str,),
}
_FIELD_VALUES = {"decode": DECODE_METHODS, "context": CONTEXTS, "type_config": TYPE_CONFIGS,
                 "precision": PRECISIONS, "network_size": MODULE_COUNTS}


def check_option(name: str, value) -> None:
    """Refuse, in one line naming it, a value field ``name`` may not hold."""
    types = _FIELD_TYPES[name]
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise FaceAlignmentError(f"{name}: got {value!r}; expected {' or '.join(t.__name__ for t in types)}")
    allowed = _FIELD_VALUES.get(name)
    if allowed is not None and value not in allowed:
        raise FaceAlignmentError(f"{name} {value!r}: expected one of {', '.join(map(str, allowed))}")


def _check_fields(config: ModelConfig) -> None:
    for name in _FIELD_TYPES:
        check_option(name, getattr(config, name))
    if (config.depth_model is None) != (config.depth_model_sha256 is None):
        raise FaceAlignmentError("model configuration: depth_model and depth_model_sha256 go together")


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
                 reference_scale: float = AUTHORS_REFERENCE_SCALE, batch_size: int = DEFAULT_BATCH_SIZE,
                 backend: Optional[str] = None, precision: Optional[str] = None,
                 max_pixels: Optional[int] = None, max_faces: int = DEFAULT_MAX_FACES) -> Tuple[ModelConfig, Any, Any]:
    """(configuration, FAN Weights, ResNetDepth Weights or None): the options checked, every
    default resolved, the weight files checked to hold the right networks (from their
    parameter names: no value is read) and hashed. ``cnn_detector_model`` is the older name
    of ``detector_model``: given alone, as nnabla-examples' --cnn-face-detection-model, it
    means dlib's CNN detector. A ``detector`` given as an object (a Detector, a callable) is
    recorded by its class (:func:`reference_of`)."""
    from .detection.registry import DEFAULT_DETECTOR, as_detector, detector_class
    from .weights import open_weights

    model = _weights_path("model", model)
    depth_model = _weights_path("depth_model", depth_model, optional=True)
    if cnn_detector_model is not None and detector_model is not None and cnn_detector_model != detector_model:
        raise FaceAlignmentError("cnn_detector_model and detector_model: give one (they are the same option)")
    if detector is None:
        detector = "cnn" if cnn_detector_model is not None else DEFAULT_DETECTOR
    detector_model = detector_model if detector_model is not None else cnn_detector_model
    # The detector and context choose what is loaded: checked before they are used. The
    # configuration checks the other options when it is made, before any model is loaded.
    if isinstance(detector, str):
        detector_class(detector)  # an unknown name, or a class that does not import, is refused now
    else:
        as_detector(detector)  # refused now unless a Detector, or a callable image -> boxes
        detector = reference_of(detector)
    if context is not None:
        check_option("context", context)
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
    if (resolved.input_size, resolved.heatmap_size) != (CROP_SIZE, HEATMAP_SIZE):
        raise FaceAlignmentError(
            f"{model}: a FAN of {resolved.input_size}-px input and {resolved.heatmap_size}-px heatmaps; the "
            f"pipeline crops faces to {CROP_SIZE} px and reads {HEATMAP_SIZE}-px heatmaps (train with "
            f"--input-size {CROP_SIZE}); it runs on its own through export_model.py or NNablaNetwork")
    if depth_weights is not None:
        check_3d_fan(model, arch, resolved)
    decode = decode or resolved.decode
    if integer_landmarks and (decode != "argmax" or resolved.crop != CROP_AUTHORS):
        raise FaceAlignmentError("integer landmarks are the authors' rounding: they need decode='argmax' "
                                 f"and the authors' crop ({resolved.name} uses {resolved.crop!r})")
    if detector_model is not None:
        check_detector_model(detector_model)
    config = ModelConfig(
        model=os.path.abspath(model), model_sha256=fan_weights.sha256, arch=resolved.name, network_size=resolved.num_modules,
        decode=decode, detector=detector, backend=backend,
        context=context, depth_model=None if depth_model is None else os.path.abspath(depth_model),
        depth_model_sha256=None if depth_weights is None else depth_weights.sha256, flip=bool(flip),
        integer_landmarks=bool(integer_landmarks), reference_scale=reference_scale,
        detector_model=None if detector_model is None else os.path.abspath(detector_model),
        detector_model_sha256=None if detector_model is None else file_sha256(detector_model),
        detector_threshold=detector_threshold, detector_max_side=detector_max_side,
        calibrate_boxes=bool(calibrate_boxes), device_id=device_id, type_config=type_config, precision=precision,
        batch_size=batch_size, max_pixels=MAX_IMAGE_PIXELS if max_pixels is None else max_pixels,
        max_faces=max_faces)
    return config, fan_weights, depth_weights


def check_detector_model(path: str) -> None:
    """Refuse a detector weight file that is not there, saying what is there instead."""
    if os.path.isdir(path):
        raise FaceAlignmentError(f"{path}: a folder, not a face detector model; expected the detector's weight file")
    if not os.path.isfile(path):
        raise FaceAlignmentError(f"{path}: no such face detector model")


def reference_of(detector) -> str:
    """What a configuration records of a detector given as an object: its class (or, for a
    function, the function) as "module:name"."""
    named = detector if callable(detector) and hasattr(detector, "__qualname__") else type(detector)
    return f"{named.__module__}:{named.__qualname__}"


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
        check_detector_model(config.detector_model)
        found.append(("detector_model", config.detector_model, file_sha256(config.detector_model),
                      config.detector_model_sha256))
    for name, path, sha256, expected in found:
        if sha256 != expected:
            raise FaceAlignmentError(f"{path}: holds other weights than the configuration's {name} "
                                     f"(sha256 {sha256[:12]}..., expected {expected[:12]}...)")
    return fan, depth
