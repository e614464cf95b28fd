"""``export_model.py``: a FAN or ResNetDepth ``.h5`` as NNabla ``.nnp`` or ONNX, by the output's extension."""
import logging

from .backends.export import EXPORTERS, ONNX_OPSET
from .cli_support import ArgumentParser, command_line
from .files import check_outputs
from .registry import ARCHITECTURES, MODULE_COUNTS

log = logging.getLogger("face_alignment")


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="export_model.py",
        description="Export FAN / ResNetDepth weights (.h5) as an NNabla .nnp or an ONNX model "
                    f"(opset {ONNX_OPSET}, any batch size). Input 'x' (B, C, 256, 256), output 'y'.")
    p.add_argument("--model", "-m", required=True, metavar="SRC.h5", help="NNabla weights (.h5)")
    p.add_argument("--output", "-o", required=True, metavar="DST",
                   help=f"file to write; its extension ({', '.join(EXPORTERS)}) chooses the format")
    p.add_argument("--arch", choices=list(ARCHITECTURES),
                   help="architecture, for .h5 files that do not record it (e.g. ibug-2dfan2)")
    p.add_argument("--network-size", type=int, choices=MODULE_COUNTS,
                   help="hourglass modules; default: what the weight file holds")
    p.add_argument("--force", action="store_true", help="overwrite DST if it exists")
    return p


@command_line
def main(argv=None):
    from .backends.export import export_model

    args = parser().parse_args(argv)
    # Before any work, and even with --force: never onto the weights themselves.
    check_outputs([("--output", args.output)], [("--model", args.model)])
    arch = export_model(args.model, args.output, arch=args.arch, num_modules=args.network_size, force=args.force)
    log.info("%s -> %s (%s)", args.model, args.output, arch.name)
    return 0
