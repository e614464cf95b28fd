"""The one cache of exported ONNX models, which every backend built on ONNX (and the face
detectors' ONNX Runtime graphs) shares.

Where: ``$FACE_ALIGNMENT_HOME/exports`` (:func:`face_alignment.home.home_dir`, by default
``~/.cache/face_alignment/exports``), or the folder a caller gives (``--cache-dir``). Each
model is named by its architecture and a key: a digest of the weights' sha256 and of
everything that shapes the graph (kind, modules, pooling, opset, export-code version), so the
same weights under two names or in two copies share one export, and changed weights or a
changed exporter never reuse a stale one. The cache is bounded: after each export the least
recently used models go until the folder holds at most ``$FACE_ALIGNMENT_CACHE_MB`` megabytes
(default 2048) of ``.onnx`` files; using a model marks it used. What an engine builds from an
export is kept in a subfolder named by the export's stem (OpenVINO's ``openvino/<stem>``) and
goes with it; the int8 models the accuracy gate writes (``<stem>.int8.xml``) are never
evicted. Deleting the folder clears it.

Exports are written under a temporary name and renamed into place, so processes exporting
the same model at once each see a whole file (the last rename wins; the bytes are the same).
"""
import glob
import hashlib
import logging
import os
import re
import shutil
from typing import Callable, Optional

from ..errors import FaceAlignmentError
from ..home import home_dir
from ..registry import FAN_SIZES, Architecture
from .export import EXPORT_VERSION, ONNX_OPSET

log = logging.getLogger(__name__)
EXPORTS_FOLDER = "exports"
SIZE_VARIABLE = "FACE_ALIGNMENT_CACHE_MB"
DEFAULT_SIZE_MB = 2048  # a FAN-4 export is ~95 MB, ResNetDepth's ~235 MB: a dozen models
SUFFIX = ".onnx"


def cache_folder(cache_dir: Optional[str] = None) -> str:
    """The cache's folder, absolute: ``cache_dir`` if given, else ``home_dir()/exports``."""
    return os.path.abspath(os.path.expanduser(cache_dir)) if cache_dir else os.path.join(home_dir(), EXPORTS_FOLDER)


def size_limit() -> int:
    """The cache's bound in bytes, from ``$FACE_ALIGNMENT_CACHE_MB``."""
    text = os.environ.get(SIZE_VARIABLE)
    if not text:
        return DEFAULT_SIZE_MB * 1024 * 1024
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:
        raise FaceAlignmentError(f"{SIZE_VARIABLE}={text!r}: expected a number of megabytes, 0 or more")
    return int(megabytes * 1024 * 1024)


def cache_key(arch: Architecture, weights_sha256: str, opset: int = ONNX_OPSET) -> str:
    # A FAN's sizes join the key only where they differ from the published ones: keys stay as they were.
    sizes = "".join(f"/{name}={getattr(arch, name)}" for name in FAN_SIZES
                    if getattr(arch, name) != getattr(Architecture, name))
    graph = f"{arch.kind}/{arch.num_modules}/{arch.pooling}{sizes}/opset{opset}/export{EXPORT_VERSION}"
    return hashlib.sha256(f"{weights_sha256}/{graph}".encode()).hexdigest()[:16]


def cached_model_path(weights, cache_dir: Optional[str] = None) -> str:
    """Where the export of ``weights`` (a :class:`~face_alignment.weights.Weights`) is kept,
    whether or not it is there yet."""
    key = cache_key(weights.arch, weights.sha256)
    return os.path.join(cache_folder(cache_dir), f"{_safe(weights.arch.name)}-{key}{SUFFIX}")


def onnx_model_path(weights, cache_dir: Optional[str] = None, rebuild: bool = False) -> str:
    """The path of the ONNX model of ``weights``: exported on first use (or again with
    ``rebuild``, for a cached file found unreadable), marked used otherwise."""
    from .export import export_onnx

    def export(path: str) -> None:
        export_onnx(weights.arch, weights.params, path)

    return cached_export(cached_model_path(weights, cache_dir), export, f"{weights.arch.name} to ONNX", rebuild)


def graph_model_path(name: str, key: str, cache_dir: Optional[str] = None) -> str:
    """Where the export of another graph (a face detector's) is kept: ``name`` and ``key``
    (a digest of its weights and graph) say which."""
    return os.path.join(cache_folder(cache_dir), f"{_safe(name)}-{key}{SUFFIX}")


def cached_export(path: str, export: Callable[[str], object], what: str, rebuild: bool = False) -> str:
    """``path``, a model of the cache: marked used if it is there (and not ``rebuild``), else
    made by ``export(path)``, after which the least recently used models go (:func:`evict`)."""
    if os.path.isfile(path) and not rebuild:
        _touch(path)
        return path
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise FaceAlignmentError(f"{folder}: cannot make the export cache ({e.strerror}); pass --cache-dir "
                                 f"or set FACE_ALIGNMENT_HOME to a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise FaceAlignmentError(f"{folder}: the export cache is not writable; pass --cache-dir or set "
                                 f"FACE_ALIGNMENT_HOME to a writable folder")
    log.info("exporting %s (once): %s", what, path)
    export(path)
    evict(folder, keep=path)
    return path


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
