"""``python -m face_alignment.train``: train or fine-tune FAN on landmark data, ibug's recipe.

See docs/training.md. Writes RUN/last.h5, RUN/best.h5 (and the top-k snapshots), RUN/metrics.csv,
RUN/validation.csv, RUN/config.json, RUN/checkpoint.npz and TensorBoard events in RUN/tensorboard.
"""
import dataclasses
import os
import sys

from .backends.context import CONTEXTS, TYPE_CONFIGS, make_context
from .cli_flags import detector_name
from .cli_support import ArgumentParser, command_line, non_negative_int, positive_int
from .errors import FaceAlignmentError
from .registry import ARCHITECTURES, FAN, POOLINGS, architecture
from .training.graph import new_parameters
from .training.loop import RANK_BY, Settings, Trainer
from .training.solvers import OPTIMIZERS

# Command-line options that override the --arch's sizes (Architecture fields).
SIZE_OPTIONS = (("--modules", "num_modules"), ("--hg-features", "hg_features"), ("--hg-depth", "hg_depth"),
                ("--input-size", "input_size"), ("--stem-kernel", "stem_kernel"), ("--stem-stride", "stem_stride"),
                ("--stem-pool", "stem_pool"))


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m face_alignment.train", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="ibug tsv, folder of images with .pts beside, or landmark table")
    p.add_argument("--partition", action="append", default=None, metavar="SUBSET[/SPLIT]",
                   help="tsv partitions to train on, repeatable (default: every row)")
    p.add_argument("--boxes-from", type=detector_name, default=None, metavar="DETECTOR",
                   help="train on the boxes this detector finds (see docs/training-data.md)")
    p.add_argument("--raw-detector-boxes", action="store_true", help="with --boxes-from: the detector's boxes as they are")
    p.add_argument("--num-landmarks", type=positive_int, default=None, help="landmarks per face (default: the --arch's)")
    p.add_argument("--symmetry", default=None, help="mirror pairs file, to flip other landmark counts")
    p.add_argument("--val-data", default="", help="validation data (same forms as --data), un-augmented")
    p.add_argument("--val-every", type=non_negative_int, default=0, help="validate every K steps (0: at the end)")
    p.add_argument("--top-k", type=positive_int, default=1, help="snapshots kept, best first")
    p.add_argument("--rank-by", choices=sorted(RANK_BY), default="auc")
    p.add_argument("--arch", default="ibug-2dfan2", help=f"one of {', '.join(n for n, a in ARCHITECTURES.items() if a.kind == FAN)}")
    p.add_argument("--name", default=None, help="the trained architecture's name recorded in the .h5")
    for option, name in SIZE_OPTIONS:
        p.add_argument(option, type=positive_int, default=None, dest=name, help=f"override the architecture's {name}")
    p.add_argument("--pooling", choices=POOLINGS, default=None)
    p.add_argument("--instance-norm", action="store_true", default=None)
    p.add_argument("--init", default="", help="initial weights: .pth.tar, .pth or .h5 (default: random)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="rmsprop")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--lr-step-epochs", type=non_negative_int, default=0, help="StepLR step size in epochs (ibug: 8)")
    p.add_argument("--lr-gamma", type=float, default=0.7)
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--steps", type=non_negative_int, default=0)
    p.add_argument("--epochs", type=non_negative_int, default=0)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--reduced-decode", action="store_true",
                   help="decode large JPEGs at 1/2, 1/4 or 1/8 size when the crop is that much smaller: faster, "
                   "crops resampled from fewer pixels")
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--no-shuffle", action="store_true")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--heatmap-loss-weight", type=float, default=1.0)
    p.add_argument("--distance-loss-weight", type=float, default=0.0)
    p.add_argument("--freeze", default="", help="comma-separated parts kept fixed: stem, hg0, hg1, ...")
    p.add_argument("--checkpoint-every", type=positive_int, default=100)
    p.add_argument("--workers", type=non_negative_int, default=0)
    p.add_argument("--context", choices=CONTEXTS, default="cpu")
    p.add_argument("--type-config", choices=TYPE_CONFIGS, default="float")
    p.add_argument("--output", required=True, help="the run's folder")
    p.add_argument("--resume", action="store_true", help="carry on the run in --output from its checkpoint")
    return p


def trained_architecture(args):
    base = architecture(args.arch)
    if base.kind != FAN:
        raise FaceAlignmentError(f"--arch {args.arch}: only FAN variants are trained")
    sizes = {name: getattr(args, name) for _, name in SIZE_OPTIONS if getattr(args, name) is not None}
    for name in ("pooling", "instance_norm", "num_landmarks"):
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    changed = any(getattr(base, k) != v for k, v in sizes.items())
    name = args.name or (f"{base.name}-custom" if changed else base.name)
    return dataclasses.replace(base, name=name, description=f"trained from {base.name}", **sizes)


def initial_parameters(path: str, arch, seed: int):
    """The --init weights mapped onto ``arch``'s parameters, or random ones."""
    if not path:
        return new_parameters(arch, seed)
    if path.lower().endswith(".h5"):
        from .weights.h5 import read_h5
        from .weights.layout import IGNORED_SUFFIX

        params, _ = read_h5(path)
        params = {k: v for k, v in params.items() if not k.endswith(IGNORED_SUFFIX)}
    else:
        from .weights.convert import read_torch_checkpoint, torch_to_nnabla

        state, _ = read_torch_checkpoint(path)
        params = torch_to_nnabla(state, arch.kind, arch.num_modules, path, arch)
    from .weights.layout import check_layout, check_values

    check_layout(params, arch.kind, arch.num_modules, path, arch)
    check_values(params, path)
    return params


def check_losses(args):
    for option in ("heatmap_loss_weight", "distance_loss_weight"):
        if getattr(args, option) < 0:
            raise FaceAlignmentError(f"--{option.replace('_', '-')} {getattr(args, option)}: expected 0 or more")
    if args.heatmap_loss_weight + args.distance_loss_weight <= 0:
        raise FaceAlignmentError("--heatmap-loss-weight and --distance-loss-weight: expected one to be positive")
    if not (args.steps or args.epochs) and not args.resume:
        raise FaceAlignmentError("--steps or --epochs: expected how long to train")


@command_line
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    check_losses(args)
    context = make_context(args.context, type_config=args.type_config)
    arch = trained_architecture(args)
    freeze = [p for p in args.freeze.split(",") if p]
    from .training.graph import part_prefixes

    for part in freeze:
        try:
            part_prefixes(part, arch.num_modules)
        except ValueError as e:
            raise FaceAlignmentError(str(e)) from None
    # The initial weights first: a wrong --init is told before the data is read.
    init = new_parameters(arch, args.seed) if args.resume else initial_parameters(args.init, arch, args.seed)
    from .training import data

    heatmap_size = arch.heatmap_size
    config = data.DataConfig(image_size=arch.input_size, heatmap_size=heatmap_size, augment=not args.no_augment,
                             flip=not args.no_flip, num_landmarks=arch.num_landmarks, symmetry=args.symmetry,
                             reduced_decode=args.reduced_decode)
    training_set = data.open_training_set(args.data, config, args.partition, args.boxes_from,
                                          calibrate_boxes=not args.raw_detector_boxes)
    validation_set = None
    if args.val_data:
        validation_set = data.open_training_set(
            args.val_data, dataclasses.replace(config, augment=False, flip=False))
    for path, why in getattr(training_set, "skipped", []):
        print(f"note: {path}: left out ({why})", file=sys.stderr)
    settings = Settings(
        arch=dataclasses.asdict(arch), data=os.path.abspath(args.data), partitions=args.partition or [],
        boxes_from=args.boxes_from or "", init=os.path.abspath(args.init) if args.init else "",
        optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        lr_step_epochs=args.lr_step_epochs, lr_gamma=args.lr_gamma, batch_size=args.batch_size, steps=args.steps,
        epochs=args.epochs, shuffle=not args.no_shuffle, augment=not args.no_augment, flip=not args.no_flip,
        reduced_decode=args.reduced_decode,
        seed=args.seed, heatmap_loss_weight=args.heatmap_loss_weight,
        distance_loss_weight=args.distance_loss_weight, freeze=freeze,
        val_data=os.path.abspath(args.val_data) if args.val_data else "", val_every=args.val_every,
        top_k=args.top_k, rank_by=args.rank_by, checkpoint_every=args.checkpoint_every)
    trainer = Trainer(settings, arch, training_set, data.batches, args.output, init, validation_set, args.workers,
                      context, resume=args.resume, progress=not args.quiet)  # -q: no progress bar either
    result = trainer.run()
    steps = result['step']
    print(f"{args.output}: {steps} step{'' if steps == 1 else 's'}; weights in {os.path.join(args.output, 'last.h5')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
