"""``fan-convert-detector``: a face detector's published weights to our NNabla ``.h5``.

Each detector with a converter is one entry of :data:`CONVERTERS`: its name and the
``module:function`` that converts, called as ``function(source, destination, force)`` (and
``allow_pickle=True`` when asked for) and returning a short description of what it wrote (imported only when that detector is asked for).
"""
import logging

from ..cli_support import ArgumentParser, command_line
from ..files import check_outputs
from ..plugins import load_reference

log = logging.getLogger("face_alignment")

CONVERTERS = {
    # MediaPipe's .tflite, or face-alignment's blazeface.pth / blazefaceback.pth
    "blazeface": "face_alignment.detection.blazeface_convert:convert_blazeface",
    # face-alignment's s3fd-619a316812.pth and retinaface_mobilenet0.25.pth
    "sfd": "face_alignment.detection.sfd:convert_sfd",
    "retinaface": "face_alignment.detection.retinaface:convert_retinaface",
}


def _parser():
    p = ArgumentParser(prog="convert_detector_weights.py",
                       description="Convert a face detector's published weights to an NNabla .h5")
    p.add_argument("--detector", required=True, choices=list(CONVERTERS), help="which detector the weights are for")
    p.add_argument("--pretrained-model", "-i", required=True, metavar="SRC",
                   help="blazeface: MediaPipe's face_detection_{full_range,short_range,back}.tflite, "
                        "or face-alignment's blazeface.pth / blazefaceback.pth; sfd: face-alignment's "
                        "s3fd-619a316812.pth; retinaface: its retinaface_mobilenet0.25.pth")
    p.add_argument("--save-path", "-o", required=True, metavar="DST.h5", help="NNabla .h5 to write")
    p.add_argument("--force", action="store_true", help="overwrite DST.h5 if it exists")
    p.add_argument("--allow-pickle", action="store_true",
                   help="sfd, retinaface: also load checkpoints holding Python objects besides tensors "
                        "(runs code: trusted files only)")
    return p


@command_line
def main(argv=None):
    args = _parser().parse_args(argv)
    # Before any work, and even with --force: never onto the source itself.
    check_outputs([("--save-path", args.save_path)], [("--pretrained-model", args.pretrained_model)])
    convert = load_reference(CONVERTERS[args.detector], "converter", class_only=False)
    extra = {"allow_pickle": True} if args.allow_pickle else {}
    written = convert(args.pretrained_model, args.save_path, force=args.force, **extra)
    log.info("%s -> %s (%s %s)", args.pretrained_model, args.save_path, args.detector, written)
    return 0
