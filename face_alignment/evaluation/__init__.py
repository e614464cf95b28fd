"""Accuracy of predicted landmarks against 300W-style annotations: NME, CED, AUC, failures.

Typical use::

    truth = load_ground_truth("300W/test")
    result = evaluate_document(read_predictions("pred.json"), truth, "face-size", 0.07)
    print(result.nme, result.auc, result.failure_rate, result.missed)
    plot_ced([("pred", result.errors)], "ced.png", threshold=0.07)
"""
from .ground_truth import AnnotatedImage, GroundTruth, load_ground_truth
from ..matching import box_iou, match_faces, points_box
from .metrics import NORMALIZATIONS, auc, ced_curve, failure_rate, nme, normalizer
from .plot import plot_ced
from .predictions import PredictedImage, parse_predictions, read_predictions
from .pts import read_pts, write_pts
from .report import format_table, json_report
from .scoring import EvaluationResult, ImageResult, evaluate_document

__all__ = [
    "AnnotatedImage", "EvaluationResult", "GroundTruth", "ImageResult", "NORMALIZATIONS", "PredictedImage",
    "auc", "box_iou", "ced_curve", "evaluate_document", "failure_rate", "format_table",
    "json_report", "load_ground_truth", "match_faces", "nme", "normalizer", "parse_predictions",
    "plot_ced", "points_box", "read_predictions", "read_pts", "write_pts",
]
