"""face-alignment's own API (the PyTorch package, version 1.5.0), so that code written for it
runs here after changing nothing but the installed package:

    import face_alignment
    fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device="cpu")
    landmarks = fa.get_landmarks_from_image("face.jpg")  # [(68, 2) array per face] or None

Its constructor keywords, defaults, methods and return values are kept; the work is done by
this project's :class:`face_alignment.api.FaceAlignment` (one code path), set up as
face-alignment computes: the authors' crop with the detector's reference scale (195), argmax
decoding truncated to whole pixels as theirs, flip test-time augmentation by default. Weights
are found on first use (:mod:`face_alignment.hub`). Where face-alignment differs on purpose or
by a bug, what differs is listed in the README ("Coming from face-alignment").

This module imports only numpy at first: nnabla, OpenCV and dlib load when a FaceAlignment is
built, so ``import face_alignment`` stays cheap.
"""
import glob
import logging
import os
import re
import warnings
from enum import IntEnum
from typing import List, Optional, Sequence

import numpy as np

from .errors import FaceAlignmentError, WeightsFileError
from .registry import AUTHORS_REFERENCE_SCALE

log = logging.getLogger("face_alignment")

# The face-alignment release whose API this module follows (``face_alignment.__version__`` is
# this package's own): code that checks face-alignment's version can check this instead.
FACE_ALIGNMENT_API_VERSION = "1.5.0"


class LandmarksType(IntEnum):
    """``TWO_D``: 2D points on the visible face contour (2DFAN4). ``TWO_HALF_D``: 2D
    projections of the 3D points (3DFAN4). ``THREE_D``: those with z (3DFAN4 + ResNetDepth)."""

    TWO_D = 1
    TWO_HALF_D = 2
    THREE_D = 3


class NetworkSize(IntEnum):
    """Hourglass modules of the FAN; only the 4-module networks were published."""

    LARGE = 4


# The published weights each landmark type needs: (FAN, ResNetDepth or None), as named in
# face_alignment.registry.KNOWN_WEIGHTS.
WEIGHTS_OF = {
    LandmarksType.TWO_D: ("2DFAN4", None),
    LandmarksType.TWO_HALF_D: ("3DFAN4", None),
    LandmarksType.THREE_D: ("3DFAN4", "depth"),
}

# face_detector= names of face-alignment that stand for another name of the detector registry
# (face_alignment.detection.registry), with the options that make it detect as theirs:
# their BlazeFace is MediaPipe's short-range model (back_model=True: the back-camera one), on
# their centre crop. 'dlib' and 'folder' are built here; any other name goes to the registry.
REGISTRY_NAMES = {"sfd": ("sfd", {}), "blazeface": ("blazeface-short", {"crop": "center"})}
BLAZEFACE_BACK = ("blazeface-back", {"crop": "center"})
# Their face_detector_kwargs that ours call otherwise; path_to_anchor is dropped (the anchors
# are computed); the rest are passed on as they are.
DETECTOR_KWARGS = {"path_to_detector": "weights", "filter_threshold": "threshold", "min_score_thresh": "threshold"}
DROPPED_KWARGS = ("path_to_anchor", "back_model")
# The files face-alignment downloads into $TORCH_HOME/hub/checkpoints for a detector (by our
# registry name): its weights when no path_to_detector is given (converted by the detector).
TORCH_HUB_DETECTOR_FILES = {"sfd": "s3fd-619a316812.pth", "retinaface": "retinaface_mobilenet0.25.pth",
                            "blazeface-short": "blazeface.pth", "blazeface-back": "blazefaceback.pth"}
# Their options that mean nothing here; accepted so that their calls run unchanged.
IGNORED_OPTIONS = ("compile",)

DEVICE = re.compile(r"cuda(?::(\d+))?")
TYPE_CONFIG_OF = {"float32": "float", "float16": "half"}
DLIB_NO_SHRINK = 1 << 30  # face-alignment's dlib sees the whole image, however large
FOLDER_BOX_SUFFIXES = (".npy", ".t7", ".pth")  # tried in this order, as face-alignment does


def _context(device) -> tuple:
    """('cpu' | 'cudnn', device id) for face-alignment's device strings (or a torch.device)."""
    text = str(device)
    if text == "cpu":
        return "cpu", 0
    m = DEVICE.fullmatch(text)
    if not m:
        raise FaceAlignmentError(f"device {text!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    return "cudnn", int(m.group(1) or 0)


def _type_config(dtype) -> str:
    """nnabla's type config for a torch or numpy dtype (or its name)."""
    text = str(dtype)
    if text.startswith("torch."):
        text = text[len("torch."):]
    else:
        try:
            text = np.dtype(dtype).name
        except TypeError:
            pass
    if text not in TYPE_CONFIG_OF:
        raise FaceAlignmentError(f"dtype {dtype!r}: expected float32, or float16 on 'cuda'")
    return TYPE_CONFIG_OF[text]


def _as_numpy(value):
    """A torch tensor as a numpy array (torch is never imported for this); else the value."""
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def their_pixels(image, name: str = "image") -> np.ndarray:
    """An image array as face-alignment takes it, as RGB uint8 (H, W, 3): grey or RGBA
    arrays become RGB, and float arrays are 0-255 pixel values, truncated to integers as
    their crop does. A float image in [0, 1] would be black to them (and find no face):
    refused, with the fix."""
    from .pipeline.image import read_image

    array = np.asarray(_as_numpy(image))
    if not np.issubdtype(array.dtype, np.floating):
        return read_image(array)
    if array.size and not np.all(np.isfinite(array)):
        raise FaceAlignmentError(f"{name}: NaN or infinite pixel values; expected 0-255")
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if low < 0 or high >= 256:
        raise FaceAlignmentError(f"{name}: float values in [{low:g}, {high:g}]; expected 0-255 pixel values")
    if 0 < high <= 1:
        raise FaceAlignmentError(f"{name}: float values within [0, 1]; face-alignment takes 0-255 pixel "
                                 "values (multiply by 255)")
    return read_image(array.astype(np.uint8))


class FolderDetector:
    """face-alignment's 'folder' detector: the boxes of ``photo.jpg`` are read from
    ``photo.npy``, ``photo.t7`` or ``photo.pth`` beside it (the first that exists): an
    (N, 4) or (N, 5) array, or a list of boxes (``torch.save`` of tensors for .t7/.pth)."""

    reference_scale = AUTHORS_REFERENCE_SCALE

    def detect_file(self, image_path: str) -> np.ndarray:
        from .boxes import as_boxes

        base = os.path.splitext(os.fspath(image_path))[0]
        for suffix in FOLDER_BOX_SUFFIXES:
            path = base + suffix
            if os.path.isfile(path):
                break
        else:
            raise FaceAlignmentError(f"{image_path}: no boxes beside it; expected one of "
                                     f"{', '.join(base + s for s in FOLDER_BOX_SUFFIXES)}")
        if path.endswith(".npy"):
            try:
                loaded = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise FaceAlignmentError(f"{path}: not a numpy array file ({e})") from None
        else:
            import torch  # face-alignment users have it; only these files need it

            try:
                loaded = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
                raise FaceAlignmentError(f"{path}: not a torch file of boxes ({type(e).__name__})") from None
        if isinstance(loaded, (list, tuple)):
            loaded = [np.asarray(_as_numpy(box), dtype=np.float64) for box in loaded]
        boxes = np.asarray(_as_numpy(loaded), dtype=np.float64)
        as_boxes(boxes, path)  # the shape and values checked, the score column kept
        return boxes.reshape(len(boxes), -1) if boxes.size else np.zeros((0, 4))


class DlibDetector:
    """face-alignment's 'dlib' detector: dlib's HOG on the CPU (its CNN on 'cuda'), on the
    grey image at its full size and without upsampling, as theirs; boxes without score, as
    theirs. Grey matters: on colour, dlib's HOG takes each pixel's strongest channel
    gradient and may place the box elsewhere (28 px lower on breakingbad.jpg)."""

    reference_scale = AUTHORS_REFERENCE_SCALE

    def __init__(self, kind: str, cnn_model_path: Optional[str] = None):
        from .detection.registry import load_detector

        self._detector = load_detector(kind, weights=cnn_model_path, max_side=DLIB_NO_SHRINK, upsample=0)

    def detect(self, image: np.ndarray) -> np.ndarray:
        import cv2

        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return self._detector.detect(np.repeat(grey[..., None], 3, axis=2))[:, :4]


def make_detector(name: str, options: Optional[dict], context: str):
    """The detector face-alignment's ``face_detector=name`` (with its ``face_detector_kwargs``)
    stands for: an object with ``reference_scale`` and ``detect(image)`` (or, for 'folder',
    ``detect_file(path)``)."""
    from .detection.registry import load_detector
    from .hub import torch_checkpoints_dir

    options = dict(options or {})
    if name == "folder":
        return FolderDetector()
    if name == "dlib":
        return DlibDetector("cnn" if context == "cudnn" else "hog", options.get("path_to_detector"))
    registry_name, fixed = BLAZEFACE_BACK if name == "blazeface" and options.get("back_model") \
        else REGISTRY_NAMES.get(name, (name, {}))
    ours = dict(fixed, **{DETECTOR_KWARGS.get(k, k): v for k, v in options.items() if k not in DROPPED_KWARGS})
    theirs = None
    if ours.get("weights") is None and registry_name in TORCH_HUB_DETECTOR_FILES:
        theirs = os.path.join(torch_checkpoints_dir(), TORCH_HUB_DETECTOR_FILES[registry_name])
        ours["weights"] = theirs if os.path.isfile(theirs) else None
    try:
        return load_detector(registry_name, **ours)
    except WeightsFileError as e:
        if theirs is None or ours["weights"] is not None:
            raise
        # Where face-alignment users keep the file is named too: every place looked in.
        raise type(e)(f"{TORCH_HUB_DETECTOR_FILES[registry_name]}: not in $TORCH_HOME/hub/checkpoints ({theirs}), "
                      f"face-alignment's download folder, and then: {e}") from None


class FaceAlignment:
    """face-alignment's ``FaceAlignment``, with its keywords and defaults.

    ``landmarks_type``: a :class:`LandmarksType`. Given a path instead, this is this
    project's own :class:`face_alignment.api.FaceAlignment` (``FaceAlignment("2DFAN4.h5",
    ...)``), built from the same arguments. ``device``: 'cpu', 'cuda' or 'cuda:N' (nnabla's
    cudnn context on device N). ``dtype``: float32, or float16 on 'cuda'. ``face_detector``:
    'sfd', 'blazeface', 'dlib', 'folder' or another name of the detector registry, built with
    ``face_detector_kwargs``. ``max_batch_size``: faces per network run. ``compile`` is
    accepted and means nothing here; ``verbose`` only adds log lines. ``backend`` (ours, not
    theirs): "onnxruntime" or "nnabla", default the fastest installed.
    """

    def __new__(cls, landmarks_type=None, *args, **kwargs):
        if isinstance(landmarks_type, (str, os.PathLike)):
            from .api import FaceAlignment as Ours

            return Ours(landmarks_type, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, landmarks_type, network_size=NetworkSize.LARGE, device="cuda", dtype="float32",
                 flip_input=True, face_detector="sfd", face_detector_kwargs=None, verbose=False, compile=True,
                 max_batch_size=1, *, backend: Optional[str] = None):
        from . import hub
        from .api import FaceAlignment as Ours

        try:
            self.landmarks_type = LandmarksType(landmarks_type)
        except ValueError:
            raise FaceAlignmentError(f"landmarks_type {landmarks_type!r}: expected a face_alignment.LandmarksType "
                                     "(TWO_D, TWO_HALF_D, THREE_D)") from None
        if network_size != NetworkSize.LARGE:
            raise FaceAlignmentError(f"network_size {network_size!r}: only NetworkSize.LARGE (4) was published")
        context, device_id = _context(device)
        type_config = _type_config(dtype)  # every option checked before anything is loaded
        self.device, self.dtype, self.flip_input = device, dtype, flip_input
        self.verbose, self.max_batch_size = verbose, max_batch_size
        self.face_detector = make_detector(face_detector, face_detector_kwargs, context)
        fan_name, depth_name = WEIGHTS_OF[self.landmarks_type]
        fan = hub.weights_path(fan_name)
        depth = hub.weights_path(depth_name) if depth_name else None
        self._pipeline = Ours(fan, depth, decode="argmax", integer_landmarks=True, flip=bool(flip_input),
                              context=context, device_id=device_id, type_config=type_config,
                              reference_scale=self.face_detector.reference_scale, batch_size=max_batch_size,
                              backend=backend)
        if verbose:
            log.info("face-alignment API: %s with %s weights, face detector %r", self.landmarks_type.name,
                     fan_name + (" + " + depth_name if depth_name else ""), face_detector)

    def get_landmarks(self, image_or_path, detected_faces=None, return_bboxes=False, return_landmark_score=False):
        """face-alignment's older name of :meth:`get_landmarks_from_image`."""
        return self.get_landmarks_from_image(image_or_path, detected_faces, return_bboxes, return_landmark_score)

    def get_landmarks_from_image(self, image_or_path, detected_faces=None, return_bboxes=False,
                                 return_landmark_score=False):
        """Landmarks of every face in one image (a path, or an RGB array or tensor (H, W, 3)):
        a list with a float32 (68, 2) array per face, (68, 3) for THREE_D, or None when there
        is no face. With either flag: (landmarks, scores or None, boxes or None), scores a
        (68,) array per face, boxes those found (or ``detected_faces``, as given)."""
        from .pipeline.image import read_image

        path = image_or_path if isinstance(image_or_path, (str, os.PathLike)) else None
        image = read_image(path, self._pipeline.max_pixels) if path is not None else their_pixels(image_or_path)
        if detected_faces is None:
            detected_faces = self._detect(image, path)
        (landmarks, scores), = self._landmarks([image], [detected_faces])
        return _their_return(landmarks, scores, detected_faces, return_bboxes, return_landmark_score)

    def get_landmarks_from_batch(self, image_batch, detected_faces=None, return_bboxes=False,
                                 return_landmark_score=False):
        """Landmarks of a batch of images, a (B, 3, H, W) numpy array or torch tensor of 0-255
        RGB values: a list with, per image, the (68 x faces, 2 or 3) landmarks of all its faces
        one after the other (empty when it has none). With either flag: (landmarks, scores or
        None, boxes or None), per image. ``detected_faces``: one list of boxes per image."""
        batch = np.asarray(_as_numpy(image_batch))
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise FaceAlignmentError(f"image_batch: shape {batch.shape}; expected (B, 3, H, W) RGB images")
        images = [their_pixels(frame.transpose(1, 2, 0), f"image_batch[{i}]") for i, frame in enumerate(batch)]
        if detected_faces is None and hasattr(self.face_detector, "detect_batch"):  # one run for all
            detected_faces = [list(found) for found in self.face_detector.detect_batch(images)]
        elif detected_faces is None:
            detected_faces = [self._detect(image, None) for image in images]
        elif len(detected_faces) != len(images):
            raise FaceAlignmentError(f"detected_faces: {len(detected_faces)} lists of boxes for {len(images)} "
                                     "images; expected one per image")
        if len(detected_faces) == 0:
            return _their_return(None, None, None, return_bboxes, return_landmark_score)
        dims = 3 if self.landmarks_type == LandmarksType.THREE_D else 2
        landmarks, scores = [], []
        for image_landmarks, image_scores in self._landmarks(images, detected_faces):
            landmarks.append(np.concatenate(image_landmarks) if image_landmarks
                             else np.zeros((0, dims), np.float32))
            scores.append(image_scores or None)
        if not (return_bboxes or return_landmark_score):
            return landmarks
        return landmarks, scores if return_landmark_score else None, detected_faces if return_bboxes else None

    def get_landmarks_from_directory(self, path, extensions=['.jpg', '.png'], recursive=True,  # noqa: B006
                                     show_progress_bar=True, return_bboxes=False, return_landmark_score=False):
        """{image path: what :meth:`get_landmarks_from_image` returns for it} for the images
        under ``path`` (below it too with ``recursive``) whose names end with one of
        ``extensions`` (case matters). Paths are named as ``glob`` gives them:
        ``path + "/**/*" + extension`` (``"/*"`` without ``recursive``). A file that cannot
        be read as an image gets None, as an image without a face does, and a warning naming
        it; the others go on (face-alignment stops at it)."""
        from tqdm import tqdm

        if not extensions:
            raise FaceAlignmentError("extensions: empty; expected image name endings such as ['.jpg', '.png']")
        pattern = "/**/*" if recursive else "/*"
        files: List[str] = []
        for extension in extensions:
            files.extend(glob.glob(os.fspath(path) + pattern + extension, recursive=recursive))
        return {file: self._landmarks_of_file(file, return_bboxes, return_landmark_score)
                for file in tqdm(files, disable=not show_progress_bar)}

    def _landmarks_of_file(self, path, return_bboxes: bool, return_landmark_score: bool):
        """What get_landmarks_from_image returns for the file, or, for a file that cannot be
        read, a warning naming it and what it returns for an image without a face."""
        from .errors import ImageReadError, UnreadableImageWarning

        try:
            return self.get_landmarks_from_image(path, return_bboxes=return_bboxes,
                                                 return_landmark_score=return_landmark_score)
        except ImageReadError as e:
            warnings.warn(f"{e}; skipped", UnreadableImageWarning, stacklevel=3)
            return _their_return(None, None, None, return_bboxes, return_landmark_score, warn=False)

    def _detect(self, image: np.ndarray, path) -> List[np.ndarray]:
        """The detector's boxes, one array per face, as face-alignment returns them."""
        if isinstance(self.face_detector, FolderDetector):
            if path is None:
                raise FaceAlignmentError("face_detector 'folder' reads the boxes beside the image file; "
                                         "expected the image's path (or detected_faces)")
            found = self.face_detector.detect_file(path)
        else:
            found = self.face_detector.detect(image)
        return list(np.asarray(found, dtype=np.float64))

    def _landmarks(self, images: Sequence[np.ndarray], faces: Sequence) -> List[tuple]:
        """([float32 landmarks per face], [scores per face]) per image, through our pipeline."""
        from .boxes import as_boxes

        boxes = [as_boxes([_as_numpy(b) for b in f] if isinstance(f, (list, tuple)) else _as_numpy(f),
                          f"detected_faces of image {i}") for i, f in enumerate(faces)]
        found = []
        for prediction in self._pipeline.get_landmarks_from_images(list(images), boxes):
            found.append(([p.astype(np.float32) for p in prediction.landmarks],
                          [s.astype(np.float32) for s in prediction.scores]))
        return found


def _their_return(landmarks, scores, faces, return_bboxes: bool, return_landmark_score: bool, warn: bool = True):
    """face-alignment's return value: the landmarks alone, or (landmarks, scores, boxes) with
    what was not asked for as None; None (or three) when there is no face (and, with
    ``warn``, their warning)."""
    if not landmarks:
        if warn:
            warnings.warn("No faces were detected.")
        landmarks = scores = faces = None
    if not (return_bboxes or return_landmark_score):
        return landmarks
    return landmarks, scores if return_landmark_score else None, faces if return_bboxes else None

