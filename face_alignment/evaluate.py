"""``python -m face_alignment.evaluate``: score predicted landmarks against a folder of
300W-style annotated images (NME, AUC, failure rate, missed faces; optional CED chart).

    python -m face_alignment.evaluate --ground-truth FOLDER --predictions A.json [B.json ...]
        [--normalization interocular|interpupil|face-size] [--threshold 0.07] [--json]
        [--ced-plot out.png [--plot-size 800x600]] [--label NAME ...]

With ``--json`` stdout is one JSON object: for a single predictions file the result object
(``{"label", "normalization", "threshold", "images", "faces", "nme", "auc", "failure_rate",
"missed", "per_image": [...]}``), for several ``{"results": [object, ...]}`` in the order the
files were given. Unknown values (e.g. the NME of a missed face) are null.

Errors print one line, ``error: <message>``, on stderr and exit with status 2.
"""
import argparse
import json
import os
import re
import sys
from typing import Any, List, NoReturn, Optional, Sequence, Tuple

from .errors import FaceAlignmentError
from .evaluation import (NORMALIZATIONS, evaluate_document, format_table, json_report,
                         load_ground_truth, plot_ced, read_predictions)
from .evaluation.metrics import FACE_SIZE


class _OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are reported like every other error: one line, status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def _plot_size(text: str) -> Tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT in pixels, e.g. 800x600")
    return int(match.group(1)), int(match.group(2))


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m face_alignment.evaluate",
        description="Score predicted 68-point landmarks against iBUG .pts annotations.")
    parser.add_argument("--ground-truth", required=True, metavar="FOLDER",
                        help="images with .pts files of the same stem beside them "
                             "(name.pts or name_1.pts, name_2.pts, ...; subfolders included)")
    # A model-running source (--model M.h5 [--decode argmax|centroid|both]) will join
    # --predictions here, as a mutually exclusive alternative; see _documents below.
    parser.add_argument("--predictions", required=True, nargs="+", metavar="JSON",
                        help="prediction documents as written by model_inference.py --save-json")
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
    parser.add_argument("--ced-plot", metavar="PNG", help="write the CED curves to this PNG file")
    parser.add_argument("--plot-size", type=_plot_size, default=(800, 600), metavar="WxH",
                        help="size of the CED chart in pixels (default: 800x600)")
    return parser


def _documents(args: argparse.Namespace) -> List[Tuple[str, str, Any]]:
    """(label, source, document) for each set of predictions to score.

    Documents are read from the --predictions files. THIS IS WHERE a model-running source
    will go: for --model, run the pipeline on the ground-truth images and yield one in-memory
    document per decoding (labels e.g. "argmax", "centroid"); scoring is the same."""
    labels = args.label or [os.path.splitext(os.path.basename(p))[0] for p in args.predictions]
    if len(labels) != len(args.predictions):
        raise FaceAlignmentError(f"--label given {len(labels)} times for {len(args.predictions)} "
                                 f"predictions files; expected one per file")
    return [(label, path, read_predictions(path)) for label, path in zip(labels, args.predictions)]


def run(args: argparse.Namespace) -> None:
    ground_truth = load_ground_truth(args.ground_truth)
    results = [evaluate_document(document, ground_truth, args.normalization, args.threshold,
                                 source=source, label=label)
               for label, source, document in _documents(args)]
    if args.ced_plot:
        plot_ced([(result.label, result.errors) for result in results], args.ced_plot,
                 args.threshold, args.plot_size, x_label=f"NME ({args.normalization})")
    if args.json:
        # allow_nan=False: a NaN slipping through would be invalid JSON, so fail loudly instead.
        print(json.dumps(json_report(results), allow_nan=False))
        return
    print("\n\n".join(format_table(result) for result in results))
    if args.ced_plot:
        print(f"\nCED curves written to {args.ced_plot}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except FaceAlignmentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
