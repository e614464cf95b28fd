"""ibug's trainer (hhj1897/fan_training, ../shared/reference/ibug-fan-training), run as it is in
a process of its own: ``python ibug_training_reference.py train|distance SPEC.json OUT.npz``.

It imports ``utils``, ``models``, ``datasets`` and ``losses`` from its folder, which goes first
on ``sys.path``; nothing of this project is imported. SPEC names the tsv, the network's
configuration, the optimiser and the number of steps; OUT receives the batches its
``LandmarkDataset`` made (augmentation off, tsv order), the losses of ``compute_losses`` before
each update, and the network's state before and after (its ``init`` state dict is also saved
as a ``.pth`` for our converter).
"""
import json
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def main(spec_path, out_path):
    with open(spec_path) as f:
        spec = json.load(f)
    sys.path.insert(0, spec["reference"])
    import numpy as np
    import torch
    from datasets.landmark_dataset import LandmarkDataset
    from models import FAN
    from train import compute_losses

    torch.set_num_threads(spec.get("threads", 1))
    torch.manual_seed(spec["seed"])
    model = FAN(FAN.create_config(**spec["config"]))
    # BatchNorm's running statistics away from 0 and 1, so a wrong update shows.
    g = torch.Generator().manual_seed(spec["seed"] + 1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.data = 0.2 * torch.randn(module.num_features, generator=g)
            module.running_var.data = 0.5 + torch.rand(module.num_features, generator=g)
    torch.save(model.state_dict(), spec["init_pth"])
    initial = {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}

    data_config = LandmarkDataset.create_config(image_size=spec["config"]["input_size"],
                                                heatmap_size=spec["config"]["input_size"] // 4)
    dataset = LandmarkDataset(spec["tsv"], [tuple(p) for p in spec["partitions"]], data_config)
    loader = torch.utils.data.DataLoader(dataset, batch_size=spec["batch_size"], shuffle=False, num_workers=0)
    if spec["optimizer"] == "rmsprop":
        optimiser = torch.optim.RMSprop(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    elif spec["optimizer"] == "sgd":
        optimiser = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    else:
        optimiser = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    model.train()
    out = {"losses": [], "heatmap_losses": [], "distance_losses": []}
    batches = {k: [] for k in ("crop", "heatmaps", "landmarks", "landmark_box_corners", "weight")}
    step = 0
    while step < spec["steps"]:
        for images, heatmaps, landmarks, _, corners, metadata in loader:
            if step == spec["steps"]:
                break
            weights = (metadata["weight"] / dataset.weight_norm).float() if dataset.weight_norm > 0 else None
            predicted = model(images)
            total, heatmap_loss, distance_loss = compute_losses(
                predicted, heatmaps, landmarks.float(), images.shape, corners.float(), weights,
                spec["heatmap_weight"], spec["distance_weight"], force_to_compute_all_losses=True)
            optimiser.zero_grad()
            total.backward()
            optimiser.step()
            for key, value in (("crop", images), ("heatmaps", heatmaps), ("landmarks", landmarks),
                               ("landmark_box_corners", corners), ("weight", metadata["weight"])):
                batches[key].append(value.detach().float().numpy())
            out["losses"].append(float(total))
            out["heatmap_losses"].append(float(heatmap_loss))
            out["distance_losses"].append(float(distance_loss))
            step += 1
    final = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    arrays = {f"batch/{k}": np.stack(v) for k, v in batches.items()}
    arrays.update({k: np.array(v) for k, v in out.items()})
    arrays.update({f"initial/{k}": v for k, v in initial.items()})
    arrays.update({f"final/{k}": v for k, v in final.items()})
    arrays["weight_norm"] = np.array(dataset.weight_norm)
    np.savez(out_path, **arrays)


def distance_loss(spec_path, out_path):
    """ibug's landmark_distance_loss and its gradient (autograd) on the heatmaps of SPEC's npz."""
    with open(spec_path) as f:
        spec = json.load(f)
    sys.path.insert(0, spec["reference"])
    import numpy as np
    import torch
    from losses import landmark_distance_loss
    from utils import get_bbox_sizes

    inputs = np.load(spec["inputs"])
    heatmaps = [torch.from_numpy(h).requires_grad_() for h in inputs["heatmaps"]]
    corners = torch.from_numpy(inputs["corners"])
    loss = landmark_distance_loss(heatmaps, torch.from_numpy(inputs["landmarks"]), (1, 3, spec["size"], spec["size"]),
                                  get_bbox_sizes(corners)[0], torch.from_numpy(inputs["weights"]),
                                  gamma=spec["gamma"], radius=spec["radius"])
    loss.backward()
    np.savez(out_path, loss=loss.detach().numpy(), grad=np.stack([h.grad.numpy() for h in heatmaps]))


if __name__ == "__main__":
    {"train": main, "distance": distance_loss}[sys.argv[1]](*sys.argv[2:])
