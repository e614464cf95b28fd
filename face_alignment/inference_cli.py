"""``model_inference.py``: landmarks for photos, drawn and/or saved as JSON.

Keeps every flag of nnabla-examples' script with its meaning, and adds what users of the
PyTorch face-alignment package expect: several images or folders, JSON output, given boxes,
a choice of decoding, flip augmentation and detector.
"""
import contextlib
import logging
import os
import stat
from typing import Dict, List, Optional, Sequence

from .boxes import read_boxes
from .cli_flags import add_model_arguments, add_tracking_arguments, check_model_options, config_from_args
from .cli_support import ArgumentParser, command_line, inputs_failed, reason, some_names
from .errors import FaceAlignmentError
from .files import PICTURE_NAMES, check_outputs, check_utf8_path, picture_names
from .hub import find_model
from .writers import Faces, open_writer

log = logging.getLogger("face_alignment")
PTS_SUFFIX = ".pts"


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="model_inference.py",
        description="68 facial landmarks with FAN in NNabla: detect faces, crop, infer, decode, draw.")
    inputs = p.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--test-image", action="append", metavar="PATH",
                        help="image file or folder of images; repeat for several")
    inputs.add_argument("--test-video", action="append", metavar="PATH",
                        help="video file (any container and codec FFmpeg decodes): landmarks for every frame, "
                        "faces detected every --detect-every frames and tracked in between; one video a run "
                        "(for many: python -m face_alignment.dataset)")
    p.add_argument("--output", help="picture to write (one image), or folder (several images, or an existing "
                   "folder; made if need be): "
                   f"{PICTURE_NAMES}. Default output.png (output/ for several), or nothing when only "
                   "--save-json is asked for. With --test-video: the annotated video (.mp4, .mkv, .mov or "
                   ".avi; same size and frame rate). No output may be an input or another output")
    add_model_arguments(p)
    p.add_argument("--boxes", help="JSON of boxes instead of detection: a list of [l, t, r, b] for every "
                   "image, or {file name: [[l, t, r, b], ...]} (images it does not name are detected; a name that is "
                   "none of the images', a misspelling most likely, is an error)")
    p.add_argument("--save-json", metavar="PATH", help="write all results as one JSON document")
    p.add_argument("--save-pts", metavar="DIR", help="write iBUG .pts files into DIR (made if need be), as 300W "
                   "ships them: STEM.pts for an image of one face, STEM_1.pts, STEM_2.pts... for several, 1-based "
                   "x y; images that share a stem are named as their pictures are. DIR may not be an input "
                   "image's folder, where such files are annotations")
    p.add_argument("--caption", help="text banner on drawn pictures (e.g. to say the weights are random)")
    video = p.add_argument_group("video (with --test-video)")
    video.add_argument("--save-landmarks", metavar="PATH", help="one row per face per frame: .parquet "
                       "(schema: face_alignment.landmark_table) or .json for short clips")
    add_tracking_arguments(video)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def collect_images(paths: List[str]) -> List[str]:
    """The image files of ``paths`` (files, or folders whose images are listed), each checked
    to be there and readable, so that a permission problem is reported as one."""
    from .pipeline.image import LOCAL_ONLY, is_url, list_images

    images = []
    for path in paths:
        if not path:
            raise FaceAlignmentError("--test-image '': an empty path; expected an image file or folder")
        try:
            is_folder = stat.S_ISDIR(os.stat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            raise FaceAlignmentError(f"{path}: {LOCAL_ONLY}" if is_url(path) else f"{path}: no such image or folder") \
                from None
        except OSError as e:  # e.g. a folder on the way that cannot be entered
            raise FaceAlignmentError(f"{path}: cannot reach the image or folder ({e.strerror})") from None
        if not is_folder:
            images.append(path)
            continue
        try:
            with os.scandir(path):
                pass
        except OSError as e:
            raise FaceAlignmentError(f"{path}: cannot list the folder ({e.strerror})") from None
        found = list_images(path)
        if not found:
            raise FaceAlignmentError(f"{path}: folder holds no images")
        images.extend(found)
    for image in images:
        check_utf8_path(image)
        if not os.access(image, os.R_OK):
            raise FaceAlignmentError(f"{image}: cannot read the image (permission denied)")
    return images


def picture_paths(output: Optional[str], images: List[str], into_folder: bool) -> List[Optional[str]]:
    """Where each image's picture goes: ``output`` itself (one image), in the folder
    ``output``, or nowhere without ``output``."""
    if not output:
        return [None] * len(images)
    if not into_folder:
        return [output]
    return [os.path.join(output, name) for name in picture_names(images)]


def pts_names(images: Sequence[str]) -> Dict[str, str]:
    """Each image's NAME for --save-pts (NAME.pts, NAME_1.pts...): its stem, or for images
    that share one, what their pictures are named by (:data:`PICTURE_NAMES`)."""
    return {image: name[:-len(PTS_SUFFIX)] for image, name in zip(images, picture_names(images, PTS_SUFFIX))}


def check_pts_folder(folder: str, images: Sequence[str]) -> None:
    """Refuse --save-pts into the folder of an input image: iBUG data sets keep each image's
    annotation beside it under the same stem (300W: indoor_001.png, indoor_001.pts), which
    the predictions would replace."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FaceAlignmentError(f"{folder}: --save-pts is a file; expected a folder")
    target = os.path.realpath(folder)
    for image in images:
        if os.path.realpath(os.path.dirname(image) or os.curdir) == target:
            raise FaceAlignmentError(f"{folder}: --save-pts is the folder of the input image {image}, where .pts "
                                     "files are its annotations; expected another folder")


@command_line
def main(argv=None):
    args = parser().parse_args(argv)
    from tqdm import tqdm

    from .pipeline import draw

    check_model_options(args)
    if args.test_video is not None:
        return _video(args)
    if args.save_landmarks:
        raise FaceAlignmentError("--save-landmarks is for --test-video; for images use --save-json")
    images = collect_images(args.test_image)
    several = len(images) > 1 or any(os.path.isdir(p) for p in args.test_image)
    output = args.output
    if output is None and not args.save_json and not args.save_pts:
        output = "output" if several else "output.png"
    # An existing folder takes the picture of even one image.
    into_folder = bool(output) and (several or os.path.isdir(output))
    pictures = picture_paths(output, images, into_folder)
    model = find_model(args.model, "3D" if args.landmarks_3d else "2D")
    depth = find_model(args.resnet_depth_model, "depth") if args.landmarks_3d else None
    # Every output is checked before any work, so that a mistake costs no wait and leaves no
    # half-done results; and no output may overwrite an input or another output.
    if output and not into_folder:
        draw.check_image_path(output)
    inputs = [("--test-image", p) for p in images] + [
        (flag, p) for flag, p in (("--boxes", args.boxes), ("--model", model), ("--resnet-depth-model", depth),
                                  ("--cnn-face-detection-model", args.cnn_detector_model),
                                  ("--detector-model", args.detector_model)) if p]
    outputs = [(f"--output picture of {image}" if into_folder else "--output", picture)
               for image, picture in zip(images, pictures) if picture]
    outputs += [("--save-json", args.save_json)] if args.save_json else []
    folders = [("--output", output)] if into_folder else []
    names = pts_names(images) if args.save_pts else {}
    if args.save_pts:
        check_pts_folder(args.save_pts, images)
        folders.append(("--save-pts", args.save_pts))
        outputs += [(f"--save-pts file of {image}", os.path.join(args.save_pts, name + PTS_SUFFIX))
                    for image, name in names.items()]
    check_outputs(outputs, inputs, folders=folders)
    boxes = read_boxes(args.boxes, images) if args.boxes else None

    fa = face_alignment(args, model, depth)

    failures = []
    # Results are written when every image is done; an error leaves none. The progress bar is
    # closed on the way out of an error too, so that the error comes on a line of its own, last.
    with contextlib.ExitStack() as writers, tqdm(total=len(images), unit="image",
                                                  disable=args.no_progress or not several) as progress:
        saved = [writers.enter_context(open_writer(kind, path, dims=3 if fa.is_3d else 2, **options))
                 for kind, path, options in (("results", args.save_json, {}),
                                             ("pts", args.save_pts, {"names": names})) if path]
        # One image that cannot be read (cut short, damaged) must not cost the others' results:
        # it is named, listed in the JSON's errors, and makes the exit status 2 at the end.
        results = fa.predict_files(images, boxes, on_error="yield")
        finished = 0  # images whose results the writers have
        try:
            for (path, image, prediction), target in zip(results, pictures):
                progress.update(1)
                if image is None:
                    failures.append((path, reason(path, prediction)))
                    for writer in saved:
                        writer.failed(*failures[-1])
                    if len(images) > 1:
                        log.warning("%s", prediction)
                    finished += 1
                    continue
                if len(prediction.boxes) == 0:
                    log.warning("%s: no face found", path)
                found = Faces.of_photo(path, image.shape, prediction)
                for writer in saved:
                    writer.write(found)
                finished += 1
                if target:
                    faces = [{"landmarks": lm, "box": box}
                             for lm, box in zip(prediction.landmarks, prediction.boxes)]
                    picture = draw.draw_3d_view(image, faces) if fa.is_3d else draw.draw_landmarks(image, faces)
                    if args.caption:
                        picture = draw.caption(picture, args.caption)
                    if into_folder:  # made with the first picture: no empty folder when every image fails
                        os.makedirs(output, exist_ok=True)
                    draw.save_image(target, picture)
                    log.info("%s: %d face(s) -> %s", path, len(prediction.boxes), target)
        except KeyboardInterrupt:
            # Ctrl-C (or SIGTERM) keeps the finished images' results, as the dataset job keeps
            # its finished shards; the images not done are listed as such.
            for writer in saved:
                for path in images[finished:]:
                    writer.failed(path, f"{path}: not done (interrupted)")
                writer.close()
                log.info("wrote %s (%d of %d images; interrupted)", writer.path, finished, len(images))
            raise
    for path in (args.save_json, args.save_pts):
        if path:
            log.info("wrote %s", path)
    if failures:
        raise inputs_failed(failures, len(images))
    return 0


def _video(args) -> int:
    from .video_cli import check_video_options, check_video_outputs, run_video

    if len(args.test_video) > 1:
        raise FaceAlignmentError(f"--test-video given {len(args.test_video)} times ({some_names(args.test_video)}); "
                                 "expected one video a run (for many: python -m face_alignment.dataset)")
    args.test_video = args.test_video[0]
    if not args.test_video:
        raise FaceAlignmentError("--test-video '': an empty path; expected a video file")
    check_video_options(args)
    model = find_model(args.model, "3D" if args.landmarks_3d else "2D")
    depth = find_model(args.resnet_depth_model, "depth") if args.landmarks_3d else None
    inputs = [(flag, p) for flag, p in (("--model", model), ("--resnet-depth-model", depth),
                                        ("--cnn-face-detection-model", args.cnn_detector_model),
                                  ("--detector-model", args.detector_model)) if p]
    info = check_video_outputs(args, inputs)
    return run_video(args, face_alignment(args, model, depth), info)


def face_alignment(args, model: str, depth: Optional[str]):
    """The FaceAlignment the flags ask for."""
    from .api import FaceAlignment

    # Built from the flags (the rules, "a 3D model needs a 3D FAN" among them, are the
    # configuration's, so the API keeps them too), then run.
    return FaceAlignment.from_config(config_from_args(args, model, depth), cache_dir=args.cache_dir)
