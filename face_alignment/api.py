"""The one object most users need: built once from a model, then one call per image.

    fa = FaceAlignment("weights/2DFAN4.h5")
    landmarks, scores, boxes = fa.get_landmarks_from_image("face.jpg")

With a ResNetDepth model (``depth_model=``) the landmarks are 3D. Faces are found with BlazeFace
unless boxes are given; each image's faces (and, in ``get_landmarks_from_images``, those of
consecutive images) go through the network in batches.
"""
import logging
import os
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .backends import target_of
from .backends.registry import backend_spec, uncalibrated_precision
from .boxes import as_boxes
from .config import ModelConfig, build_config, open_config_weights
from .detection import Detector, as_detector
from .detection.registry import crop_boxes, crop_relation, mapped_relation, planned_placement
from .detection.runtime import describe_target
from .errors import FaceAlignmentError, ImageReadError, UnreadableImageWarning
from .landmarker import Landmarker, Prediction
from .pipeline.decode import DECODE_METHODS
from .pipeline.image import read_image
from .video.box_sources import BoxSource
from .video.landmarks import VideoLandmarks, video_landmarks
from .video.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF, TrackSmoother
from .video.tracking import DEFAULT_DETECT_EVERY, FaceTracker

log = logging.getLogger(__name__)


ImageInput = Union[str, np.ndarray]
# What the methods over many images do with a file that cannot be read, as the command line
# does with a folder: by default a warning names it and the other files go on.
ON_ERROR = ("warn", "yield", "raise")


def _landmarker_attribute(name: str) -> property:
    def get(self):
        return getattr(self.landmarker, name)

    def set(self, value):
        setattr(self.landmarker, name, value)

    return property(get, set, doc=f"the landmarker's ``{name}``")


class FaceAlignment:
    """FAN (and, for 3D, ResNetDepth) with a face detector, ready to landmark images.

    Built from weight files and keywords, ``FaceAlignment(model, depth_model, **options)``, or
    from a :class:`~face_alignment.config.ModelConfig`, ``FaceAlignment.from_config(config)``
    (``config.to_json()`` and ``ModelConfig.from_json`` carry one to another process).

    ``model`` / ``depth_model``: NNabla ``.h5`` files (converted or published). ``decode``:
    "centroid" (default: sub-pixel, from ibug's training code) or "argmax" (the authors');
    ``integer_landmarks`` truncates argmax results to integers exactly as the authors' code
    does. ``flip`` adds the mirrored crop's heatmaps (test-time augmentation). ``detector``:
    a name from :data:`face_alignment.detection.DETECTORS` ("hog", "cnn", ...), a class of your
    own as "package.module:Class", a :class:`~face_alignment.detection.Detector`, any callable
    image -> (N, 4) boxes, or None for the default (BlazeFace, MediaPipe's full-range model;
    dlib's CNN when ``cnn_detector_model`` is given);
    ``detector_model`` its weight file (``cnn_detector_model`` is the older name),
    ``detector_threshold`` its score cut-off, ``detector_max_side`` dlib's image size limit.
    ``calibrate_boxes``: a detector's boxes are mapped onto the boxes dlib's HOG gives for the
    same face (by their ``box_relation``s), the crop the model is used with here; False feeds
    them to the crop as they are, as face-alignment does. Given boxes are never mapped.
    ``context``: "cpu" or "cudnn" (default: cudnn when nnabla's CUDA extension is installed,
    except with a backend that runs only on the CPU, such as "onnxruntime").
    ``backend``: a name of ``face_alignment.backends.BACKENDS`` ("onnxruntime", "nnabla",
    "openvino") or a "package.module:Class" (default: ONNX Runtime where installed, else NNabla;
    OpenVINO below fp32). ONNX Runtime and OpenVINO run on the CPU and export the model once
    into the export cache (``cache_dir``, default ``$FACE_ALIGNMENT_HOME/exports``), where the
    detectors keep their exports too. ``precision``: "fp32" (default), "bf16" or "int8" (OpenVINO's).
    A detector given as an object is used as it is; the configuration records only its class.
    ``max_pixels``: image files with more pixels are refused before decoding (default:
    ``pipeline.image.MAX_IMAGE_PIXELS``, 150 megapixels). The other keywords are those of
    :func:`face_alignment.config.build_config`.
    """

    def __init__(self, model: Optional[str] = None, depth_model: Optional[str] = None, *,
                 cache_dir: Optional[str] = None, detector=None, **options):
        config, fan_weights, depth_weights = build_config(model, depth_model, detector=detector, **options)
        # A detector object (or callable) is used as it is; the configuration records its class.
        self._load(config, (fan_weights, depth_weights), cache_dir,
                   detector=None if isinstance(detector, str) else detector)

    @classmethod
    def from_config(cls, config: ModelConfig, cache_dir: Optional[str] = None) -> "FaceAlignment":
        """The FaceAlignment ``config`` describes; its weight files must still hold what it
        was made with (their sha256). ``cache_dir``: where exported models are kept."""
        if not isinstance(config, ModelConfig):
            raise FaceAlignmentError(f"config: got {type(config).__name__}; expected a ModelConfig")
        face_alignment = cls.__new__(cls)
        face_alignment._load(config, open_config_weights(config), cache_dir)
        return face_alignment

    def _load(self, config: ModelConfig, weights, cache_dir: Optional[str], detector=None) -> None:
        """Ready to run ``config`` with its (FAN, ResNetDepth or None) ``weights``, detecting
        with ``detector`` (None: the one the configuration names)."""
        self.config = config
        self.cache_dir = cache_dir
        self.context = config.context
        self.backend = config.backend
        self.precision = config.precision
        self.max_pixels = config.max_pixels
        self._detector_choice = detector if detector is not None else config.detector
        # The detector runs on the model's target: where is checked now, before the model loads.
        self._detector_options = dict(context=config.context, backend=config.backend, precision=config.precision,
                                      weights=config.detector_model, cache_dir=cache_dir,
                                      threshold=config.detector_threshold, max_side=config.detector_max_side)
        detector_where = planned_placement(self._detector_choice, **self._detector_options)
        self.max_faces = config.max_faces
        # Image and boxes to landmarks; this object adds detection, reading and batching.
        self.landmarker = Landmarker.from_config(config, cache_dir, weights=weights)
        self._detector = None
        self.calibrate_boxes = config.calibrate_boxes
        self._detector_lock = threading.Lock()
        # With a backend that lets go of Python's GIL while it runs (ONNX Runtime, OpenVINO),
        # images are read and their faces detected in a worker thread, up to a batch ahead,
        # while the current batch is inferred; NNabla holds the GIL, so there it gains nothing
        # (docs/speed-and-backends.md).
        self._read_ahead = self.batch_size if backend_spec(config.backend).releases_gil else 0
        depth_precision = uncalibrated_precision(config.precision)
        depth_where = f", ResNetDepth at {depth_precision}" if self.is_3d and depth_precision != config.precision else ""
        log.info("%s (%s) on %s%s, %s decoding%s; detector %s", self.arch.name, "3D" if self.is_3d else "2D",
                 describe_target(self.backend, target_of(config.context, config.precision)), depth_where,
                 self.decode, ", flip" if self.flip else "", detector_where)

    # What the landmarker does with faces, read (and, to wrap a network, set) through this object.
    fan = _landmarker_attribute("fan")
    depth = _landmarker_attribute("depth")
    arch = _landmarker_attribute("arch")
    decode = _landmarker_attribute("decode")
    flip = _landmarker_attribute("flip")
    integer_landmarks = _landmarker_attribute("integer_landmarks")
    reference_scale = _landmarker_attribute("reference_scale")
    batch_size = _landmarker_attribute("batch_size")

    @property
    def is_3d(self) -> bool:
        return self.depth is not None

    @property
    def detector(self) -> Detector:
        """The face detector, built on first use: callers who pass boxes never need it."""
        if self._detector is None:
            self._detector = as_detector(self._detector_choice, **self._detector_options)
        return self._detector

    def detect_faces(self, image: np.ndarray, name: str = "an image") -> np.ndarray:
        """(N, 4) boxes [left, top, right, bottom] of the faces the detector finds in an RGB
        image, best first, mapped onto the crop's boxes (see ``calibrate_boxes``): the best
        ``max_faces`` of them, with a warning naming the image (``name``) if there were more."""
        detector = self.detector
        if detector.thread_safe:
            found = detector.detect(image)
        else:
            with self._detector_lock:  # e.g. dlib's detectors: not safe to run from two threads at once
                found = detector.detect(image)
        if len(found) > self.max_faces:
            log.warning("%s: the detector found %d faces; landmarking the best %d (max_faces)",
                        name, len(found), self.max_faces)
            found = found[:self.max_faces]
        return crop_boxes(detector, found, self.calibrate_boxes)

    def get_landmarks_from_image(self, image_or_path: ImageInput,
                                 boxes: Optional[np.ndarray] = None) -> Prediction:
        """Landmarks of every face in one image (array or path); ``boxes`` (N, 4) skip detection.
        A file that cannot be read raises ImageReadError."""
        return next(self.get_landmarks_from_images([image_or_path], None if boxes is None else [boxes],
                                                   on_error="raise"))

    def get_landmarks_from_images(self, images: Iterable[ImageInput],
                                  boxes: Optional[Sequence[Optional[np.ndarray]]] = None, *,
                                  on_error: str = "warn") -> Iterator[Optional[Prediction]]:
        """One Prediction per image, in order; faces of consecutive images share batches.
        With the onnxruntime backend, a list or tuple of images is read, and its faces
        detected, in a worker thread up to a batch ahead of the network. A file that cannot
        be read gives None in its place and a warning naming it (``on_error``: see ``predict``)."""
        yield from self._predictions(images, boxes, None, on_error)

    def get_landmarks_from_video(self, path: str, *, detect_every: int = DEFAULT_DETECT_EVERY,
                                 boxes: Optional[BoxSource] = None, smooth: bool = False,
                                 smooth_min_cutoff: float = DEFAULT_MIN_CUTOFF,
                                 smooth_beta: float = DEFAULT_BETA) -> Iterator[VideoLandmarks]:
        """One VideoLandmarks per frame of the video at ``path``, in order, streamed: memory
        does not grow with the video's length. Faces are detected on the first frame, every
        ``detect_every`` frames and after a track is lost, and followed by their landmarks in
        between (:class:`~face_alignment.video.tracking.FaceTracker`); ``boxes`` replaces
        that with any other source (a :class:`~face_alignment.video.box_sources.BoxSource`:
        given boxes, a detector of your own). ``smooth`` runs a One Euro filter per track
        over the landmarks it returns (the tracker always sees the raw ones). A video that
        breaks off raises VideoTruncatedError after the frames that decoded.

        The faces of a frame share network batches. So do those of consecutive frames, up to
        ``batch_size`` faces and frames, when the boxes do not depend on earlier landmarks
        (any source but a FaceTracker): a tracked frame's boxes need its predecessor's."""
        source = boxes if boxes is not None else self.face_tracker(detect_every)
        smoother = TrackSmoother(smooth_min_cutoff, smooth_beta) if smooth else None
        return video_landmarks(path, self.landmarker, source, smoother)

    def face_tracker(self, detect_every: int = DEFAULT_DETECT_EVERY, **options) -> FaceTracker:
        """A tracker that detects with this object's ``detect_faces``, its boxes placed as that
        detector's (its ``box_relation``, or the crop's when they are mapped onto it).
        ``options``: FaceTracker's (``min_score``, ``max_misses``, ...)."""
        mapped = mapped_relation(self.detector, self.calibrate_boxes) is not None  # then boxes come as the crop's
        return FaceTracker(self.detect_faces, detect_every,
                           relation=crop_relation() if mapped else self.detector.box_relation, **options)

    def predict(self, images: Iterable[ImageInput], boxes: Optional[Sequence[Optional[np.ndarray]]] = None,
                decodes: Optional[Sequence[str]] = None, *, on_error: str = "warn",
                ) -> Iterator[Optional[Dict[str, Prediction]]]:
        """Like ``get_landmarks_from_images``, with several decodings of the same heatmaps
        (e.g. argmax and centroid, to compare them): one {method: Prediction} per image.
        ``decodes`` defaults to the decoding this object was built with. In 3D every
        decoding shares one z: ResNetDepth runs once per face (see ``Landmarker.depths``).
        A file that cannot be read as an image (missing, cut short, damaged, too large):
        with ``on_error="warn"`` (the default) a warning names it and None takes its place;
        "yield" puts the ImageReadError in its place, silently; "raise" raises it."""
        yield from self._predictions(images, boxes, (self.decode,) if decodes is None else decodes, on_error)

    def _predictions(self, images, boxes, decodes, on_error: str):
        """``_predict``'s results alone, an unreadable file's as ``on_error`` says (None when warned)."""
        for _, _, predictions in self._handled(images, boxes, decodes, on_error):
            yield predictions

    def _handled(self, images, boxes, decodes, on_error: str):
        """``_predict``'s (item, image, result) with an unreadable file handled as ``on_error``
        says: "warn" warns naming it, and gives (item, None, None) in its place."""
        for item, image, predictions in self._predict(images, boxes, decodes, _keeps_going(on_error)):
            if image is None and on_error == "warn":
                _warn_unreadable(predictions)
                predictions = None
            yield item, image, predictions

    def predict_files(self, paths: Iterable[str], boxes: Optional[Sequence[Optional[np.ndarray]]] = None,
                      decodes: Optional[Sequence[str]] = None, *, on_error: str = "warn",
                      ) -> Iterator[Tuple[str, Optional[np.ndarray],
                                          Union[Prediction, Dict[str, Prediction], ImageReadError]]]:
        """Landmarks of image files, yielding (path, RGB image, Prediction), or with ``decodes``
        (several methods on the same heatmaps, as ``predict``) (path, RGB image, {method:
        Prediction}): each image is read once and held only until its landmarks come back. A
        file that cannot be read as an image (missing, cut short, damaged, too large): with
        ``on_error="warn"`` (the default) a warning names it and it is left out, and the
        other files go on; "yield" yields ``(path, None, the ImageReadError)`` in its place
        instead (for callers that report failures themselves); "raise" raises it."""
        for path, image, predictions in self._handled(paths, boxes, decodes, on_error):
            if predictions is not None:  # None: warned about, left out
                yield path, image, predictions

    def _predict(self, images: Iterable[ImageInput], boxes: Optional[Sequence[Optional[np.ndarray]]],
                 decodes: Optional[Sequence[str]] = None, keep_going: bool = False,
                 ) -> Iterator[Tuple[ImageInput, np.ndarray, Union[Prediction, Dict[str, Prediction]]]]:
        """(what the caller gave, RGB image, Prediction, or with ``decodes`` {method:
        Prediction}) per image, in order; with ``keep_going``, (item, None, ImageReadError)
        for a file that cannot be read."""
        images = _as_image_collection(images)
        boxes = _as_box_lists(boxes)
        decodes = None if decodes is None else _as_decodes(decodes)
        # Only a list or tuple of two or more is read ahead: the caller's iterators stay in the
        # caller's thread, where they may have to be (a database cursor), and cannot keep a
        # worker waiting when the caller stops early.
        ahead = min(self._read_ahead, len(images) - 1) if isinstance(images, (list, tuple)) else 0
        pending: List[Tuple[ImageInput, np.ndarray, np.ndarray]] = []
        for item, image, faces in _run_ahead(self._faces(images, boxes, keep_going), ahead):
            pending.append((item, image, faces))
            # A batch of faces, or of images: images without faces must not pile up, decoded.
            if len(pending) >= self.batch_size or sum(len(f) for _, _, f in pending) >= self.batch_size:
                yield from self._landmarks(pending, decodes)
                pending = []
        if pending:
            yield from self._landmarks(pending, decodes)

    def _faces(self, images: Iterable[ImageInput], boxes: Optional[Sequence[Optional[np.ndarray]]],
               keep_going: bool = False):
        """(item, RGB image, (N, 4) face boxes) per image: read, and detected unless boxes are
        given; with ``keep_going``, (item, the ImageReadError, no boxes) for a file that
        cannot be read."""
        for index, item in enumerate(images):
            try:
                image = read_image(item, self.max_pixels)
            except ImageReadError as e:
                if not keep_going:
                    raise
                yield item, e, np.zeros((0, 4))
                continue
            if boxes is not None and index >= len(boxes):
                raise FaceAlignmentError(f"boxes given for {len(boxes)} images, but there are more images")
            given = None if boxes is None else boxes[index]
            name = os.fspath(item) if isinstance(item, (str, os.PathLike)) else f"image {index}"
            faces = self.detect_faces(image, name) if given is None else as_boxes(given, f"boxes of image {index}")
            yield item, image, faces

    def _landmarks(self, group: List[Tuple[ImageInput, np.ndarray, np.ndarray]], decodes: Sequence[str]):
        """Landmarks of every face of a group of images, so the networks see full batches; a
        file that could not be read (with ``keep_going``) keeps its place, as its error."""
        readable = [entry for entry in group if not isinstance(entry[1], ImageReadError)]
        found = self.landmarker.landmarks(readable, decodes)
        for item, image, _ in group:
            if isinstance(image, ImageReadError):
                yield item, None, image
            else:
                yield next(found)


def _keeps_going(on_error: str) -> bool:
    if on_error not in ON_ERROR:
        raise FaceAlignmentError(f"on_error: got {on_error!r}; expected one of {', '.join(map(repr, ON_ERROR))}")
    return on_error != "raise"


def _warn_unreadable(error: ImageReadError) -> None:
    """The warning that names a file left out (the error's message names it, and why)."""
    warnings.warn(f"{error}; skipped", UnreadableImageWarning, stacklevel=3)


_END = object()


def _run_ahead(items: Iterator, depth: int) -> Iterator:
    """The items of ``items``, produced up to ``depth`` ahead by one worker thread (``depth``
    0: in this thread, as they are asked for). The worker alone advances ``items``, in order;
    an error it meets is raised here, at the item it concerns."""
    if depth < 1:
        yield from items
        return
    with ThreadPoolExecutor(1, thread_name_prefix="face-alignment-read-ahead") as worker:
        ahead = deque(worker.submit(next, items, _END) for _ in range(depth))
        try:
            while True:
                item = ahead.popleft().result()
                if item is _END:
                    return
                ahead.append(worker.submit(next, items, _END))
                yield item
        finally:
            for future in ahead:  # the caller stopped early: drop what has not started
                future.cancel()



def _as_image_collection(images) -> Iterable[ImageInput]:
    """Several images: any iterable of paths or arrays, or an (N, H, W, C) array. A lone path
    or image is refused rather than iterated character by character or row by row."""
    if isinstance(images, (str, bytes, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim < 4):
        raise FaceAlignmentError("images: got a single image; expected a list of image paths or arrays "
                                 "(get_landmarks_from_image takes one)")
    if not isinstance(images, Iterable):
        raise FaceAlignmentError(f"images: got {type(images).__name__}; expected a list of image paths or arrays")
    return images


def _as_box_lists(boxes) -> Optional[Sequence]:
    """One entry per image (None: detect), as a list or tuple: read by index, so no iterator."""
    if boxes is None or isinstance(boxes, (list, tuple)) or (isinstance(boxes, np.ndarray) and boxes.ndim == 3):
        return boxes
    raise FaceAlignmentError(f"boxes: got {type(boxes).__name__}; expected a list with one (N, 4) array "
                             "(or None) per image")


def _as_decodes(decodes) -> Tuple[str, ...]:
    """Decoding method names, as a list or tuple. One name alone is refused: the results are
    keyed by method, so predict(..., decodes="argmax") would hand back a dict where the
    caller likely expected a Prediction."""
    if isinstance(decodes, (str, bytes)):
        raise FaceAlignmentError(f"decodes: got {decodes!r}, a single name; expected a list or tuple of method "
                                 f"names from {', '.join(DECODE_METHODS)}, e.g. ({decodes!r},)")
    try:
        methods = tuple(decodes)
    except TypeError:
        raise FaceAlignmentError(f"decodes: got {decodes!r}; expected method names from "
                                 f"{', '.join(DECODE_METHODS)}") from None
    for method in methods:
        if method not in DECODE_METHODS:
            raise FaceAlignmentError(f"decodes: {method!r} is not one of {', '.join(DECODE_METHODS)}")
    if not methods:
        raise FaceAlignmentError(f"decodes: empty; expected method names from {', '.join(DECODE_METHODS)}")
    return methods
