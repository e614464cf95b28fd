"""How fast SFD and RetinaFace run here, against face-alignment 1.5.0's own detectors (from its wheel).

    .venv/bin/python benchmarks/fa_detectors.py                      # both parts, 640x480 and 1280x720
    .venv/bin/python benchmarks/fa_detectors.py --part postprocess   # SFD's decoding, suppression, filter only
    .venv/bin/python benchmarks/fa_detectors.py --part detector --sizes 640x480 --detectors retinaface

The weights are RANDOM, in face-alignment's format (no trained ones can be downloaded here):
speed does not depend on them, except the post-processing's, which grows with the number of
candidate cells (face probability above 0.05). So the post-processing is timed on the same
maps twice: as random weights give them (nearly every cell a candidate, most above 0.5: the
worst case), and "sparse": the face logits stretched so that 2 % of the cells are candidates
and 0.1 % score above 0.5 (nearer what trained weights give on a photo with a few faces).
Both sides decode the very same maps; the boxes are checked equal.

Parts:
- ``postprocess``: their ``get_predictions`` loop + ``_filter_bboxes`` (NMS 0.3, score > 0.5)
  against our :func:`face_alignment.detection.sfd.faces`, ms per frame;
- ``detector``: the whole detector per frame (RGB uint8 in, boxes out), batch 1: ours on
  NNabla's cpu context and on ONNX Runtime, theirs on PyTorch (``torch.set_num_threads(2)``).
  Their RetinaFace's post-processing is vectorised already (PyTorch and numpy).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

TORCH_THREADS = 2
# The sparse maps: fractions of the cells above the candidate cut, and above 0.5.
SPARSE_CANDIDATES, SPARSE_FACES = 0.02, 0.001


def parse_size(text):
    width, height = (int(v) for v in text.lower().split("x"))
    return height, width


def timed(call, runs, warmup=1):
    """(median seconds, the last result) of ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        result = call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def frame(height, width):
    import cv2
    import numpy as np

    noise = np.random.RandomState(0).rand(height, width, 3) * 255
    return cv2.GaussianBlur(noise.astype(np.uint8), (0, 0), 3)


def sparse(maps):
    """``maps`` with every face logit mapped by one affine function chosen so that
    SPARSE_CANDIDATES of the cells score above 0.05 and SPARSE_FACES above 0.5."""
    import numpy as np

    from face_alignment.detection.sfd import CANDIDATE_SCORE

    logits = [np.log(m[:, 1]) - np.log(m[:, 0]) for m in maps[::2]]
    every = np.concatenate([v.ravel() for v in logits])
    low, high = np.quantile(every, [1 - SPARSE_CANDIDATES, 1 - SPARSE_FACES])
    cut = np.log(CANDIDATE_SCORE / (1 - CANDIDATE_SCORE))
    gain = -cut / (high - low)  # low -> the candidate cut, high -> 0 (probability 0.5)
    out = list(maps)
    for i, logit in zip(range(0, len(maps), 2), logits):
        face = 1 / (1 + np.exp(-gain * (logit - high)))
        out[i] = np.stack([1 - face, face], axis=1).astype(np.float32)
    return out


def postprocess(sizes, runs, folder):
    import numpy as np
    import torch
    from test_sfd import authors, random_state_dict

    from face_alignment.backends import ONNXRUNTIME
    from face_alignment.detection import sfd

    pth = os.path.join(folder, "s3fd-random.pth")
    torch.save(random_state_dict(), pth)
    theirs = authors("sfd_detector").SFDDetector(device="cpu", path_to_detector=pth)
    get_predictions = authors("detect").get_predictions
    ours = sfd.SFDDetector(pth, backend=ONNXRUNTIME)
    print("| frame | candidates / above 0.5 | theirs: loop + NMS + filter, ms | ours: vectorised, ms | speed-up |")
    print("|---|---|---|---|---|")
    for height, width in sizes:
        raw = ours.raw_outputs(frame(height, width)[None])
        for label, maps in (("random weights", raw), ("sparse", sparse(raw))):
            count = sum(int((m[:, 1] > sfd.CANDIDATE_SCORE).sum()) for m in maps[::2])
            faces = sum(int((m[:, 1] > 0.5).sum()) for m in maps[::2])

            def their_post():
                return np.array(theirs._filter_bboxes(get_predictions(maps, 1)[0])).reshape(-1, 5)

            their_time, expected = timed(their_post, runs)
            our_time, got = timed(lambda: sfd.faces(maps, 0, 0.5), runs)
            np.testing.assert_array_equal(got, expected)
            print(f"| {width}x{height}, {label} | {count} / {faces} | {their_time * 1e3:.1f} | "
                  f"{our_time * 1e3:.2f} | {their_time / our_time:.0f}x |", flush=True)


def _sides(detector_name, folder):
    """{label: image -> boxes} for ours on both backends and theirs, on random weights."""
    import torch

    from face_alignment.backends import NNABLA, ONNXRUNTIME

    if detector_name == "sfd":
        from test_sfd import authors, random_state_dict

        from face_alignment.detection.sfd import SFDDetector as Ours
        theirs_class = authors("sfd_detector").SFDDetector
    else:
        from authors_reference import retinaface_module
        from test_retinaface import random_state_dict

        from face_alignment.detection.retinaface import RetinaFaceDetector as Ours
        theirs_class = retinaface_module("retinaface_detector").RetinaFaceDetector
    pth = os.path.join(folder, f"{detector_name}-random.pth")
    torch.save(random_state_dict(), pth)
    theirs = theirs_class(device="cpu", path_to_detector=pth)
    return {"ours, onnxruntime": Ours(pth, backend=ONNXRUNTIME).detect,
            "ours, nnabla cpu": Ours(pth, backend=NNABLA).detect,
            "theirs, PyTorch": lambda image: theirs.detect_from_image(image.copy())}


def detector(sizes, runs, folder, detectors):
    import torch

    torch.set_num_threads(TORCH_THREADS)
    for name in detectors:
        sides = _sides(name, folder)
        print(f"\n{name}, ms per frame (median of {runs}, after a warm-up)\n")
        print("| frame | " + " | ".join(sides) + " |")
        print("|---" * (len(sides) + 1) + "|")
        for height, width in sizes:
            image = frame(height, width)
            cells = [f"{timed(lambda: call(image), runs)[0] * 1e3:.0f}" for call in sides.values()]
            print(f"| {width}x{height} | " + " | ".join(cells) + " |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("postprocess", "detector", "both"), default="both")
    p.add_argument("--sizes", nargs="+", type=parse_size, default=[(480, 640), (720, 1280)], metavar="WxH")
    p.add_argument("--runs", type=int, default=3, help="timed runs per number (median)")
    p.add_argument("--detectors", nargs="+", choices=("sfd", "retinaface"), default=["sfd", "retinaface"],
                   help="detectors the detector part times")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="sfd-bench-") as folder:
        os.environ.setdefault("FACE_ALIGNMENT_HOME", folder)
        if args.part in ("postprocess", "both"):
            postprocess(args.sizes, args.runs, folder)
        if args.part in ("detector", "both"):
            detector(args.sizes, args.runs, folder, args.detectors)


if __name__ == "__main__":
    main()
