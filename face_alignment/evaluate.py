"""``python -m face_alignment.evaluate``: score predicted landmarks against a folder of
300W-style annotated images (NME, AUC, failure rate, missed faces; optional CED chart).

    python -m face_alignment.evaluate --ground-truth FOLDER --predictions A.json [B.json ...]
        [--normalization interocular|interpupil|face-size] [--threshold 0.07] [--json]
        [--ced-plot out.png [--plot-size 800x600]] [--label NAME ...]
    python -m face_alignment.evaluate --ground-truth FOLDER --model FAN.h5 [--decode both] ...

With ``--model`` the model runs on the annotated images itself (faces found by dlib, or
``--gt-boxes``: boxes around the annotated points) and ``--decode both`` scores argmax and
centroid decoding of the same heatmaps side by side.

With ``--json`` stdout is one JSON object: for a single predictions file the result object
(``{"label", "normalization", "threshold", "images", "faces", "nme", "auc", "failure_rate",
"missed", "per_image": [...], "unevaluated": [{"annotation", "reason"}, ...]}``), for several
``{"results": [object, ...]}`` in the order the files were given. Unknown values (e.g. the NME
of a missed face) are null. ``unevaluated`` lists the .pts files that annotate no image of a
type read here, or (with ``--model``) an image that cannot be read; each is also named in a
warning on stderr.

Errors print one line, ``error: <message>``, on stderr and exit with status 2. With
``--model``, an annotated image that cannot be read (cut short, damaged) does not stop the
run: the others are scored and reported, and the run then ends with such a line and status 2.
"""
import argparse
import json
import logging
import os
import re
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .cli_support import ArgumentParser, command_line, inputs_failed, reason
from .cli_flags import MODEL_FILE_FLAGS, add_model_arguments, config_from_args
from .errors import FaceAlignmentError
from .files import check_outputs, check_utf8_path, checked_extension
from .evaluation import (NORMALIZATIONS, evaluate_document, format_table, json_report,
                         load_ground_truth, plot_ced, read_predictions)
from .evaluation.ground_truth import GroundTruth
from .evaluation.metrics import FACE_SIZE, checked_threshold
from .evaluation.plot import PLOT_EXTENSIONS, check_plot_size
from .pipeline.decode import DECODE_METHODS

log = logging.getLogger("face_alignment")
DECODE_BOTH = DECODE_METHODS + ("both",)


def _plot_size(text: str) -> Tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT in pixels, e.g. 800x600")
    try:
        return check_plot_size((int(match.group(1)), int(match.group(2))))
    except FaceAlignmentError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m face_alignment.evaluate",
        description="Score predicted 68-point landmarks against iBUG .pts annotations.")
    parser.add_argument("--ground-truth", required=True, metavar="FOLDER",
                        help="images with .pts files of the same stem beside them "
                             "(name.pts or name_1.pts, name_2.pts, ...; subfolders included)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", nargs="+", metavar="JSON",
                        help="prediction documents as written by model_inference.py --save-json, or output "
                        "folders of python -m face_alignment.dataset (their photos)")
    source.add_argument("--model", metavar="FAN.h5", help="run this model on the annotated images")
    model = parser.add_argument_group("with --model")
    model.add_argument("--gt-boxes", action="store_true",
                       help="crop around the annotated points instead of detecting faces")
    # The model flags every command shares; --decode also takes "both": each scored on the same heatmaps.
    add_model_arguments(model, exclude=MODEL_FILE_FLAGS, decode_choices=DECODE_BOTH)
    parser.add_argument("--label", action="append", metavar="NAME",
                        help="name of each predictions file in the report and the chart legend, "
                             "repeated once per file (default: the file's stem)")
    parser.add_argument("--normalization", choices=NORMALIZATIONS, default=FACE_SIZE,
                        help="what errors are divided by (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=0.07,
                        help="NME up to which the AUC is taken and above which a face fails "
                             "(default: %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the table")
    parser.add_argument("--ced-plot", metavar="PNG", help="write the CED curves to this PNG file (.png)")
    parser.add_argument("--plot-size", type=_plot_size, default=(800, 600), metavar="WxH",
                        help="size of the CED chart in pixels (default: 800x600)")
    return parser


def _documents(args: argparse.Namespace, ground_truth) -> Tuple[List[Tuple[str, str, Any]], List[Tuple[str, str]]]:
    """(label, source, document) for each set of predictions to score: read from the
    --predictions files, or made by running --model (one document per decoding); and the
    (path, reason) of each annotated image the model could not read."""
    if args.model:
        return _run_model(args, ground_truth)
    # normpath: a folder given as out/ is labelled out, not ''.
    labels = args.label or [os.path.splitext(os.path.basename(os.path.normpath(p)))[0] for p in args.predictions]
    if len(labels) != len(args.predictions):
        raise FaceAlignmentError(f"--label given {len(labels)} times for {len(args.predictions)} "
                                 f"predictions files; expected one per file")
    return [(label, path, read_predictions(path)) for label, path in zip(labels, args.predictions)], []


def _run_model(args: argparse.Namespace, ground_truth) -> Tuple[List[Tuple[str, str, Any]], List[Tuple[str, str]]]:
    from .api import FaceAlignment
    from .document import image_record
    from .writers import Faces
    from .evaluation import points_box

    # The configuration first (the files' headers only): the decoding it resolves names the labels.
    config = config_from_args(args, args.model, decode=None if args.decode == "both" else args.decode)
    methods = ("argmax", "centroid") if args.decode == "both" else (config.decode,)
    if args.label and len(args.label) != len(methods):
        raise FaceAlignmentError(f"--label given {len(args.label)} times for {len(methods)} decoding(s)")
    labels = args.label or [f"{os.path.splitext(os.path.basename(args.model))[0]} {m}" for m in methods]
    images = list(ground_truth.values())
    for image in images:
        check_utf8_path(image.path)
    boxes = [points_box(np.stack(image.faces)) for image in images] if args.gt_boxes else None
    fa = FaceAlignment.from_config(config, cache_dir=args.cache_dir)
    records, failures = {m: [] for m in methods}, []
    # An image that cannot be read (cut short, damaged) is named and left out of the scores;
    # the others are scored, and the exit status says that not all were.
    for path, image, predictions in fa.predict_files([i.path for i in images], boxes, methods, on_error="yield"):
        if image is None:
            log.warning("%s", predictions)
            failures.append((path, reason(path, predictions)))
            continue
        for m in methods:
            records[m].append(image_record(Faces.of_photo(path, image.shape, predictions[m])))
    if len(failures) == len(images):
        raise inputs_failed(failures, len(images), "annotated images")
    documents = [(label, f"{args.model} ({m})", {"images": records[m]}) for label, m in zip(labels, methods)]
    return documents, failures


def _without_unreadable(ground_truth: GroundTruth, failures: List[Tuple[str, str]]) -> GroundTruth:
    """The ground truth less the images that could not be read, whose annotation files are
    then listed as not evaluated, with why."""
    failed = dict(failures)
    kept = {name: image for name, image in ground_truth.items() if image.path not in failed}
    unread = [(annotation, f"its image {image.path} cannot be read: {failed[image.path]}")
              for image in ground_truth.values() if image.path in failed for annotation in image.annotation_paths]
    return GroundTruth(kept, ground_truth.unevaluated + tuple(unread))


def _check_plot_path(args: argparse.Namespace, ground_truth) -> None:
    """Before any scoring or inference: the chart can be written where asked, and would not
    replace one of the files read (a predictions file, the model, an annotated image or a
    .pts file)."""
    inputs = [("--predictions", p) for p in args.predictions or ()]
    inputs += [(flag, p) for flag, p in (("--model", args.model),
                                         ("--cnn-face-detection-model", args.cnn_detector_model),
                                         ("--detector-model", args.detector_model)) if p]
    for image in ground_truth.values():
        inputs += [("the ground-truth image", image.path)] + [("the annotation", p) for p in image.annotation_paths]
    inputs += [("the annotation", path) for path, _ in ground_truth.unevaluated]
    check_outputs([("--ced-plot", args.ced_plot)], inputs)  # first: onto an input is the graver mistake
    checked_extension(args.ced_plot, PLOT_EXTENSIONS, "--ced-plot chart type")


def run(args: argparse.Namespace) -> None:
    checked_threshold(args.threshold)  # before the model runs, not after
    ground_truth = load_ground_truth(args.ground_truth)
    if args.ced_plot:
        _check_plot_path(args, ground_truth)
    documents, failures = _documents(args, ground_truth)
    ground_truth = _without_unreadable(ground_truth, failures)
    results = [evaluate_document(document, ground_truth, args.normalization, args.threshold,
                                 source=source, label=label)
               for label, source, document in documents]
    if args.ced_plot:
        plot_ced([(result.label, result.errors) for result in results], args.ced_plot,
                 args.threshold, args.plot_size, x_label=f"NME ({args.normalization})")
    if args.json:
        # allow_nan=False: a NaN slipping through would be invalid JSON, so fail loudly instead.
        print(json.dumps(json_report(results), allow_nan=False))
    else:
        print("\n\n".join(format_table(result) for result in results))
        if args.ced_plot:
            print(f"\nCED curves written to {args.ced_plot}")
    if failures:
        raise inputs_failed(failures, len(failures) + len(ground_truth), "annotated images", "scored")


@command_line
def main(argv: Optional[Sequence[str]] = None) -> int:
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
