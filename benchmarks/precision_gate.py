"""The accuracy gate's numbers on the peaked test network (tests/peaked_fan.py): a random FAN
body whose last 1x1 convolution is fitted so that its heatmaps peak at the shared photos'
annotated points. For the README: what bf16 and int8 (with and without the last hourglass's
heads in float, calibrated on the faces or on noise) do to its landmarks.

    .venv/bin/python benchmarks/precision_gate.py --modules 4

These are NOT numbers for trained weights: a readout of random features peaks far more weakly
and fragilely than a trained FAN. Users must run the gate on their own weights.
"""
import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

import numpy as np

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modules", type=int, default=4, choices=(1, 2, 3, 4))
    p.add_argument("--out", help="also write the numbers to this JSON file")
    args = p.parse_args()

    import peaked_fan
    from face_alignment.backends.openvino_net import OpenVinoNetwork
    from face_alignment.boxes import read_boxes
    from face_alignment.precision import gate
    from face_alignment.precision.faces import gather_faces, image_paths
    from face_alignment.precision.quantize import float_scopes, quantize_int8, record, save_ir
    from face_alignment.registry import ARCHITECTURES
    from face_alignment.weights import open_weights

    n = args.modules
    arch = dataclasses.replace(ARCHITECTURES["2DFAN4"], name=f"peaked-fan{n}", num_modules=n)
    scratch = tempfile.mkdtemp(prefix="peaked-gate-")
    h5, photos = os.path.join(scratch, f"peaked-fan{n}.h5"), os.path.join(scratch, "photos")
    start = time.time()
    boxes, _, _ = peaked_fan.peaked_fan_h5(h5, arch, photos)
    print(f"peaked FAN-{n} fitted in {time.time() - start:.0f} s", flush=True)
    weights = open_weights(h5)
    faces = gather_faces(arch, photos, read_boxes(boxes, image_paths(photos)))
    reference = OpenVinoNetwork(weights, "fp32", cache_dir=scratch)
    results = {}

    def measure(name, network):
        results[name] = comparison = gate.compare(reference, network, faces, arch.decode).as_dict()
        print(name, json.dumps({k: round(v, 4) for k, v in comparison.items()}), flush=True)

    measure("bf16", OpenVinoNetwork(weights, "bf16", cache_dir=scratch))
    noise = np.random.RandomState(0).rand(*faces.crops.shape).astype(np.float32)
    last = n - 1
    variants = (("int8, last heads in float (default)", float_scopes(arch), faces.crops),
                ("int8, every layer", [], faces.crops),
                ("int8, last hourglass and heads in float", [f"m{last}", f"top_m_{last}", f"conv_last{last}",
                                                             f"l{last}"], faces.crops),
                ("int8 broken: every layer, calibrated on noise", [], noise))
    for name, keep, calibration in variants:
        model = quantize_int8(reference.model_path, calibration, keep)
        record(model, weights.sha256)
        path = save_ir(model, os.path.join(scratch, "int8.xml"))
        measure(name, OpenVinoNetwork(weights, "int8", int8_model=path, compile_cache=False))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"fan_modules": n, "faces": len(faces), "weights": "peaked test network (random body)",
                       "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
