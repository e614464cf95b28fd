"""One dataset job's output folder: its manifest, the units it still needs, writing one unit,
and assembling ``errors.parquet``. Both engines use these; only who calls ``run_unit`` differs.
"""
import glob
import json
import logging
import os
import shutil
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..errors import FaceAlignmentError, VideoTruncatedError
from ..files import TEMP_PREFIX, atomic_write
from ..landmark_table import LANDMARKS, MANIFEST, LandmarkTableWriter, shard_name
from .units import PHOTO

log = logging.getLogger("face_alignment")

ERRORS = "errors"
ERRORS_TABLE = "errors.parquet"
WORKERS = "_workers"  # Ray: a file per worker process that took part (its pid), for operators
ERRORS_SCHEMA = pa.schema([
    pa.field("path", pa.string(), nullable=False),  # the input, as in the landmark table's video column
    pa.field("reason", pa.string(), nullable=False),  # one line
    pa.field("kept_rows", pa.int64(), nullable=False),  # rows written for it anyway (a video cut short)
])
# What a job's rows depend on besides the model configuration: how videos are tracked and
# how photos are grouped. Engine, workers and progress do not.
JOB_OPTIONS = ("detect_every", "smooth", "smooth_min_cutoff", "smooth_beta", "photos_per_unit")


def settings(config, args) -> Dict:
    """What the rows of a job depend on, as recorded in and compared with the manifest: the
    version, the model configuration (a :class:`~face_alignment.config.ModelConfig`, which
    holds the weights' sha256s) and :data:`JOB_OPTIONS`."""
    return {"version": __version__, "config": config.to_dict(),
            "job": {name: getattr(args, name) for name in JOB_OPTIONS}}


def _differences(old: Dict, new: Dict) -> List[str]:
    """"option old -> new" for each difference that changes rows. Configurations are compared
    as configurations: options spelled out with their default value are no difference."""
    from ..config import ModelConfig

    changed = [f"version {old.get('version')!r} -> {new['version']!r}"] if old.get("version") != new["version"] else []
    try:
        old_config = ModelConfig.from_dict(old["config"])
    except (KeyError, TypeError, FaceAlignmentError):
        changed.append("config: recorded in another form (an earlier version's manifest)")
    else:
        changed += ModelConfig.from_dict(new["config"]).differences(old_config)
    old_job = old.get("job") if isinstance(old.get("job"), dict) else {}
    changed += [f"{key} {old_job.get(key)!r} -> {value!r}" for key, value in sorted(new["job"].items())
                if old_job.get(key) != value]
    return changed


def _ours(out_dir: str) -> List[str]:
    return [os.path.join(out_dir, name) for name in (MANIFEST, LANDMARKS, ERRORS, ERRORS_TABLE, WORKERS)]


def prepare_output(out_dir: str, job_settings: Dict, force: bool) -> None:
    """Make ``out_dir`` ready: new, or an earlier run's with the same settings (its finished
    units are kept). Different settings are refused, one line, unless ``force``: then what the
    earlier run wrote (and only that) is removed and the job starts over. Temporary files that
    a killed run left are removed. Writes the manifest (not yet complete)."""
    manifest_path = os.path.join(out_dir, MANIFEST)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FaceAlignmentError(f"{out_dir}: --output is a file; expected a folder (made if need be)")
    if os.path.isdir(out_dir):
        if os.path.exists(manifest_path):
            try:
                with open(manifest_path) as f:
                    old = json.load(f)["settings"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise FaceAlignmentError(f"{manifest_path}: not a dataset job's manifest ({e})") from None
            changed = _differences(old, job_settings)
            if changed and not force:
                raise FaceAlignmentError(
                    f"{out_dir}: holds the output of another model or other options ({'; '.join(changed[:3])}"
                    f"{'; ...' if len(changed) > 3 else ''}); pass --force to start over in it, or choose another "
                    f"--output")
            if changed:
                log.info("%s: --force: removing the earlier run's output (%s)", out_dir, "; ".join(changed))
                for path in _ours(out_dir):
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    elif os.path.exists(path):
                        os.remove(path)
        elif os.listdir(out_dir):
            raise FaceAlignmentError(f"{out_dir}: a folder that holds other files and no {MANIFEST}; expected a new "
                                     f"or empty folder, or a dataset job's output to resume")
    for folder in (out_dir, os.path.join(out_dir, LANDMARKS), os.path.join(out_dir, ERRORS)):
        os.makedirs(folder, exist_ok=True)
    for folder in (out_dir, os.path.join(out_dir, LANDMARKS), os.path.join(out_dir, ERRORS)):
        for stale in glob.glob(os.path.join(glob.escape(folder), TEMP_PREFIX + "*")):
            os.remove(stale)
    write_manifest(out_dir, job_settings)


def write_manifest(out_dir: str, job_settings: Dict, summary: Optional[Dict] = None) -> None:
    document = {"settings": job_settings, "complete": summary is not None, "summary": summary}
    with atomic_write(os.path.join(out_dir, MANIFEST)) as tmp:
        with open(tmp, "w") as f:
            json.dump(document, f, indent=1, sort_keys=True)


def shard_path(out_dir: str, unit_id: str) -> str:
    return os.path.join(out_dir, LANDMARKS, shard_name(unit_id))


def errors_shard_path(out_dir: str, unit_id: str) -> str:
    return os.path.join(out_dir, ERRORS, shard_name(unit_id))


def missing_units(out_dir: str, units: Sequence[Dict]) -> List[Dict]:
    return [u for u in units if not os.path.exists(shard_path(out_dir, u["id"]))]


def _reason(error: BaseException) -> str:
    text = str(error) if isinstance(error, FaceAlignmentError) else f"{type(error).__name__}: {error}"
    return (text.strip().splitlines() or [type(error).__name__])[0]


def _write_errors(path: str, errors: List[Tuple[str, str, int]]) -> None:
    table = pa.table({"path": [e[0] for e in errors], "reason": [e[1] for e in errors],
                      "kept_rows": [e[2] for e in errors]}, schema=ERRORS_SCHEMA)
    with atomic_write(path) as tmp:
        pq.write_table(table, tmp)


def run_unit(fa, unit: Dict, out_dir: str, video_options: Dict) -> Dict:
    """Landmark one unit with ``fa`` and write it: its errors shard (if any) first, then its
    landmark shard, renamed into place last: that rename is the unit's completion. A bad
    input becomes an errors row; only what is not about an input (KeyboardInterrupt, a full
    disk, a worker's death) stops it, and leaves the unit to be done again."""
    unit_id, paths = unit["id"], list(unit["paths"])
    errors_path = errors_shard_path(out_dir, unit_id)
    if os.path.exists(errors_path):  # from an attempt that did not finish: this one decides
        os.remove(errors_path)
    dims = 3 if fa.is_3d else 2
    errors: List[Tuple[str, str, int]] = []
    writer = LandmarkTableWriter(shard_path(out_dir, unit_id), dims=dims)
    try:
        if unit["kind"] == PHOTO:
            _photos(fa, paths, writer, errors)
        else:
            writer = _video(fa, paths[0], writer, errors, video_options, dims, shard_path(out_dir, unit_id))
        if errors:
            _write_errors(errors_path, errors)
    except BaseException as error:
        writer.__exit__(type(error), error, error.__traceback__)
        raise
    writer.close()
    return {"id": unit_id, "items": len(paths), "faces": writer.rows, "errors": len(errors), "pid": os.getpid()}


def _photos(fa, paths: List[str], writer: LandmarkTableWriter, errors: List) -> None:
    """All photos in one call, so faces of consecutive photos share batches; if any photo
    fails, every photo again alone (the same way every time: resumed runs match)."""
    try:
        results = [(path, prediction) for path, _, predictions in fa.predict_files(paths, None, (fa.decode,))
                   for prediction in (predictions[fa.decode],)]
    except Exception:
        results = []
        for path in paths:
            try:
                [(_, _, predictions)] = list(fa.predict_files([path], None, (fa.decode,)))
                results.append((path, predictions[fa.decode]))
            except Exception as error:
                log.debug("%s", traceback.format_exc())
                errors.append((path, _reason(error), 0))
    for path, prediction in results:
        writer.add(path, 0, 0.0, None, prediction.boxes, prediction.landmarks, prediction.scores, "detector")


def _video(fa, path: str, writer: LandmarkTableWriter, errors: List, options: Dict, dims: int,
           target: str) -> LandmarkTableWriter:
    """Every frame's faces; a video that breaks off keeps its rows and gets an errors row, one
    that cannot be read (or fails otherwise) keeps no rows."""
    try:
        for result in fa.get_landmarks_from_video(path, **options):
            p = result.prediction
            writer.add(path, result.index, result.time, result.tracks, p.boxes, p.landmarks, p.scores,
                       result.sources)
    except VideoTruncatedError as error:
        errors.append((path, _reason(error), writer.rows))
    except Exception as error:
        log.debug("%s", traceback.format_exc())
        writer.__exit__(type(error), error, error.__traceback__)
        errors.append((path, _reason(error), 0))
        writer = LandmarkTableWriter(target, dims=dims)
    return writer


def assemble_errors(out_dir: str, units: Sequence[Dict]) -> pa.Table:
    """``errors.parquet`` from the errors shards of the finished units among ``units``,
    rewritten atomically; returns it."""
    tables = [pq.read_table(errors_shard_path(out_dir, u["id"])) for u in units
              if os.path.exists(shard_path(out_dir, u["id"])) and os.path.exists(errors_shard_path(out_dir, u["id"]))]
    table = pa.concat_tables(tables) if tables else ERRORS_SCHEMA.empty_table()
    table = table.sort_by("path")
    with atomic_write(os.path.join(out_dir, ERRORS_TABLE)) as tmp:
        pq.write_table(table, tmp)
    return table


def count_faces(out_dir: str, units: Sequence[Dict]) -> int:
    return sum(pq.ParquetFile(shard_path(out_dir, u["id"])).metadata.num_rows for u in units
               if os.path.exists(shard_path(out_dir, u["id"])))
