"""The one cache of exported ONNX models, which every engine built on ONNX (ONNX Runtime,
OpenVINO) shares for every network (FAN, ResNetDepth and the face detectors' graphs).

Where: ``$FACE_ALIGNMENT_HOME/exports`` (:func:`face_alignment.home.home_dir`, by default
``~/.cache/face_alignment/exports``), or the folder a caller gives (``--cache-dir``). Each
model is named by its network's name and a key: a digest of the weights' sha256 and of
everything that shapes the graph (the description's graph and fixed input axes, opset,
:data:`.export.EXPORT_VERSION`), so the same weights under two names or in two copies share
one export, and changed weights or a changed exporter never reuse a stale one. Each model
ends with the digest of its bytes, recorded when it was written (:func:`.export.write_onnx`);
one that does not match it (damaged, cut short, or written before digests were recorded) is
exported again, never used. The cache is bounded: after each export the least recently used models go until the
folder holds at most ``$FACE_ALIGNMENT_CACHE_MB`` megabytes (default 2048) of ``.onnx``
files; using a model marks it used. What an engine builds from an export is kept in a
subfolder named by the export's stem (OpenVINO's ``openvino/<stem>``) and goes with it; the
int8 models the accuracy gate writes (``<stem>.int8.xml``) are never evicted. Deleting the
folder clears it.

Exports are written under a temporary name and renamed into place, so processes exporting
the same model at once each see a whole file (the last rename wins; the bytes are the same).
Temporaries left by a killed export are removed by a later run once they are
:data:`STALE_SECONDS` old.
"""
import glob
import hashlib
import logging
import math
import os
import re
import shutil
import tempfile
import time
from typing import Callable, Optional, Tuple, TypeVar

from ..errors import FaceAlignmentError
from ..files import TEMP_PREFIX
from ..home import home_dir
from ..registry import Architecture
from .description import NetworkDescription, fan_description, weights_description
from .export import EXPORT_VERSION, ONNX_OPSET, TEMP_FOLDER_PREFIX, holds_its_digest, write_onnx

log = logging.getLogger(__name__)
T = TypeVar("T")
EXPORTS_FOLDER = "exports"
SIZE_VARIABLE = "FACE_ALIGNMENT_CACHE_MB"
DEFAULT_SIZE_MB = 2048  # a FAN-4 export is ~95 MB, ResNetDepth's ~235 MB: a dozen models
SUFFIX = ".onnx"
# A temporary of an export not renamed into place for this long was left by a killed process
# (an export writes its temporary in one go, then renames it at once).
STALE_SECONDS = 600


def cache_folder(cache_dir: Optional[str] = None) -> str:
    """The cache's folder, absolute: ``cache_dir`` if given, else ``home_dir()/exports``."""
    return os.path.abspath(os.path.expanduser(cache_dir)) if cache_dir else os.path.join(home_dir(), EXPORTS_FOLDER)


def size_limit() -> int:
    """The cache's bound in bytes, from ``$FACE_ALIGNMENT_CACHE_MB``: checked first by every
    runner (:mod:`.registry`), before any export, on a hit as on a miss."""
    text = os.environ.get(SIZE_VARIABLE)
    if not text:
        return DEFAULT_SIZE_MB * 1024 * 1024
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = -1.0
    if not (megabytes >= 0 and math.isfinite(megabytes * 1024 * 1024)):
        raise FaceAlignmentError(f"{SIZE_VARIABLE}={text!r}: expected a finite number of megabytes, 0 or more")
    return int(megabytes * 1024 * 1024)


def description_key(description: NetworkDescription, opset: int = ONNX_OPSET) -> str:
    """The digest that names a described network's export."""
    graph = f"{description.name}/{description.graph}/{description.shape_key}/opset{opset}/export{EXPORT_VERSION}"
    return hashlib.sha256(f"{description.weights_sha256}/{graph}".encode()).hexdigest()[:16]


def cache_key(arch: Architecture, weights_sha256: str, opset: int = ONNX_OPSET) -> str:
    """The key of a FAN's or ResNetDepth's export (``arch`` with weights of this sha256)."""
    return description_key(fan_description(arch, weights_sha256, dict), opset)


def description_path(description: NetworkDescription, cache_dir: Optional[str] = None) -> str:
    """Where the export of ``description`` is kept, whether or not it is there yet."""
    return os.path.join(cache_folder(cache_dir), f"{_safe(description.name)}-{description_key(description)}{SUFFIX}")


def cached_model_path(weights, cache_dir: Optional[str] = None) -> str:
    """Where the export of ``weights`` (a :class:`~face_alignment.weights.Weights`, or anything
    with its ``arch`` and ``sha256``) is kept."""
    return description_path(fan_description(weights.arch, weights.sha256, dict), cache_dir)


def onnx_model_path(weights, cache_dir: Optional[str] = None, rebuild: bool = False) -> str:
    """:func:`model_path` of ``weights`` (a :class:`~face_alignment.weights.Weights`)."""
    return model_path(weights_description(weights), cache_dir, rebuild)


def model_path(description: NetworkDescription, cache_dir: Optional[str] = None, rebuild: bool = False) -> str:
    """The path of the described network's ONNX model: used as it is if it matches the digest
    recorded when it was written (and marked used), else exported (again), after which the
    least recently used models go (:func:`evict`). ``rebuild``: export it again in any case
    (for a cached model an engine found unreadable)."""
    size_limit()  # a bad setting is refused before anything, hit or miss
    path = description_path(description, cache_dir)
    folder = os.path.dirname(path)
    remove_stale_temporaries(folder)
    if os.path.isfile(path) and not rebuild:
        if _matches_record(path):
            _touch(path)
            return path
        log.warning("%s: unreadable cached ONNX model (it does not match the digest recorded when it was "
                    "written: damaged, or cut short); exporting it again", path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise FaceAlignmentError(f"{folder}: cannot make the export cache ({e.strerror}); pass --cache-dir "
                                 f"or set FACE_ALIGNMENT_HOME to a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise FaceAlignmentError(f"{folder}: the export cache is not writable; pass --cache-dir or set "
                                 f"FACE_ALIGNMENT_HOME to a writable folder")
    log.info("exporting %s to ONNX (once): %s", description.name, path)
    write_onnx(description, path)
    evict(folder, keep=path)
    return path


def _matches_record(path: str) -> bool:
    try:
        return holds_its_digest(path)
    except OSError:  # gone meanwhile: exported again
        return False


def remove_stale_temporaries(folder: str) -> int:
    """Remove what killed exports left: temporaries in the cache ``folder`` and the exporter's
    temporary folders, once :data:`STALE_SECONDS` old. Returns how many went."""
    now = time.time()
    removed = 0
    left = glob.glob(os.path.join(glob.escape(folder), TEMP_PREFIX + "*.tmp*")) + \
        glob.glob(os.path.join(glob.escape(tempfile.gettempdir()), TEMP_FOLDER_PREFIX + "*"))
    for path in left:
        try:
            if now - os.lstat(path).st_mtime < STALE_SECONDS:
                continue
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError:  # gone meanwhile, or not ours to remove
            continue
        log.info("removed %s, left by an export that was stopped", path)
        removed += 1
    return removed


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:  # a cache shared read-only: used all the same, only not marked
        pass


def evict(folder: str, keep: Optional[str] = None, limit: Optional[int] = None) -> int:
    """Remove the least recently used models of ``folder`` (never ``keep``) until it holds at
    most ``limit`` bytes (default :func:`size_limit`). Returns how many were removed."""
    limit = size_limit() if limit is None else limit
    models = []
    for path in glob.glob(os.path.join(glob.escape(folder), "*" + SUFFIX)):
        try:
            info = os.stat(path)
        except OSError:  # removed meanwhile by another process
            continue
        models.append((info.st_mtime, info.st_size, path))
    total = sum(size for _, size, _ in models)
    removed = 0
    for _, size, path in sorted(models):
        if total <= limit:
            break
        if keep is not None and os.path.abspath(path) == os.path.abspath(keep):
            continue
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("%s: cannot remove from the export cache (%s)", path, e.strerror)
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        for derived in glob.glob(os.path.join(glob.escape(folder), "*", glob.escape(stem))):
            shutil.rmtree(derived, ignore_errors=True)  # built from the export: goes with it
        log.info("export cache over %d MB: removed %s, the least recently used", limit // (1024 * 1024), path)
        total -= size
        removed += 1
    return removed


def load_cached(description: NetworkDescription, cache_dir: Optional[str], load: Callable[[str], T]) -> Tuple[str, T]:
    """(path, ``load(path)``) of the described network's cached model, exported again once if
    the engine cannot load it (a model it refuses, or one evicted or replaced between lookup
    and load): what every engine built on the export does, here once for all of them."""
    path = model_path(description, cache_dir)
    try:
        return path, load(path)
    except Exception as e:  # noqa: BLE001 - the engines' errors share no base class but Exception
        log.warning("%s: unreadable cached ONNX model (%s); exporting it again",
                    path, str(e).splitlines()[0] if str(e) else type(e).__name__)
    path = model_path(description, cache_dir, rebuild=True)
    return path, load(path)
