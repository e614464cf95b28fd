"""Human-readable and JSON reports of one or several :class:`~.scoring.EvaluationResult`."""
import math
from typing import Any, Dict, List, Sequence

from .scoring import EvaluationResult


def _number(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "-"


def format_table(result: EvaluationResult) -> str:
    """Per image: name, annotated faces, mean NME of the faces found, missed faces; then the
    overall NME, AUC, failure rate, missed count and how many annotation files annotate no
    image. NMEs and rates are fractions."""
    name_width = max([len("image")] + [len(image.name) for image in result.images])
    lines: List[str] = [
        f"{result.label}: NME normalised by {result.normalization}, threshold {result.threshold:g}",
        f"{'image':<{name_width}}  {'faces':>5}  {'NME':>8}  {'missed':>6}",
    ]
    lines += [f"{image.name:<{name_width}}  {image.errors.size:>5}  {_number(image.nme):>8}  "
              f"{image.missed:>6}" for image in result.images]
    lines += [
        f"overall: {len(result.images)} images, {result.errors.size} faces",
        f"  NME                 {_number(result.nme)}  (mean over faces found)",
        f"  AUC@{result.threshold:<15g} {_number(result.auc)}",
        f"  failure rate        {_number(result.failure_rate)}"
        f"  (NME > {result.threshold:g} or missed)",
        f"  missed              {result.missed}",
        f"  not evaluated       {len(result.unevaluated)}  (annotation files without a readable image)",
    ]
    return "\n".join(lines)


def json_report(results: Sequence[EvaluationResult]) -> Dict[str, Any]:
    """One result's object as it is; several as ``{"results": [object, ...]}`` in the order
    given."""
    objects = [result.to_json() for result in results]
    return objects[0] if len(objects) == 1 else {"results": objects}
