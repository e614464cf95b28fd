"""The authors' face-alignment 1.5.0 doing a batch job: landmarks for every image of a folder,
with given face boxes, as one process.

    python benchmarks/authors_pipeline.py --fan-checkpoint 2DFAN4-11f355bf06.pth.tar \
        --images FOLDER --boxes boxes.json --save-json out.json
    # 3D: a 3DFAN4 checkpoint and --depth-checkpoint depth-2a464da4ea.pth.tar

Their code is never installed (it imports as ``face_alignment``, like this project): their
``models/fan.py``, ``models/resnet.py`` and ``utils.py`` are executed from the wheel in
``.reference/``. The steps are those of their ``FaceAlignment.get_landmarks_from_image`` with
its defaults except that flip is off and nothing is compiled: boxes are cropped with their
``crop``, FAN runs one face at a time (their ``max_batch_size=1``), heatmaps are decoded by
their numba ``get_preds_fromhm``, and for 3D their ``draw_gaussian`` heatmaps go through
ResNetDepth. Images are read with their ``get_image``. The output is the document of
``model_inference.py --save-json``.
"""
import argparse
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import authors_reference  # noqa: E402  (found through the path above)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class AuthorsPipeline:
    """Their networks with random-weight checkpoints loaded the way their API loads the real ones."""

    def __init__(self, fan_checkpoint: str, depth_checkpoint: Optional[str] = None,
                 num_modules: int = 4, threads: int = 2, max_batch_size: int = 1):
        torch.set_num_threads(threads)
        self.utils = authors_reference.utils_module()
        self.max_batch_size = max_batch_size
        self.fan = authors_reference.fan_module("avg").FAN(num_modules)
        self.fan.load_state_dict(torch.load(fan_checkpoint, map_location="cpu", weights_only=True))
        self.fan.eval()
        self.depth = None
        if depth_checkpoint is not None:
            self.depth = authors_reference.resnet_module().ResNetDepth()
            checkpoint = torch.load(depth_checkpoint, map_location="cpu", weights_only=False)
            self.depth.load_state_dict({k.replace("module.", ""): v for k, v in checkpoint["state_dict"].items()})
            self.depth.eval()

    def read(self, path: str) -> np.ndarray:
        return self.utils.get_image(path)

    @torch.no_grad()
    def landmarks(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """(landmarks (68, 2|3), scores (68,)) per box, as their get_landmarks_from_image computes them."""
        U = self.utils
        centers, scales, crops = [], [], []
        for d in boxes:
            center = np.array([d[2] - (d[2] - d[0]) / 2.0, d[3] - (d[3] - d[1]) / 2.0])
            center[1] = center[1] - (d[3] - d[1]) * U.CENTER_Y_OFFSET
            scale = (d[2] - d[0] + d[3] - d[1]) / U.REFERENCE_SCALE
            centers.append(center)
            scales.append(scale)
            crops.append(U.crop(image, center, scale).transpose((2, 0, 1)).astype(np.float32) / 255.0)
        if not crops:
            return []
        all_crops = torch.from_numpy(np.stack(crops))
        chunks = []
        for start in range(0, len(crops), self.max_batch_size):
            out = self.fan(all_crops[start:start + self.max_batch_size])
            chunks.append((out[-1] if isinstance(out, list) else out).detach())
        heatmaps = torch.cat(chunks).numpy()

        results = []
        for i in range(len(crops)):
            pts, pts_img, scores = U.get_preds_fromhm(heatmaps[i:i + 1], centers[i], scales[i])
            pts = torch.from_numpy(pts).view(U.NUM_LANDMARKS, 2) * 4
            pts_img = torch.from_numpy(pts_img).view(U.NUM_LANDMARKS, 2)
            if self.depth is not None:
                pts_img = torch.cat((pts_img, self._depth(all_crops[i:i + 1], pts, scales[i])), 1)
            results.append((pts_img.numpy(), scores[0]))
        return results

    def _depth(self, crop: torch.Tensor, points_crop: torch.Tensor, scale: float) -> torch.Tensor:
        U = self.utils
        size = U.CROP_RESOLUTION
        heatmaps = np.zeros((U.NUM_LANDMARKS, size, size), dtype=np.float32)
        for j in range(U.NUM_LANDMARKS):
            if points_crop[j, 0] > 0 and points_crop[j, 1] > 0:
                heatmaps[j] = U.draw_gaussian(heatmaps[j], points_crop[j], 2)
        depth_input = torch.cat((crop, torch.from_numpy(heatmaps).unsqueeze_(0)), 1)
        z = self.depth(depth_input).data.view(U.NUM_LANDMARKS, 1).to(dtype=torch.float32)
        return z * (1.0 / (size / (U.SCALE_FACTOR * scale)))


def list_images(path: str) -> List[str]:
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(path, name) for name in os.listdir(path)
                  if name.lower().endswith(IMAGE_SUFFIXES))


def read_boxes(path: str) -> Dict[str, List[List[float]]]:
    with open(path) as f:
        return json.load(f)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="The authors' FAN pipeline over a folder, with given boxes.")
    p.add_argument("--fan-checkpoint", required=True, help="2DFAN4/3DFAN4 state dict (.pth.tar)")
    p.add_argument("--depth-checkpoint", help="ResNetDepth checkpoint (.pth.tar): 3D landmarks")
    p.add_argument("--network-size", type=int, default=4, help="hourglass modules (default: %(default)s)")
    p.add_argument("--images", required=True, help="image file or folder")
    p.add_argument("--boxes", required=True, help='JSON {"file.jpg": [[l, t, r, b], ...]}')
    p.add_argument("--save-json", required=True, help="where to write the landmarks")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    args = p.parse_args(argv)

    started = time.perf_counter()
    pipeline = AuthorsPipeline(args.fan_checkpoint, args.depth_checkpoint, args.network_size, args.threads)
    boxes = read_boxes(args.boxes)
    records = []
    for path in list_images(args.images):
        image = pipeline.read(path)
        faces = pipeline.landmarks(image, boxes.get(os.path.basename(path), []))
        records.append({"path": path, "width": int(image.shape[1]), "height": int(image.shape[0]),
                        "faces": [{"box": [float(v) for v in box], "landmarks": points.astype(float).tolist(),
                                   "scores": scores.astype(float).tolist()}
                                  for box, (points, scores) in zip(boxes.get(os.path.basename(path), []), faces)]})
    with open(args.save_json, "w") as f:
        json.dump({"images": records}, f)
    print(f"{len(records)} images in {time.perf_counter() - started:.2f} s after imports", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
