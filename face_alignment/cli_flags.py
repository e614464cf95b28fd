"""The flags several commands share, defined once: which model runs and how
(:func:`add_model_arguments`, turned into a :class:`~face_alignment.config.ModelConfig` by
:func:`config_from_args`), and how faces are followed through a video
(:func:`add_tracking_arguments`)."""
import argparse
from typing import Optional, Sequence

from .backends.context import CONTEXTS, TYPE_CONFIGS, default_context_name
from .backends.registry import DEFAULT_PRECISION, PRECISIONS
from .cli_support import non_negative_int, positive_int
from .config import DEFAULT_BATCH_SIZE, DEFAULT_MAX_FACES, ModelConfig
from .errors import FaceAlignmentError
from .pipeline.decode import DECODE_METHODS
from .plugins import FORM, is_reference
from .pipeline.image import MAX_IMAGE_PIXELS
from .registry import AUTHORS_REFERENCE_SCALE, MODULE_COUNTS
from .validation import check_reference_scale
from .video.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF
from .video.tracking import DEFAULT_DETECT_EVERY


def _reference_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = text
    try:
        return check_reference_scale(value)
    except FaceAlignmentError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def detector_name(text: str) -> str:
    """argparse type: a face detector's registry name, or a class of the user's as
    ``package.module:Class`` (imported when the detector is built)."""
    from .detection.registry import DETECTORS, is_detector_name

    if not is_detector_name(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(DETECTORS)}, "
                                         f"or a class of your own as {FORM}")
    return text


def _backend_name(text: str) -> str:
    from .backends.registry import BACKENDS

    if text in BACKENDS or is_reference(text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(BACKENDS)} or a {FORM}")


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
            type=_reference_scale, default=AUTHORS_REFERENCE_SCALE,
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


def add_tracking_arguments(group) -> None:
    """How faces are followed through a video: the flags of model_inference.py --test-video
    and of the dataset command."""
    group.add_argument("--detect-every", type=positive_int, default=DEFAULT_DETECT_EVERY, metavar="N",
                       help="run the face detector every N frames (and after a track is lost); in between, "
                       "boxes follow each face's landmarks (default: %(default)s; 1: detect every frame)")
    group.add_argument("--smooth", action="store_true", help="One Euro filter on each track's landmarks")
    group.add_argument("--smooth-min-cutoff", type=float, default=DEFAULT_MIN_CUTOFF, metavar="HZ",
                       help="its cutoff for a still face: lower smooths more (default: %(default)s)")
    group.add_argument("--smooth-beta", type=float, default=DEFAULT_BETA, metavar="B",
                       help="how fast the cutoff rises with speed: higher lags less (default: %(default)s)")


def check_model_options(args) -> None:
    """Model flags that would be silently ignored: refused before anything is loaded."""
    if args.resnet_depth_model and not args.landmarks_3d:
        raise FaceAlignmentError(f"--resnet-depth-model {args.resnet_depth_model}: ResNetDepth gives 3D landmarks' z; "
                                 "expected --landmarks-type-3D with it (or leave it out for 2D)")
    if args.detector_threshold is not None:
        from .detection.registry import default_detector, detector_class

        detector = args.detector or default_detector(args.context)
        check = getattr(detector_class(detector), "check_threshold", None)
        if check is not None:
            check(args.detector_threshold, "--detector-threshold")
