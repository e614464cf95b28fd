"""Where the 3D step's time goes, per face, ours against the authors': drawing the 68 landmark
Gaussians at 256 x 256 (ResNetDepth's input) and ResNetDepth's forward pass. Random weights
(the time does not depend on them); the steps are timed in turns, so that load from elsewhere
on the machine falls on both alike.

    .venv/bin/python benchmarks/depth_profile.py --runs 5
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--batch", type=int, default=8, help="faces per batch for ours (default: %(default)s)")
    p.add_argument("--backends", nargs="+", default=["onnxruntime", "openvino"])
    args = p.parse_args()

    import tempfile

    import torch

    import authors_reference
    import checkpoints
    from face_alignment.backends.openvino_net import OpenVinoNetwork
    from face_alignment.backends.onnx_net import OnnxRuntimeNetwork
    from face_alignment.pipeline.depth_input import depth_input_from_points
    from face_alignment.registry import ARCHITECTURES
    from face_alignment.weights.convert import torch_to_nnabla
    from face_alignment.weights.loading import Weights

    torch.set_num_threads(2)
    utils = authors_reference.utils_module()
    depth = checkpoints.authors_depth(seed=40)
    params = torch_to_nnabla({k: v.numpy() for k, v in depth.state_dict().items()}, "resnet_depth", None, "random")
    cache = tempfile.mkdtemp(prefix="depth-profile-")
    weights = Weights(ARCHITECTURES["ResNetDepth"], params)
    ours = {"onnxruntime": lambda: OnnxRuntimeNetwork(weights, cache_dir=cache),
            "openvino": lambda: OpenVinoNetwork(weights, cache_dir=cache),
            "openvino-bf16": lambda: OpenVinoNetwork(weights, "bf16", cache_dir=cache)}
    networks = {name: ours[name]() for name in args.backends}

    rng = np.random.RandomState(0)
    points = (20 + 216 * rng.rand(args.batch, 68, 2)).astype(np.float32)
    crops = rng.rand(args.batch, 3, 256, 256).astype(np.float32)

    def authors_draw(face_points):
        maps = np.zeros((68, 256, 256), dtype=np.float32)
        for i in range(68):
            if face_points[i, 0] > 0 and face_points[i, 1] > 0:
                maps[i] = utils.draw_gaussian(maps[i], face_points[i], 2)
        return maps

    def authors_input():  # their 3D step: draw, then torch.cat with the crop
        return torch.cat((torch.from_numpy(crops[:1]), torch.from_numpy(authors_draw(points[0])).unsqueeze_(0)), 1)

    authors_inputs = authors_input()

    def authors_forward():
        with torch.no_grad():
            return depth(authors_inputs)

    steps = {
        "input (crop + 68 Gaussians), authors' (per face)": (authors_input, 1),
        f"input (crop + 68 Gaussians), ours (batch {args.batch})": (
            lambda: depth_input_from_points(crops, points), args.batch),
        "ResNetDepth, authors' eager (batch 1)": (authors_forward, 1),
    }
    inputs = depth_input_from_points(crops, points)
    for name, network in networks.items():
        steps[f"ResNetDepth, ours {name} (batch 1)"] = (lambda n=network: n(inputs[:1]), 1)
        steps[f"ResNetDepth, ours {name} (batch {args.batch})"] = (lambda n=network: n(inputs), args.batch)
    samples = {name: [] for name in steps}
    for name, (step, _) in steps.items():  # warm-up
        step()
    for _ in range(args.runs):
        for name, (step, faces) in steps.items():
            start = time.perf_counter()
            step()
            samples[name].append((time.perf_counter() - start) / faces)
    print(f"| step | ms per face (median of {args.runs}) |\n|---|---|")
    for name, times in samples.items():
        print(f"| {name} | {1000 * statistics.median(times):.2f} |")
    print(f"load average (1 min): {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
