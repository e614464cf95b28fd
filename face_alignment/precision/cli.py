"""``python -m face_alignment.precision``: the accuracy gate.

    .venv/bin/python -m face_alignment.precision --model 2DFAN4.h5 --images my_faces/ --precision int8

Runs fp32 and the lower precision (OpenVINO, on the CPU) on the same faces of the user's
images, prints how far the landmarks moved, and only if the mean difference is under the limit
writes what inference needs: for int8, the quantized model (calibrated on those faces, with the
last hourglass's heads kept in float), where ``precision="int8"`` looks for it; for bf16, a
record of the measurement. Refused: exit status 2, one line, nothing written.
"""
import json
import logging
import os
from typing import List, Optional

import numpy as np

from ..backends.onnx_cache import cached_model_path
from ..backends.openvino_net import OpenVinoNetwork, int8_model_path
from ..backends.registry import BF16, FP32, INT8
from .. import interrupts
from ..cli_support import ArgumentParser, command_line, positive_int
from ..errors import FaceAlignmentError
from ..files import atomic_write, check_not_there, check_outputs
from ..registry import ARCHITECTURES, FAN
from ..weights import open_weights
from . import gate
from .faces import Faces, gather_faces, image_paths
from .quantize import float_scopes, quantize_int8, record, save_ir

log = logging.getLogger("face_alignment")
LOWER_PRECISIONS = (BF16, INT8)
# NNCF's own default number of calibration samples.
DEFAULT_MAX_FACES = 300
RECORD_SUFFIX = ".bf16.json"


class GateRefusedError(FaceAlignmentError):
    """A lower precision that moved the landmarks more than the limit allows."""


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (np.isfinite(value) and value > 0):
        raise ValueError(text)
    return value


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m face_alignment.precision",
        description="The accuracy gate: compare a lower precision with fp32 on your own faces, and write the "
                    "int8 model (or the bf16 record) only if the landmarks stay close.")
    p.add_argument("--model", "-m", required=True, metavar="FAN.h5", help="your FAN weights (.h5)")
    p.add_argument("--images", required=True, metavar="DIR", help="a folder of your photos, with faces")
    p.add_argument("--precision", required=True, choices=LOWER_PRECISIONS, help="the precision to measure")
    p.add_argument("--boxes", metavar="JSON", help="face boxes instead of detection, as model_inference.py "
                   "takes them: a list of [l, t, r, b] for every image, or an object mapping file names to lists")
    p.add_argument("--max-mean-px", type=positive_float, default=gate.DEFAULT_MAX_MEAN_PX, metavar="T",
                   help="the limit on the mean landmark difference from fp32, in image pixels "
                        "(default: %(default)s)")
    p.add_argument("--max-faces", type=positive_int, default=DEFAULT_MAX_FACES, metavar="N",
                   help="faces to calibrate on and compare (default: %(default)s, in file order)")
    p.add_argument("--keep-in-float", nargs="*", metavar="SCOPE",
                   help="int8: parameter scopes whose convolutions stay in float (default: the last "
                        "hourglass's heads, e.g. conv_last3 l3; none: quantize every layer)")
    p.add_argument("--output", "-o", metavar="PATH",
                   help="int8: the model (.xml, with its .bin; default: beside the weights' ONNX export in the "
                        "export cache, where precision='int8' finds it); bf16: the record (default: there too, "
                        f"{RECORD_SUFFIX})")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="the export cache, if inference uses another (default: $FACE_ALIGNMENT_HOME/exports)")
    p.add_argument("--arch", choices=list(ARCHITECTURES), help="architecture, for .h5 files that do not record it")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    return p


def default_output(weights, precision: str, cache_dir: Optional[str] = None) -> str:
    """Where inference looks: beside the weights' ONNX export in the export cache."""
    if precision == INT8:
        return int8_model_path(weights, cache_dir)
    return os.path.splitext(cached_model_path(weights, cache_dir))[0] + RECORD_SUFFIX


def calibration_crops(faces: Faces) -> np.ndarray:
    """The crops NNCF calibrates on: the user's faces (what the model will see)."""
    return faces.crops


@command_line
def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    from ..boxes import read_boxes

    weights = open_weights(args.model, kind=FAN, arch=args.arch)
    inputs = [("--model", args.model)] + ([("--boxes", args.boxes)] if args.boxes else [])
    if args.output:
        output = args.output
        check_outputs([("--output", output)], inputs)
        check_not_there(output, args.force)
    else:  # the export cache, made if need be (as the export itself would make it)
        output = default_output(weights, args.precision, args.cache_dir)
        try:
            os.makedirs(os.path.dirname(output), exist_ok=True)
        except OSError as e:
            raise FaceAlignmentError(f"{os.path.dirname(output)}: cannot make the export cache ({e.strerror}); "
                                     "pass --cache-dir or --output") from None
        check_outputs([("the export cache", output)], inputs)
    if args.precision == INT8 and os.path.splitext(output)[1].lower() != ".xml":
        raise FaceAlignmentError(f"--output {output}: expected an OpenVINO .xml path (its .bin goes beside it)")

    boxes = read_boxes(args.boxes, image_paths(args.images)) if args.boxes else None
    faces = gather_faces(weights.arch, args.images, boxes, args.max_faces)
    log.info("%d faces from %d images; %s against fp32", len(faces), len(faces.images), args.precision)
    reference = OpenVinoNetwork(weights, FP32, cache_dir=args.cache_dir)
    if args.precision == BF16:
        comparison = gate.compare(reference, OpenVinoNetwork(weights, BF16, cache_dir=args.cache_dir), faces, weights.arch.decode)
        _judge(comparison, args)
        facts = dict(comparison.as_dict(), precision=BF16, weights_sha256=weights.sha256,
                     max_mean_px=args.max_mean_px, decode=weights.arch.decode, images=os.path.abspath(args.images))
        interrupts.check()
        with atomic_write(output, force=True) as tmp:
            with open(tmp, "w") as f:
                json.dump(facts, f, indent=1)
    else:
        keep = float_scopes(weights.arch) if args.keep_in_float is None else \
            [s for s in args.keep_in_float if s != "none"]
        log.info("quantizing to int8 on %d faces; kept in float: %s", len(faces), ", ".join(keep) or "nothing")
        model = quantize_int8(reference.model_path, calibration_crops(faces), keep)
        record(model, weights.sha256)
        folder = os.path.dirname(os.path.abspath(output))
        os.makedirs(folder, exist_ok=True)
        # Measured as inference will run it, from a file; kept only if it passes.
        candidate_path = os.path.join(folder, f".candidate-{os.getpid()}.xml")
        try:
            save_ir(model, candidate_path)
            candidate = OpenVinoNetwork(weights, INT8, cache_dir=args.cache_dir, int8_model=candidate_path,
                                        compile_cache=False)
            comparison = gate.compare(reference, candidate, faces, weights.arch.decode)
            _judge(comparison, args)
            record(model, weights.sha256, dict(comparison.as_dict(), max_mean_px=args.max_mean_px,
                                               kept_in_float=" ".join(keep)))
            interrupts.check()  # Ctrl-C that torch or NNCF swallowed: nothing written
            save_ir(model, output)
        finally:
            for path in (candidate_path, os.path.splitext(candidate_path)[0] + ".bin"):
                if os.path.exists(path):
                    os.remove(path)
    log.info("passed: %s written to %s", args.precision, output)
    if args.precision == INT8 and args.output:
        log.info("run with precision='int8' and int8_model=%s", output)
    return 0


def _judge(comparison: gate.Comparison, args) -> None:
    for line in comparison.lines():
        print(line)
    if not gate.passes(comparison, args.max_mean_px):
        raise GateRefusedError(
            f"{args.precision} moved the landmarks by {comparison.mean_px:.3f} px on average over {comparison.faces} "
            f"faces of {args.images}, not under the limit of {args.max_mean_px:g} px (--max-mean-px); nothing written")
