"""``model_inference.py``: landmarks for photos, drawn and/or saved as JSON.

Keeps every flag of nnabla-examples' script with its meaning, and adds what users of the
PyTorch face-alignment package expect: several images or folders, JSON output, given boxes,
a choice of decoding, flip augmentation and detector.
"""
import contextlib
import json
import logging
import os
import stat
from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np

from .boxes import as_boxes
from .cli_support import ArgumentParser, command_line, inputs_failed, positive_int, reason, some_names
from .config import add_model_arguments, config_from_args
from .errors import FaceAlignmentError, WeightsNotFoundError
from .files import check_outputs, check_utf8_path
from .video.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF
from .video.tracking import DEFAULT_DETECT_EVERY
from .writers import Faces, open_writer

log = logging.getLogger("face_alignment")

# Where a model is looked for when no path is given: nnabla-examples' default file name in
# the current folder, then what converters/fetch_weights.py puts in weights/.
DEFAULT_MODELS = {
    "2D": ("2DFAN4_NNabla_model.h5", "weights/2DFAN4.h5", "weights/2DFAN4_NNabla_model.h5"),
    "3D": ("3DFAN4_NNabla_model.h5", "weights/3DFAN4.h5", "weights/3DFAN4_NNabla_model.h5"),
    "depth": ("Resnet_Depth_NNabla_model.h5", "weights/depth.h5", "weights/Resnet_Depth_NNabla_model.h5"),
}
FETCH_NAMES = {"2D": "2DFAN4", "3D": "3DFAN4", "depth": "depth"}
BOXES_JSON = "a list of boxes or an object mapping file names to boxes"
# A --boxes file larger than this is refused unread: a million images' boxes take about 60 MB,
# and parsing JSON costs several times its size in memory.
MAX_BOXES_BYTES = 256 * 2**20


def add_tracking_arguments(group) -> None:
    """How faces are followed through a video: the flags of model_inference.py --test-video
    and of the dataset command."""
    group.add_argument("--detect-every", type=positive_int, default=DEFAULT_DETECT_EVERY, metavar="N",
                       help="run the face detector every N frames (and after a track is lost); in between, "
                       "boxes follow each face's landmarks (default: %(default)s; 1: detect every frame)")
    group.add_argument("--smooth", action="store_true", help="One Euro filter on each track's landmarks")
    group.add_argument("--smooth-min-cutoff", type=float, default=DEFAULT_MIN_CUTOFF, metavar="HZ",
                       help="its cutoff for a still face: lower smooths more (default: %(default)s)")
    group.add_argument("--smooth-beta", type=float, default=DEFAULT_BETA, metavar="B",
                       help="how fast the cutoff rises with speed: higher lags less (default: %(default)s)")


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


def check_model_options(args) -> None:
    """Model flags that would be silently ignored: refused before anything is loaded."""
    if args.resnet_depth_model and not args.landmarks_3d:
        raise FaceAlignmentError(f"--resnet-depth-model {args.resnet_depth_model}: ResNetDepth gives 3D landmarks' z; "
                                 "expected --landmarks-type-3D with it (or leave it out for 2D)")


def find_model(given: Optional[str], which: str) -> str:
    """``given``, else the first of DEFAULT_MODELS that exists, else the published weights
    as face-alignment users get them on first use (face_alignment.hub: our cache,
    $TORCH_HOME's checkpoints, a download). A PyTorch checkpoint given (the authors' .pth.tar)
    is converted once into the cache, and the conversion used."""
    if given:
        from .weights.convert import is_torch_checkpoint

        if is_torch_checkpoint(given):
            from .hub import converted_checkpoint
            from .registry import FAN, RESNET_DEPTH

            return converted_checkpoint(given, RESNET_DEPTH if which == "depth" else FAN)
        return given
    for candidate in DEFAULT_MODELS[which]:
        if os.path.isfile(candidate):
            return candidate
    from .hub import weights_path

    try:
        return weights_path(FETCH_NAMES[which])
    except WeightsNotFoundError as e:
        raise WeightsNotFoundError(
            f"no {which} model given and none of {', '.join(DEFAULT_MODELS[which])} exists; {e}; pass its path, "
            f"or fetch it: .venv/bin/python converters/fetch_weights.py {FETCH_NAMES[which]} (where the package is "
            f"installed: fan-fetch {FETCH_NAMES[which]})") from None


def collect_images(paths: List[str]) -> List[str]:
    """The image files of ``paths`` (files, or folders whose images are listed), each checked
    to be there and readable, so that a permission problem is reported as one."""
    from .pipeline.image import list_images

    images = []
    for path in paths:
        if not path:
            raise FaceAlignmentError("--test-image '': an empty path; expected an image file or folder")
        try:
            is_folder = stat.S_ISDIR(os.stat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            raise FaceAlignmentError(f"{path}: no such image or folder") from None
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


def read_boxes(path: str, images: List[str]) -> List[Optional[np.ndarray]]:
    """Boxes for each image from a JSON file; images it does not mention are detected. A name
    that is none of the images' is refused: most likely misspelt, it would silently leave its
    image to the detector, or its boxes unused."""
    try:
        # Checked before opening: opening a pipe would wait for a writer, and a device such as
        # /dev/zero never ends.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise FaceAlignmentError(f"{path}: --boxes is not a regular file (a device, pipe or folder); "
                                     f"expected a JSON file of {BOXES_JSON}")
        with open(path, "rb") as f:
            text = f.read(MAX_BOXES_BYTES + 1)
        if len(text) > MAX_BOXES_BYTES:
            raise FaceAlignmentError(f"{path}: --boxes file of more than {MAX_BOXES_BYTES // 2**20} MiB; expected "
                                     f"a JSON file of {BOXES_JSON}, at most that size")
        data = json.loads(text)
    except OSError as e:
        raise FaceAlignmentError(f"{path}: cannot read boxes ({e.strerror})") from None
    except ValueError as e:
        raise FaceAlignmentError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise FaceAlignmentError(f"{path}: JSON nested too deeply; expected {BOXES_JSON}") from None

    def parse(value, where):
        return as_boxes(value, f"{path}: {where}")

    if isinstance(data, list):
        boxes = parse(data, "the list")
        return [boxes for _ in images]
    if isinstance(data, dict):
        by_name = {name: parse(value, repr(name)) for name, value in data.items()}
        known = set(images) | {os.path.basename(p) for p in images}
        unknown = [name for name in by_name if name not in known]
        unnamed = [p for p in images if os.path.basename(p) not in by_name and p not in by_name]
        if unknown:
            detected = f", and {some_names(unnamed)} would be detected" if unnamed else ""
            raise FaceAlignmentError(
                f"{path}: {some_names(unknown)} {'names' if len(unknown) == 1 else 'name'} none of the images"
                f"{detected}; expected the file name or path of each image to give boxes for")
        return [by_name.get(os.path.basename(p), by_name.get(p)) for p in images]
    raise FaceAlignmentError(f"{path}: expected {BOXES_JSON}")


PICTURE_SUFFIX = "_landmarks.png"
PTS_SUFFIX = ".pts"
PICTURE_NAMES = (
    "each image's picture is named STEM_landmarks.png (face.jpg: face_landmarks.png); images that share "
    "a stem are named by their path below the folder they have in common, with '_' for '/' and the "
    "extension kept (a/face.jpg, b/face.jpg: a_face.jpg_landmarks.png, b_face.jpg_landmarks.png), and "
    "a name still taken (ignoring case) gets the first free number: face_landmarks_2.png")
NAME_MAX = 255  # bytes in a file name on common file systems


def picture_names(images: Sequence[str], suffix: str = PICTURE_SUFFIX) -> List[str]:
    """The file names of the pictures of ``images`` in one folder (or of other outputs, by
    their ``suffix``), in order: different from each other even where case is ignored (see
    :data:`PICTURE_NAMES`)."""
    tag, extension = os.path.splitext(suffix)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in images]
    sharing = Counter(stem.casefold() for stem in stems)
    groups: Dict[str, List[int]] = {}
    for index, stem in enumerate(stems):
        if sharing[stem.casefold()] > 1:
            groups.setdefault(stem.casefold(), []).append(index)
    names = [stem + suffix for stem in stems]
    for members in groups.values():
        paths = [os.path.abspath(images[i]) for i in members]
        common = os.path.commonpath([os.path.dirname(p) for p in paths])
        for index, path in zip(members, paths):
            flat = os.path.relpath(path, common).replace(os.sep, "_")
            if len(os.fsencode(flat + suffix)) <= NAME_MAX:
                names[index] = flat + suffix
    # The first image to have a name keeps it; a later one is numbered, skipping taken names.
    taken, repeated = set(), []
    for index, name in enumerate(names):
        if name.casefold() in taken:
            repeated.append(index)
        taken.add(name.casefold())
    for index in repeated:
        base = names[index][:-len(suffix)]
        number = 2
        while f"{base}{tag}_{number}{extension}".casefold() in taken:
            number += 1
        names[index] = f"{base}{tag}_{number}{extension}"
        taken.add(names[index].casefold())
    return names


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
        results = fa.predict_files(images, boxes, (fa.decode,), on_error="yield")
        finished = 0  # images whose results the writers have
        try:
            for (path, image, predictions), target in zip(results, pictures):
                progress.update(1)
                if image is None:
                    failures.append((path, reason(path, predictions)))
                    for writer in saved:
                        writer.failed(*failures[-1])
                    if len(images) > 1:
                        log.warning("%s", predictions)
                    finished += 1
                    continue
                prediction = predictions[fa.decode]
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
