"""Convert a face detector's published weights to an NNabla .h5 (see --help).

Each detector that has a converter adds it to CONVERTERS: ``convert(src, dst, force=False,
allow_pickle=False)``.
"""
import logging
import sys

from face_alignment.cli_support import ArgumentParser, command_line
from face_alignment.detection.retinaface import convert_retinaface
from face_alignment.detection.sfd import convert_sfd
from face_alignment.files import check_outputs

CONVERTERS = {"sfd": convert_sfd, "retinaface": convert_retinaface}

log = logging.getLogger("face_alignment")


@command_line
def main(argv=None):
    p = ArgumentParser(description="Convert a face detector's published weights to an NNabla .h5")
    p.add_argument("--detector", required=True, choices=list(CONVERTERS), help="which detector the weights are")
    p.add_argument("--pretrained-model", "-i", required=True, metavar="SRC",
                   help="the published file: face-alignment's s3fd-619a316812.pth, retinaface_mobilenet0.25.pth")
    p.add_argument("--save-path", "-o", required=True, metavar="DST.h5", help="NNabla .h5 to write")
    p.add_argument("--force", action="store_true", help="overwrite DST.h5 if it exists")
    p.add_argument("--allow-pickle", action="store_true",
                   help="also load checkpoints holding Python objects besides tensors (runs code: trusted files only)")
    args = p.parse_args(argv)
    check_outputs([("--save-path", args.save_path)], [("--pretrained-model", args.pretrained_model)])
    CONVERTERS[args.detector](args.pretrained_model, args.save_path, force=args.force,
                              allow_pickle=args.allow_pickle)
    log.info("%s -> %s (%s)", args.pretrained_model, args.save_path, args.detector)
    return 0


if __name__ == "__main__":
    sys.exit(main())
