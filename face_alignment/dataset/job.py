"""One dataset job's output folder: its lock, its manifest, writing one unit, and what is
ours in it. Both engines use these; only who calls ``run_unit`` differs. Which inputs are done,
and what a re-run does with earlier shards: :mod:`.shards`.
"""
import fcntl
import json
import logging
import os
import socket
import time
import traceback
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

from .. import __version__
from ..errors import FaceAlignmentError, VideoTruncatedError
from ..files import TEMP_PREFIX, atomic_write
from ..landmark_table import MANIFEST
from ..writers import Faces, LandmarkTable, open_writer
from .shards import ERRORS, LANDMARKS, errors_shard_path, metadata, ours, shard_path, write_errors
from .units import FOLDER, PHOTO, shown, utf8

log = logging.getLogger("face_alignment")

ERRORS_TABLE = "_errors.parquet"
# The names of an earlier version's layout, which pyarrow read as part of the dataset (so
# pd.read_parquet(OUT_DIR) failed on manifest.json): moved to their new names on resume.
OLD_LAYOUT = {"errors": ERRORS, "errors.parquet": ERRORS_TABLE, "manifest.json": MANIFEST}
LOCK = ".lock"  # held (flock) by the job writing the folder; says which job that is
WORKERS = "_workers"  # Ray: a file per worker process that took part (its pid), for operators
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


class MachineFault(FaceAlignmentError):
    """A fault of the machine, not of an input (a full disk, no memory, no permission to
    write the output): the job stops, and the unit it was doing is left to do again."""


ENTRIES = (MANIFEST, ERRORS_TABLE, LOCK, LANDMARKS, ERRORS, WORKERS)


def _has_manifest(out_dir: str) -> bool:
    names = [MANIFEST] + [old for old, new in OLD_LAYOUT.items() if new == MANIFEST]
    return any(os.path.exists(os.path.join(out_dir, name)) for name in names)


def check_output(out_dir: str) -> None:
    """Refuse, before anything is loaded or written, an ``out_dir`` that is a file, a folder of
    other files, or in a place where it cannot be made or written."""
    from ..files import check_outputs

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FaceAlignmentError(f"{out_dir}: --output is a file; expected a folder (made if need be)")
    if os.path.isdir(out_dir):
        if not _has_manifest(out_dir) and set(os.listdir(out_dir)) - set(ENTRIES):
            raise FaceAlignmentError(f"{out_dir}: a folder that holds other files and no {MANIFEST}; expected a new "
                                     f"or empty folder, or a dataset job's output to resume")
        check_outputs([("--output", os.path.join(out_dir, MANIFEST))])
    else:
        check_outputs([], folders=[("--output", out_dir)])
        if os.path.splitext(out_dir.rstrip(os.sep))[1].lower() in (".parquet", ".pq"):
            log.info("%s: made a folder (a Parquet dataset: pandas.read_parquet and ray.data.read_parquet read it "
                     "whole), not one file", out_dir)


def move_old_layout(out_dir: str) -> None:
    """An earlier version's output (manifest.json, errors.parquet, errors/) moved to the
    names of this one, so that it is resumed (the caller holds the lock). Each entry is one
    rename: a job stopped in between finishes the move on its next run."""
    for old, new in OLD_LAYOUT.items():
        old_path, new_path = os.path.join(out_dir, old), os.path.join(out_dir, new)
        if not os.path.lexists(old_path):
            continue
        if os.path.lexists(new_path):
            raise FaceAlignmentError(f"{out_dir}: holds both {old} (an earlier version's name) and {new}; "
                                     f"expected one: move {old_path} away")
        os.rename(old_path, new_path)
        log.info("%s: moved to %s (this version's layout, which pandas reads as a Parquet dataset)", old_path, new)


@contextmanager
def locked(out_dir: str):
    """Hold ``out_dir`` (made if need be) for this job: a second job on it is refused, one
    line naming the first (its pid, host and start). The lock is an ``flock`` on
    ``out_dir/.lock``, which the system releases when the process ends however it ends, so the
    lock of a killed job is taken over; the file says which job holds it. A folder this made
    and left with nothing but the lock is removed."""
    made = not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FaceAlignmentError(f"{out_dir}: another dataset job is writing this output ({_holder(fd)}); "
                                     f"wait for it to end or stop it, or choose another --output") from None
        earlier = _holder(fd)
        if earlier:
            log.info("%s: taking over the lock of a job that did not end (%s)", out_dir, earlier)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # an empty lock file: the job ended
            if made and os.listdir(out_dir) == [LOCK]:
                os.remove(path)
                os.rmdir(out_dir)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """Who the lock file names: "pid N on HOST, started T", or "" if no job."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}" if holder else ""
    except (ValueError, KeyError, TypeError):
        return "a job that left an unreadable lock file"


def check_settings(out_dir: str, job_settings: Dict, force: bool) -> bool:
    """Whether ``out_dir`` holds another model's or other options' output, to remove
    (``force``); refused, one line, without ``force``."""
    manifest_path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(manifest_path):
        return False
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
    return bool(changed)


def _our_files(out_dir: str) -> Tuple[List[str], List[str]]:
    """(the files of ``out_dir`` that a dataset job wrote, the others), among what it writes."""
    mine, others = [], []
    for name in (MANIFEST, ERRORS_TABLE):
        if os.path.lexists(os.path.join(out_dir, name)):
            mine.append(os.path.join(out_dir, name))
    for folder, is_ours in ((LANDMARKS, ours), (ERRORS, ours), (WORKERS, str.isdigit)):
        if os.path.isdir(os.path.join(out_dir, folder)):
            for name in sorted(os.listdir(os.path.join(out_dir, folder))):
                path = os.path.join(out_dir, folder, name)
                (mine if is_ours(name) and os.path.isfile(path) else others).append(path)
    return mine, others


def prepare_output(out_dir: str, job_settings: Dict, start_over: bool) -> None:
    """Make ``out_dir`` (locked) ready: ``start_over`` removes what an earlier run wrote, and
    only that (other files are named and left); temporary files of a killed run are removed.
    Writes the manifest (not yet complete)."""
    if start_over:
        mine, others = _our_files(out_dir)
        for path in mine:
            os.remove(path)
        for path in others:
            log.warning("%s: not written by a dataset job: left in place", path)
    for folder in (LANDMARKS, ERRORS):
        os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
    for folder in (out_dir, os.path.join(out_dir, LANDMARKS), os.path.join(out_dir, ERRORS)):
        remove_temporary_files(folder)
    write_manifest(out_dir, job_settings)


def remove_temporary_files(folder: str) -> None:
    """The temporary files left in ``folder`` by writers that were stopped (the caller holds
    the lock: no other job's)."""
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if name.startswith(TEMP_PREFIX):
                os.remove(os.path.join(folder, name))


def write_manifest(out_dir: str, job_settings: Dict, summary: Optional[Dict] = None) -> None:
    document = {"settings": job_settings, "complete": summary is not None, "summary": summary}
    with atomic_write(os.path.join(out_dir, MANIFEST)) as tmp:
        with open(tmp, "w") as f:
            json.dump(document, f, indent=1, sort_keys=True)


def _reason(error: BaseException) -> str:
    text = str(error) if isinstance(error, FaceAlignmentError) else f"{type(error).__name__}: {error}"
    return (text.strip().splitlines() or [type(error).__name__])[0]


@contextmanager
def _writing(path: str):
    """OSError (a full disk, no permission) while writing ``path`` is a fault of the machine,
    named by the file (pyarrow's own message names none)."""
    try:
        yield
    except OSError as e:
        detail = e.strerror or _reason(e).replace("OSError: ", "")
        raise MachineFault(f"{path}: cannot write it ({detail}); nothing of its unit is kept: fix this and run "
                           f"the job again") from None


def run_unit(fa, unit: Dict, out_dir: str, video_options: Dict) -> Dict:
    """Landmark one unit with ``fa`` and write it: its errors shard (if any) first, then its
    landmark shard, renamed into place last: that rename is the unit's completion, and the
    shard's metadata says what it holds (:mod:`.shards`). A fault of an input becomes an
    errors row; a fault of the machine (:class:`MachineFault`: a full disk, no memory, no
    permission on the output), KeyboardInterrupt or a worker's death stops it and leaves the
    unit to be done again."""
    unit_id, members = unit["id"], unit["members"]
    paths = [m[0] for m in members]
    target, errors_path = shard_path(out_dir, unit_id), errors_shard_path(out_dir, unit_id)
    dims = 3 if fa.is_3d else 2
    errors: List[Tuple[str, str, int]] = []
    with _writing(target):
        writer = open_writer("landmarks", target, dims=dims)
    try:
        if unit["kind"] == FOLDER:
            errors.append((paths[0], unit["reason"], 0))
        elif unit["kind"] == PHOTO:
            _photos(fa, paths, writer, errors)
        else:
            writer = _video(fa, paths[0], writer, errors, video_options, dims, target)
        with _writing(errors_path):
            if errors:
                write_errors(errors_path, unit_id, errors)
            elif os.path.exists(errors_path):  # of an attempt that did not finish
                os.remove(errors_path)
        record = {"unit": unit_id, "kind": unit["kind"], "dims": dims, "members": members,
                  "failed": [[path, kept] for path, _, kept in errors], "rows": writer.rows}
        with _writing(target):
            writer.close(metadata(record))
    except MemoryError as error:
        writer.abandon(error)
        raise MachineFault(f"{shown(paths[0])}: out of memory while landmarking its unit ({error or 'MemoryError'}); "
                           f"the unit is left to do again") from None
    except BaseException as error:
        writer.abandon(error)
        raise
    return {"id": unit_id, "items": len(paths), "faces": writer.rows, "errors": len(errors), "pid": os.getpid()}


def _photos(fa, paths: List[str], writer: LandmarkTable, errors: List) -> None:
    """All photos in one call, so faces of consecutive photos share batches; if any photo
    fails, every photo again alone (the same way every time: resumed runs match). A name that
    is not UTF-8 is an errors row (OpenCV cannot open it, Parquet cannot hold it)."""
    for path in paths:
        if not utf8(path):
            errors.append((path, f"{shown(path)}: the file name is not valid UTF-8; expected a file name in UTF-8 "
                                 f"(rename the file)", 0))
    paths = [p for p in paths if utf8(p)]
    try:
        results = [Faces.of_photo(path, image.shape, prediction)
                   for path, image, prediction in fa.predict_files(paths, on_error="raise")]
    except MemoryError:
        raise
    except Exception:
        results = []
        for path in paths:
            try:
                [(_, image, prediction)] = list(fa.predict_files([path], on_error="raise"))
                results.append(Faces.of_photo(path, image.shape, prediction))
            except MemoryError:
                raise
            except Exception as error:
                log.debug("%s", traceback.format_exc())
                errors.append((path, _reason(error), 0))
    for faces in results:
        writer.write(faces)
    errors.sort()


def _video(fa, path: str, writer: LandmarkTable, errors: List, options: Dict, dims: int,
           target: str) -> LandmarkTable:
    """Every frame's faces; a video that breaks off keeps its rows and gets an errors row, one
    that cannot be read (or fails otherwise) keeps no rows. Only reading and landmarking the
    video can fail it: a fault in writing its rows is the machine's, and stops the job."""
    if not utf8(path):
        errors.append((path, f"{shown(path)}: the file name is not valid UTF-8; expected a file name in UTF-8 "
                             f"(rename the file)", 0))
        return writer
    frames = iter(fa.get_landmarks_from_video(path, **options))
    while True:
        try:
            result = next(frames)
        except StopIteration:
            return writer
        except VideoTruncatedError as error:
            errors.append((path, _reason(error), writer.rows))
            return writer
        except MemoryError:
            raise
        except Exception as error:
            log.debug("%s", traceback.format_exc())
            writer.abandon(error)
            errors.append((path, _reason(error), 0))
            with _writing(target):
                return open_writer("landmarks", target, dims=dims)
        with _writing(target):
            writer.write(Faces.of_frame(path, result))


def write_errors_table(out_dir: str, table) -> None:
    import pyarrow.parquet as pq

    with atomic_write(os.path.join(out_dir, ERRORS_TABLE)) as tmp:
        pq.write_table(table, tmp)
