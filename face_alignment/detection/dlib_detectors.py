"""Face detection with dlib: the HOG + linear SVM detector (fast, frontal faces) or the CNN
(MMOD) detector (slower, also turned and tilted faces; needs its model file). dlib's cost
grows with the pixel count, so each photo is detected on a copy shrunk until its longest
side is at most ``max_side`` and the boxes are mapped back. Boxes come out as
``[left, top, right, bottom, score]`` in the original image's 0-based pixel-centre
coordinates (the same frame as landmarks), with right/bottom the last pixel inside the box
as dlib reports it, sorted by score, best first. HOG scores are SVM margins and CNN scores
are MMOD confidences: both are > 0 for a detection but are not comparable with each other."""
import bz2
import os
from typing import Optional, Sequence, Tuple

import cv2
import dlib
import numpy as np

from ..errors import DownloadError, FaceAlignmentError, WeightsFileError
from ..download import download
from ..files import atomic_write
from ..validation import is_whole_number
from .base import NO_BOXES, BoxRelation, Detector, best_first, check_rgb

CNN_MODEL_NAME = "mmod_human_face_detector.dat"
DEFAULT_URL = "http://dlib.net/files/mmod_human_face_detector.dat.bz2"
# SHA-256 of the decompressed model (729,940 bytes) that dlib publishes at DEFAULT_URL.
DEFAULT_SHA256 = "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"

# Longest side the detectors see, from CPU times on the shared photos (2 cores, upsample 1).
# HOG: ~0.2 s at 1024 px against ~0.8 s on a full 1920x1080 frame; its 80 px window, halved
# by one upsample, still covers faces ~75 px wide in such a frame. CNN: 5-7 s at 640 px
# against 23 s on the full 817x1024 Einstein photo (68 s on 1920x1080); it finds Einstein's
# upturned ~90 px face from ~480 px on (missed at 320), so 640 keeps a margin.
DEFAULT_MAX_SIDE = {"hog": 1024, "cnn": 640}

# Where dlib's boxes sit on the 68 landmarks (see face_alignment.video.tracking): medians
# measured by scripts/calibrate_tracking_boxes.py on the shared photos and their mirror
# images at 8 sizes within one pyramid step, rolled by -8, 0 and 8 degrees. HOG: 17
# detections of breakingbad's face (31 of the 48 views missed), 10th-90th percentiles
# dx -0.19..0.05, dy -0.51..-0.25, sides 2.85..3.33; the median's box has IoU 0.89 with the
# median detection, 0.76 with the worst. CNN: 95 detections of both faces (1 view missed),
# dx -0.49..0.28, dy -0.39..-0.12, sides 2.39..2.91; IoU 0.78 median, 0.59 worst.
DLIB_BOXES = {
    "hog": BoxRelation(dx=-0.064, dy=-0.412, width=3.161, height=3.19),
    "cnn": BoxRelation(dx=-0.157, dy=-0.315, width=2.647, height=2.647),
}

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_model_dirs() -> Tuple[str, str, str]:
    """Folders searched for the CNN model when no path is given: the current directory
    (nnabla-examples' default), ``weights/`` under it, then the repository's ``weights/``."""
    return (os.getcwd(), os.path.join(os.getcwd(), "weights"), os.path.join(_REPO_ROOT, "weights"))


def find_cnn_model(path: Optional[str] = None,
                   search_dirs: Optional[Sequence[str]] = None) -> str:
    """Path of the CNN detector model: ``path`` if given, else the first
    ``mmod_human_face_detector.dat`` in ``search_dirs``; WeightsFileError if there is none."""
    if path is not None:
        if not os.path.isfile(path):
            raise WeightsFileError(f"{path}: CNN face detector model not found")
        return path
    # dict.fromkeys: drop the repeat when the current directory is the repository.
    dirs = tuple(dict.fromkeys(default_model_dirs() if search_dirs is None else search_dirs))
    for folder in dirs:
        candidate = os.path.join(folder, CNN_MODEL_NAME)
        if os.path.isfile(candidate):
            return candidate
    raise WeightsFileError(
        f"{CNN_MODEL_NAME}: not found in {', '.join(dirs)}; get {DEFAULT_URL} and decompress "
        f"it into weights/, or call face_alignment.detection.dlib_detectors."
        f"download_cnn_detector('weights/{CNN_MODEL_NAME}')")


def detection_scale(height: int, width: int, max_side: int) -> float:
    """Factor (at most 1: never enlarge) that brings the longest side down to ``max_side``."""
    return min(1.0, max_side / max(height, width))


class DlibDetector(Detector):
    """A dlib face detector built once and applied to many images with ``detect``, on a copy
    of each image shrunk to at most ``max_side`` pixels (see the module docstring)."""

    default_max_side = 1024
    # The shortest side, in the image dlib sees (shrunk, then upsampled), that the detector is
    # run on; a smaller image has no face for it.
    min_side = 1

    def __init__(self, max_side: Optional[int] = None, upsample: int = 1, threshold: float = 0.0):
        """``max_side`` defaults per detector (DEFAULT_MAX_SIDE); ``upsample`` is dlib's own
        pyramid upsampling, each step finds faces half as small at four times the cost;
        detections scoring below ``threshold`` are dropped."""
        if max_side is not None and not is_whole_number(max_side, 1):
            raise FaceAlignmentError(f"max_side={max_side!r}: expected a positive pixel count")
        if not is_whole_number(upsample, 0):
            raise FaceAlignmentError(f"upsample={upsample!r}: expected 0 or more")
        self.max_side = self.default_max_side if max_side is None else int(max_side)
        self.upsample = int(upsample)
        self.min_score = float(threshold)

    def detect(self, image_rgb: np.ndarray) -> np.ndarray:
        """Faces in an RGB uint8 (H, W, 3) image as an (N, 5) float64 array of
        ``[left, top, right, bottom, score]`` in its own pixels, best score first."""
        check_rgb(image_rgb)
        height, width = image_rgb.shape[:2]
        scale = detection_scale(height, width, self.max_side)
        small = image_rgb
        if scale != 1.0:  # when to resize is detection_scale's rule alone (it never enlarges)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
            # The rounded size sets the true factors, per axis.
            scale_xy = np.array([size[0] / width, size[1] / height])
        else:
            scale_xy = np.ones(2)
        if min(small.shape[:2]) * 2 ** self.upsample < self.min_side:
            return NO_BOXES.copy()
        boxes = self._run(np.ascontiguousarray(small))
        boxes = boxes[boxes[:, 4] >= self.min_score]
        # Pixel centres: pixel i of the copy is centred on (i + 0.5) / s - 0.5 here.
        factor = np.tile(scale_xy, 2)
        boxes[:, :4] = (boxes[:, :4] + 0.5) / factor - 0.5
        return best_first(boxes)

    def _run(self, image: np.ndarray) -> np.ndarray:
        """dlib's raw detections on ``image`` as an (N, 5) array in its pixels."""
        raise NotImplementedError

    @staticmethod
    def _rows(rects, scores) -> np.ndarray:
        rows = [(r.left(), r.top(), r.right(), r.bottom(), s) for r, s in zip(rects, scores)]
        return np.array(rows, dtype=np.float64).reshape(-1, 5)


class HogDetector(DlibDetector):
    """dlib's HOG + linear SVM detector: fast, frontal faces. Its ``threshold`` is dlib's
    ``adjust_threshold``, so a negative value also yields weaker detections."""

    name = "hog"
    default_max_side = DEFAULT_MAX_SIDE["hog"]
    box_relation = DLIB_BOXES["hog"]

    def __init__(self, weights: Optional[str] = None, threshold: float = 0.0, max_side: Optional[int] = None,
                 upsample: int = 1):
        if weights is not None:
            raise FaceAlignmentError(f"detector 'hog' has no model file (got {weights!r}); "
                                     "its model is built into dlib")
        super().__init__(max_side, upsample, threshold)
        self._dlib = dlib.get_frontal_face_detector()

    def _run(self, image: np.ndarray) -> np.ndarray:
        # run() rather than __call__ because it also returns the scores.
        rects, scores, _ = self._dlib.run(image, self.upsample, self.min_score)
        return self._rows(rects, scores)


class CnnDetector(DlibDetector):
    """dlib's CNN (MMOD) detector: slower, also turned and tilted faces; needs its model file
    (``weights``: found as :func:`find_cnn_model` says when not given). Its own cut-off is
    fixed at 0; ``threshold`` drops weaker detections after it."""

    name = "cnn"
    default_max_side = DEFAULT_MAX_SIDE["cnn"]
    box_relation = DLIB_BOXES["cnn"]
    # dlib's CNN (20.0) corrupts memory (exit 134 or 139) or raises on images under 10 px a
    # side (measured: 640 tall by 9 wide crashes, 10 runs). Its smallest face box is 80 px and it
    # found none in strips under 60 px tall (measured on breakingbad.jpg), so 40 px loses no
    # face and keeps a margin of 4 from the crashes.
    min_side = 40

    def __init__(self, weights: Optional[str] = None, threshold: float = 0.0, max_side: Optional[int] = None,
                 upsample: int = 1):
        super().__init__(max_side, upsample, threshold)
        model = find_cnn_model(weights)
        try:
            self._dlib = dlib.cnn_face_detection_model_v1(model)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            raise WeightsFileError(f"{model}: not a dlib CNN face detector model ({reason})") from None

    def _run(self, image: np.ndarray) -> np.ndarray:
        found = self._dlib(image, self.upsample)
        return self._rows([d.rect for d in found], [d.confidence for d in found])


def download_cnn_detector(dest_path: str, url: str = DEFAULT_URL,
                          sha256: Optional[str] = DEFAULT_SHA256,
                          timeout: float = 60.0) -> str:
    """Download the bz2-compressed CNN model from ``url``, decompress it into ``dest_path``
    (atomically: a failed download leaves nothing behind; the folder is created if need
    be) and return ``dest_path``. The decompressed bytes must have the given SHA-256
    (None skips the check); any failure of the download raises DownloadError."""
    decompressor = bz2.BZ2Decompressor()
    folder = os.path.dirname(os.path.abspath(dest_path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise FaceAlignmentError(f"{folder}: cannot create folder ({exc.strerror})") from None
    with atomic_write(dest_path, force=True) as tmp_path:
        digest = download(url, tmp_path, timeout=timeout, decompress=decompressor.decompress)
        if not decompressor.eof:
            raise DownloadError(f"{url}: truncated download (bz2 stream incomplete)")
        if sha256 is not None and digest != sha256.lower():
            raise DownloadError(f"{url}: SHA-256 {digest} of the decompressed file, expected {sha256.lower()}")
    return dest_path
