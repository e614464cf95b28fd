"""Scoring one predictions document against annotated images.

The document is an in-memory dict (see :mod:`.predictions`), so it can come from a file or
straight from running a model, without a round trip through disk.
"""
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..errors import AnnotationError
from . import metrics
from .ground_truth import AnnotatedImage
from ..matching import MISSED, match_faces, points_box
from .predictions import PredictedImage, parse_predictions


def _json_number(value: float) -> Optional[float]:
    """JSON has no NaN or infinity: those become null."""
    return float(value) if math.isfinite(value) else None


def _mean_finite(errors: np.ndarray) -> float:
    """Mean NME of the faces that were found; NaN when none was."""
    found = errors[np.isfinite(errors)]
    return float(found.mean()) if found.size else math.nan


@dataclass(frozen=True, eq=False)  # array fields: no element-wise ==
class ImageResult:
    name: str
    path: str  # the ground-truth image
    annotation_paths: Tuple[str, ...]
    errors: np.ndarray  # NME per annotated face, +inf for a missed face
    predicted: bool  # False when the document does not list this image at all

    @property
    def missed(self) -> int:
        return int(np.isinf(self.errors).sum())

    @property
    def nme(self) -> float:
        return _mean_finite(self.errors)

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "path": self.path, "annotations": list(self.annotation_paths),
                "predicted": self.predicted, "faces": int(self.errors.size),
                "nme": [_json_number(e) for e in self.errors.tolist()],
                "mean_nme": _json_number(self.nme), "missed": self.missed}


@dataclass(frozen=True, eq=False)  # array fields: no element-wise ==
class EvaluationResult:
    label: str  # what was scored, e.g. the predictions file's stem
    normalization: str
    threshold: float
    images: Tuple[ImageResult, ...]
    # Annotation files of the ground truth that annotate no image, as (path, reason).
    unevaluated: Tuple[Tuple[str, str], ...] = ()

    @property
    def errors(self) -> np.ndarray:
        """NME of every annotated face, image by image; +inf for missed faces."""
        return np.concatenate([image.errors for image in self.images])

    @property
    def nme(self) -> float:
        """Mean NME over the faces that were found (NaN if none was)."""
        return _mean_finite(self.errors)

    @property
    def auc(self) -> float:
        return metrics.auc(self.errors, self.threshold)

    @property
    def failure_rate(self) -> float:
        return metrics.failure_rate(self.errors, self.threshold)

    @property
    def missed(self) -> int:
        return int(np.isinf(self.errors).sum())

    def to_json(self) -> Dict[str, Any]:
        """A JSON-ready dict; NaN and infinity appear as null."""
        return {"label": self.label, "normalization": self.normalization,
                "threshold": self.threshold, "images": len(self.images),
                "faces": int(self.errors.size), "nme": _json_number(self.nme),
                "auc": self.auc, "failure_rate": self.failure_rate, "missed": self.missed,
                "per_image": [image.to_json() for image in self.images],
                "unevaluated": [{"annotation": path, "reason": reason} for path, reason in self.unevaluated]}


def _score_image(truth: AnnotatedImage, predicted: Optional[PredictedImage],
                 normalization: str) -> ImageResult:
    truth_points = np.stack(truth.faces)
    scale = metrics.normalizer(truth_points, normalization)
    if not (scale > 0).all():
        bad = truth.annotation_paths[int(np.argmin(scale > 0))]
        raise AnnotationError(f"{bad}: the {normalization} distance of these points is 0; "
                              f"expected distinct landmarks")
    errors = np.full(len(truth.faces), np.inf)
    if predicted is not None:
        matches = match_faces(points_box(truth_points), predicted.boxes)
        found = matches != MISSED
        errors[found] = metrics.nme(predicted.landmarks[matches[found]], truth_points[found],
                                    normalization)
    return ImageResult(name=truth.name, path=truth.path, annotation_paths=truth.annotation_paths,
                       errors=errors, predicted=predicted is not None)


def evaluate_document(document: Any, ground_truth: Mapping[str, AnnotatedImage],
                      normalization: str = metrics.FACE_SIZE, threshold: float = 0.07,
                      source: str = "predictions", label: Optional[str] = None) -> EvaluationResult:
    """Score the predictions ``document`` against ``ground_truth`` (from
    :func:`~.ground_truth.load_ground_truth`).

    Images are paired by file name. An annotated image the document does not list has all
    its faces missed; predicted images without annotations are ignored. The ground truth's
    annotation files that annotate no image (:attr:`~.ground_truth.GroundTruth.unevaluated`)
    are carried into the result. ``source`` names the document in error messages, ``label``
    names the result (default: ``source``)."""
    # Checked before the document is parsed, so a bad option is reported first.
    metrics.checked_normalization(normalization)
    threshold = metrics.checked_threshold(threshold)
    predictions = parse_predictions(document, source)
    if not ground_truth:
        raise AnnotationError(f"{source}: no ground-truth images to score against")
    if predictions.keys().isdisjoint(ground_truth.keys()):
        raise AnnotationError(f"{source}: none of its {len(predictions)} image file names matches "
                              f"an annotated image (e.g. {next(iter(ground_truth))})")
    images: List[ImageResult] = [_score_image(truth, predictions.get(name), normalization)
                                 for name, truth in sorted(ground_truth.items())]
    return EvaluationResult(label=source if label is None else label, normalization=normalization,
                            threshold=threshold, images=tuple(images),
                            unevaluated=tuple(getattr(ground_truth, "unevaluated", ())))
