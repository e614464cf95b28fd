"""How fast SFD runs here, against face-alignment 1.5.0's own SFDDetector (from its wheel).

    .venv/bin/python benchmarks/sfd.py                      # both parts, 640x480 and 1280x720 (a few minutes)
    .venv/bin/python benchmarks/sfd.py --part postprocess   # decoding, suppression, filter only
    .venv/bin/python benchmarks/sfd.py --part detector --sizes 640x480

The weights are RANDOM, in face-alignment's format (no trained ones can be downloaded here):
speed does not depend on them, except the post-processing's, which grows with the number of
candidate cells (face probability above 0.05). So the post-processing is timed on the same
maps twice: as random weights give them (nearly every cell a candidate: the worst case), and
with the face bias lowered so that about 1 % of the cells are candidates (nearer what trained
weights give on a photo). Both sides decode the very same maps; the boxes are checked equal.

Parts:
- ``postprocess``: their ``get_predictions`` loop + ``_filter_bboxes`` (NMS 0.3, score > 0.5)
  against our :func:`face_alignment.detection.sfd.faces`, ms per frame;
- ``detector``: the whole detector per frame (RGB uint8 in, boxes out), batch 1: ours on
  NNabla's cpu context and on ONNX Runtime, theirs on PyTorch (``torch.set_num_threads(2)``).
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
SPARSE_BIAS = -4.0  # added to the face logit of every head: about 1 % of the cells stay candidates


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
    print("| frame | candidates | theirs: loop + NMS + filter, ms | ours: vectorised, ms | speed-up |")
    print("|---|---|---|---|---|")
    for height, width in sizes:
        maps = ours.raw_outputs(frame(height, width)[None])
        for label, bias in (("random weights", 0.0), ("sparse", SPARSE_BIAS)):
            if bias:
                maps = [m.copy() for m in maps]
                for scores in maps[::2]:  # probabilities from logits shifted by the bias
                    logit = np.log(scores[:, 1]) - np.log(scores[:, 0]) + bias
                    scores[:, 1] = 1 / (1 + np.exp(-logit))
                    scores[:, 0] = 1 - scores[:, 1]
            count = sum(int((m[:, 1] > sfd.CANDIDATE_SCORE).sum()) for m in maps[::2])
            cells = sum(m[:, 1].size for m in maps[::2])

            def their_post():
                return np.array(theirs._filter_bboxes(get_predictions(maps, 1)[0])).reshape(-1, 5)

            their_time, expected = timed(their_post, runs)
            our_time, got = timed(lambda: sfd.faces(maps, 0, 0.5), runs)
            np.testing.assert_array_equal(got, expected)
            print(f"| {width}x{height}, {label} | {count} of {cells} | {their_time * 1e3:.1f} | "
                  f"{our_time * 1e3:.2f} | {their_time / our_time:.0f}x |", flush=True)


def detector(sizes, runs, folder):
    import torch
    from test_sfd import authors, random_state_dict

    from face_alignment.backends import NNABLA, ONNXRUNTIME
    from face_alignment.detection import sfd

    torch.set_num_threads(TORCH_THREADS)
    pth = os.path.join(folder, "s3fd-random.pth")
    torch.save(random_state_dict(), pth)
    sides = {"ours, onnxruntime": sfd.SFDDetector(pth, backend=ONNXRUNTIME).detect,
             "ours, nnabla cpu": sfd.SFDDetector(pth, backend=NNABLA).detect}
    theirs = authors("sfd_detector").SFDDetector(device="cpu", path_to_detector=pth)
    sides["theirs, PyTorch"] = lambda image: theirs.detect_from_image(image.copy())
    print("| frame | " + " | ".join(f"{name}, ms" for name in sides) + " |")
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
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="sfd-bench-") as folder:
        os.environ.setdefault("FACE_ALIGNMENT_HOME", folder)
        if args.part in ("postprocess", "both"):
            postprocess(args.sizes, args.runs, folder)
        if args.part in ("detector", "both"):
            detector(args.sizes, args.runs, folder)


if __name__ == "__main__":
    main()
