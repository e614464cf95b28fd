"""``python -m face_alignment.dataset``: landmarks for every photo and video of a dataset, as a
resumable Parquet dataset (see the package's docstring and the README)."""
import logging
import os
import time
from typing import Dict, Optional

from ..cli_support import ArgumentParser, command_line, positive_int
from ..errors import FaceAlignmentError
from ..files import check_utf8_path
from ..cli_flags import add_model_arguments, add_tracking_arguments, check_model_options, config_from_args
from ..hub import find_model
from . import job, shards
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
                   help="folder of the output (made if need be), a Parquet dataset of the landmark rows "
                   "(pandas.read_parquet(OUT_DIR) reads it): landmarks/part-*.parquet, _errors.parquet, "
                   "_manifest.json; an earlier run's output is resumed")
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
                   help="if OUT_DIR holds the output of another model or other options, remove it (the files a "
                   "dataset job wrote, and only those) and start over")
    p.add_argument("--prune", action="store_true",
                   help="take the rows of inputs that are no longer listed out of OUT_DIR (without it they are kept "
                   "and counted in the summary)")
    p.add_argument("--retry-errors", action="store_true",
                   help="try again the inputs that failed before (without it, only those whose file changed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def face_alignment(config, cache_dir: Optional[str]):
    """The FaceAlignment of ``config``, its exports in ``cache_dir`` (None: the default cache)."""
    from ..api import FaceAlignment

    return FaceAlignment.from_config(config, cache_dir=cache_dir)


def video_options(args) -> Dict:
    return dict(detect_every=args.detect_every, smooth=args.smooth, smooth_min_cutoff=args.smooth_min_cutoff,
                smooth_beta=args.smooth_beta)


@command_line
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    check_model_options(args)
    started = time.perf_counter()
    if args.engine == "local" and (args.workers != 1 or args.ray_address):
        raise FaceAlignmentError("--workers and --ray-address are for --engine ray")
    # Every check comes before the model is loaded (a 3D model's export takes seconds).
    check_utf8_path(args.output)
    job.check_output(args.output)
    model = find_model(args.model, "3D" if args.landmarks_3d else "2D")
    depth = find_model(args.resnet_depth_model, "depth") if args.landmarks_3d else None
    inputs = list_inputs(args.input)
    if not inputs:
        raise FaceAlignmentError(f"{', '.join(args.input)}: no images or videos found")
    # The configuration checks every option and rule and hashes the weights, loading nothing.
    config = config_from_args(args, model, depth)
    job_settings = job.settings(config, args)
    with job.locked(args.output):
        job.move_old_layout(args.output)
        start_over = job.check_settings(args.output, job_settings, args.force)
        # Built here for both engines: a bad model or option is one line before anything is
        # written, and ONNX Runtime's model is exported once, before any worker looks for it.
        fa = face_alignment(config, args.cache_dir)
        dims = 3 if config.is_3d else 2
        job.prepare_output(args.output, job_settings, start_over)
        return _run(args, fa, inputs, job_settings, dims, started)


def _run(args, fa, inputs, job_settings, dims, started) -> int:
    found = shards.read_shards(args.output, dims)
    for path in found.foreign:
        log.warning("%s: not written by a dataset job (left in place; a reader of the folder may fail on "
                    "it: move it away)", path)
    for problem in found.damaged:
        log.warning("%s; removed, its inputs are done again", problem)
    plan = shards.plan(inputs, found.records, prune=args.prune, retry_errors=args.retry_errors)
    for unit_id, paths in sorted(plan.drop.items()):
        shards.take_out(args.output, found.records[unit_id], paths)
        if not found.records[unit_id]["members"]:
            del found.records[unit_id]
    units = make_units(plan.todo, args.photos_per_unit)
    log.info("%d inputs: %d done before, %d to do (%d changed since, %d failed before and retried) in %d units",
             len(inputs), plan.done, len(plan.todo), plan.changed, plan.retried, len(units))
    if args.engine == "local":
        from .local import run_local
        done = run_local(fa, units, args.output, video_options(args), progress=not args.no_progress)
    else:
        config = fa.config
        del fa  # the workers build their own, from its configuration
        from .ray_engine import run_ray
        done = run_ray(args, config, units, args.output, video_options(args))
    records = shards.read_shards(args.output, dims).records
    errors = shards.assemble_errors(args.output, records)
    job.write_errors_table(args.output, errors)
    faces = sum(r["rows"] for r in records.values())
    seconds = time.perf_counter() - started
    items_run = sum(d["items"] for d in done)
    summary = {"items": len(inputs), "units": len(records), "items_this_run": items_run,
               "units_this_run": len(done), "faces": faces, "errors": errors.num_rows,
               "unlisted_kept": plan.unlisted, "pruned": plan.pruned, "damaged": len(found.damaged),
               "seconds_this_run": round(seconds, 3), "engine": args.engine}
    job.write_manifest(args.output, job_settings, summary)
    if plan.unlisted:
        log.info("%d inputs of an earlier run are no longer listed; their rows are kept; --prune removes them",
                 plan.unlisted)
    if plan.pruned:
        log.info("%d inputs of an earlier run are no longer listed: their rows were removed (--prune)", plan.pruned)
    if plan.failed:
        log.info("%d inputs failed before and are unchanged: not tried again (--retry-errors tries them)", plan.failed)
    log.info("%d items (%d this run, %d done before), %d faces, %d errors%s, %.1f s, %.2f items/s", len(inputs),
             items_run, plan.done, faces, errors.num_rows,
             f" (see {os.path.join(args.output, job.ERRORS_TABLE)})" if errors.num_rows else "", seconds,
             items_run / seconds if seconds > 0 else 0.0)
    return 0
