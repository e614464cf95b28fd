"""Command lines for weights: convert a PyTorch checkpoint, fetch a known model."""
import logging

from ..cli_support import ArgumentParser, command_line
from ..files import check_outputs
from ..registry import ARCHITECTURES, DEFAULT_FAN, KNOWN_WEIGHTS, RESNET_DEPTH, default_architecture

log = logging.getLogger("face_alignment")


def _convert_parser(prog=None, expect_kind=None):
    p = ArgumentParser(
        prog=prog, description="Convert the authors' or ibug's PyTorch FAN / ResNetDepth weights to an NNabla .h5")
    p.add_argument("--pretrained-model", "-i", required=True, metavar="SRC",
                   help="checkpoint: .pth.tar (legacy), depth .pth.tar, TorchScript .zip, or ibug .pth")
    p.add_argument("--save-path", "-o", required=True, metavar="DST.h5", help="NNabla .h5 to write")
    if expect_kind == RESNET_DEPTH:
        arch_help = f"architecture (default: {default_architecture(RESNET_DEPTH, None).name})"
    else:
        defaults = ", ".join(f"{arch} for a {n}-module FAN" for n, arch in DEFAULT_FAN.items())
        arch_help = ("architecture (default: the one the file name starts with, e.g. 2DFAN4-…, 2dfan2…; "
                     f"for other names {defaults})")
    p.add_argument("--arch", choices=list(ARCHITECTURES), help=arch_help)
    p.add_argument("--force", action="store_true", help="overwrite DST.h5 if it exists")
    p.add_argument("--allow-pickle", action="store_true",
                   help="also load checkpoints holding Python objects besides tensors (runs code: trusted files only)")
    return p


def _convert(argv, expect_kind=None, prog=None):
    from .convert import convert_checkpoint

    args = _convert_parser(prog, expect_kind).parse_args(argv)
    # Before any work, and even with --force: never onto the checkpoint itself.
    check_outputs([("--save-path", args.save_path)], [("--pretrained-model", args.pretrained_model)])
    arch = convert_checkpoint(args.pretrained_model, args.save_path, arch=args.arch, force=args.force,
                              allow_pickle=args.allow_pickle, expect_kind=expect_kind)
    log.info("%s -> %s (%s)", args.pretrained_model, args.save_path, arch.name)
    return 0


@command_line
def convert_main(argv=None):
    return _convert(argv)


@command_line
def convert_depth_main(argv=None):
    return _convert(argv, expect_kind=RESNET_DEPTH, prog="convert_resnet_depth_weights.py")


@command_line
def fetch_main(argv=None):
    from .fetch import DEFAULT_DIR, fetch

    p = ArgumentParser(description="Download a known FAN model into weights/ and convert it to NNabla .h5")
    p.add_argument("name", nargs="?", choices=list(KNOWN_WEIGHTS), metavar="NAME",
                   help="one of: " + ", ".join(KNOWN_WEIGHTS))
    p.add_argument("--list", action="store_true", help="list the known models and exit")
    p.add_argument("--dest", default=DEFAULT_DIR, help="folder to put the .h5 in (default: %(default)s)")
    p.add_argument("--mirror", metavar="URL", help="fetch the same file names from this folder URL instead")
    p.add_argument("--no-check-hash", action="store_true",
                   help="accept a file whose sha256 does not start with the hash in its name")
    p.add_argument("--force", action="store_true", help="fetch again even if the .h5 is there")
    p.add_argument("--allow-pickle", action="store_true",
                   help="also load checkpoints holding Python objects besides tensors (trusted files only)")
    args = p.parse_args(argv)
    if args.list or not args.name:
        for w in KNOWN_WEIGHTS.values():
            print(f"{w.name:20s} {w.arch:16s} {w.format:13s} {w.url}")
        return 0
    path = fetch(args.name, args.dest, mirror=args.mirror, check_hash=not args.no_check_hash,
                 force=args.force, allow_pickle=args.allow_pickle, progress=True)
    print(path)
    return 0
