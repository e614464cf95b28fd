"""``python -m face_alignment.dataset``: landmarks for every photo and video of a dataset, as a
resumable Parquet dataset (see the package's docstring and the README)."""
import logging
import time
from typing import Dict

from ..cli_support import ArgumentParser, command_line, positive_int
from ..errors import FaceAlignmentError
from ..files import check_utf8_path
from ..config import add_model_arguments
from ..inference_cli import add_tracking_arguments, face_alignment, find_model
from . import job
from .units import DEFAULT_PHOTOS_PER_UNIT, list_inputs, make_units

log = logging.getLogger("face_alignment")
ENGINES = ("local", "ray")


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m face_alignment.dataset",
        description="68 facial landmarks for every photo and video of a dataset, as a Parquet dataset in OUT_DIR: "
        "resumable (a re-run does only what is missing), on this process or on Ray.")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="folders (searched recursively for images and videos), image or video files, or .txt files "
                   "listing paths (one a line, relative to the list's folder)")
    p.add_argument("--output", required=True, metavar="OUT_DIR",
                   help="folder of the output (made if need be): landmarks/part-*.parquet, errors.parquet, "
                   "manifest.json; an earlier run's output is resumed")
    add_model_arguments(p)
    add_tracking_arguments(p.add_argument_group("videos"))
    p.add_argument("--photos-per-unit", type=positive_int, default=DEFAULT_PHOTOS_PER_UNIT, metavar="K",
                   help="photos per work unit and output shard (default: %(default)s); each video is a unit")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: in this process (default); ray: Ray Data actors, a local Ray or --ray-address")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="--engine ray: worker processes, each with its own model (default: %(default)s)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="--engine ray: join this Ray cluster (e.g. auto, or ray://head:10001) instead of starting "
                   "a local Ray; the inputs, the model and OUT_DIR must be at the same paths on every node")
    p.add_argument("--force", action="store_true",
                   help="if OUT_DIR holds the output of another model or other options, remove it and start over")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def video_options(args) -> Dict:
    return dict(detect_every=args.detect_every, smooth=args.smooth, smooth_min_cutoff=args.smooth_min_cutoff,
                smooth_beta=args.smooth_beta)


@command_line
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    if args.engine == "local" and (args.workers != 1 or args.ray_address):
        raise FaceAlignmentError("--workers and --ray-address are for --engine ray")
    model = find_model(args.model, "3D" if args.landmarks_3d else "2D")
    depth = find_model(args.resnet_depth_model, "depth") if args.landmarks_3d else None
    check_utf8_path(args.output)
    items = list_inputs(args.input)
    if not items:
        raise FaceAlignmentError(f"{', '.join(args.input)}: no images or videos found")
    units = make_units(items, args.photos_per_unit)
    # Built here for both engines: a bad model or option is one line before anything is
    # written, and ONNX Runtime's model is exported once, before any worker looks for it.
    fa = face_alignment(args, model, depth)
    job_settings = job.settings(fa.config, args)
    job.prepare_output(args.output, job_settings, args.force)
    todo = job.missing_units(args.output, units)
    log.info("%d inputs in %d units: %d units to do, %d done before", len(items), len(units), len(todo),
             len(units) - len(todo))
    if args.engine == "local":
        from .local import run_local
        done = run_local(fa, todo, args.output, video_options(args), progress=not args.no_progress)
    else:
        config = fa.config
        del fa  # the workers build their own, from its configuration
        from .ray_engine import run_ray
        done = run_ray(args, config, todo, args.output, video_options(args))
    errors = job.assemble_errors(args.output, units)
    faces = job.count_faces(args.output, units)
    seconds = time.perf_counter() - started
    items_run = sum(d["items"] for d in done)
    summary = {"items": len(items), "units": len(units), "items_this_run": items_run,
               "units_this_run": len(done), "faces": faces, "errors": errors.num_rows,
               "seconds_this_run": round(seconds, 3), "engine": args.engine}
    job.write_manifest(args.output, job_settings, summary)
    log.info("%d items (%d this run, %d done before), %d faces, %d errors%s, %.1f s, %.2f items/s", len(items),
             items_run, len(items) - items_run, faces, errors.num_rows,
             f" (see {args.output}/{job.ERRORS_TABLE})" if errors.num_rows else "", seconds,
             items_run / seconds if seconds > 0 else 0.0)
    return 0
