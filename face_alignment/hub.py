"""Weights on first use: the authors' published checkpoints (2DFAN4, 3DFAN4, depth) as
converted NNabla ``.h5`` files, found or made without the user doing anything.

Looked for in this order:

1. our cache (:func:`face_alignment.home.home_dir`): the published checkpoint, converted
   before (``<name>-<sha256[:16]>.h5``; its name starts with the published prefix);
2. face-alignment's own download, ``$TORCH_HOME/hub/checkpoints/<published file name>``,
   converted once into the cache under the sha256 of that file. face-alignment uses
   whatever file sits there without checking it; so do we, so that its users' files work,
   but one whose sha256 does not start with the published prefix gets a one-line warning.
   A file that holds no such network is refused;
3. a download from the registry's URL (or ``$FACE_ALIGNMENT_WEIGHTS_MIRROR``, a folder URL
   serving the same file names), refused unless its sha256 starts with the published prefix.

Conversions write a temporary file and rename it into place, so processes converting the
same checkpoint at once each finish with the same complete file. :func:`find_model` is what
the commands run when no model is given: nnabla-examples' file names here first, then this.
"""
import glob
import logging
import os
import tempfile
from typing import Optional

from .download import download
from .errors import DownloadError, WeightsNotFoundError
from .files import sha256_of
from .home import home_dir, writable_folder
from .registry import KnownWeights, known_weights, weights_for_file

log = logging.getLogger("face_alignment")

MIRROR_VARIABLE = "FACE_ALIGNMENT_WEIGHTS_MIRROR"
# Characters of the source's sha256 in a converted file's name: enough to tell files apart,
# and longer than any published prefix (10), which the name therefore starts with.
KEY_DIGITS = 16


def torch_checkpoints_dir() -> str:
    """Where face-alignment (through ``torch.hub``) keeps its downloads, worked out as torch
    does, without importing it: ``$TORCH_HOME/hub/checkpoints``, ``$TORCH_HOME`` defaulting
    to ``$XDG_CACHE_HOME/torch`` and that to ``~/.cache/torch``."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "torch")
    return os.path.join(os.path.expanduser(torch_home), "hub", "checkpoints")


def converted_name(w: KnownWeights, source_sha256: str) -> str:
    return f"{w.name}-{source_sha256[:KEY_DIGITS]}.h5"


def weights_url(w: KnownWeights) -> str:
    mirror = os.environ.get(MIRROR_VARIABLE)
    return f"{mirror.rstrip('/')}/{w.file_name}" if mirror else w.url


def _named(url: str) -> str:
    """``url`` as messages name it: one from the mirror says so, by its variable."""
    return f"{url} (${MIRROR_VARIABLE})" if os.environ.get(MIRROR_VARIABLE) else url


def published_in_cache(w: KnownWeights, cache: Optional[str] = None) -> Optional[str]:
    """The converted published checkpoint in the cache, if it is there."""
    found = sorted(glob.glob(os.path.join(glob.escape(cache or home_dir()), f"{w.name}-{w.sha256_prefix}*.h5")))
    return found[0] if found else None


def weights_path(name: str) -> str:
    """Path of the NNabla ``.h5`` of the published weights ``name`` ("2DFAN4", "3DFAN4",
    "depth"), found, converted or downloaded as the module docstring says."""
    w = known_weights(name)
    cache = home_dir()
    cached = published_in_cache(w, cache)
    if cached:
        return cached
    theirs = os.path.join(torch_checkpoints_dir(), w.file_name)
    if os.path.isfile(theirs):
        return _converted(theirs, w, cache, published=False)
    return _downloaded(w, cache, theirs)


def converted_checkpoint(path: str, kind: str) -> str:
    """A PyTorch checkpoint given where an NNabla ``.h5`` is expected (``--model
    2DFAN4-11f355bf06.pth.tar``, ibug's ``.pth``, one's own) holding a ``kind`` network,
    converted once into the cache and named by its sha256, as the face-alignment API's
    checkpoints are: a published file's name shares their cache entry."""
    from .weights.convert import convert_checkpoint

    cache = home_dir()
    known = weights_for_file(os.path.basename(path))
    if known is not None and known.sha256_prefix and known.architecture.kind == kind:
        return _converted(path, known, cache, published=False)
    stem = os.path.basename(path).split(".", 1)[0]
    target = os.path.join(cache, f"{stem}-{sha256_of(path)[:KEY_DIGITS]}.h5")
    if not _whole(target):
        os.makedirs(cache, exist_ok=True)
        log.info("converting %s into %s", path, target)
        convert_checkpoint(path, target, force=True, expect_kind=kind)  # force: see _converted
    return target


def _whole(target: str) -> bool:
    """Whether a cached conversion is there and readable. One cut short outside this package
    (our own writes are atomic), by a full disk or an interrupted copy, is converted again
    rather than failing every run."""
    from .errors import WeightsFileError
    from .weights.h5 import read_h5_names

    if not os.path.isfile(target):
        return False
    try:
        read_h5_names(target)
    except WeightsFileError:
        log.warning("%s: a damaged cached conversion; converting it again", target)
        return False
    return True


def _converted(source: str, w: KnownWeights, cache: str, published: bool, sha256: Optional[str] = None) -> str:
    """The cached conversion of ``source`` (made now if it is not there yet)."""
    from .weights.convert import convert_checkpoint

    sha256 = sha256 or sha256_of(source)
    if not published and not sha256.startswith(w.sha256_prefix):
        log.warning("%s: sha256 starts %s, not %s as published; using it as face-alignment would",
                    source, sha256[:len(w.sha256_prefix)], w.sha256_prefix)
    target = os.path.join(cache, converted_name(w, sha256))
    if _whole(target):
        return target
    writable_folder(cache, f"the conversion of {source}")
    log.info("converting %s into %s", source, target)
    # force: another process may have put the same file there meanwhile; both are whole.
    convert_checkpoint(source, target, arch=w.arch, force=True, expect_kind=w.architecture.kind)
    return target


def _downloaded(w: KnownWeights, cache: str, looked_in_torch: str) -> str:
    url = weights_url(w)
    writable_folder(cache, f"the download of {w.file_name}")
    log.info("downloading %s", url)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache) as staging:
        downloaded = os.path.join(staging, w.file_name)
        try:
            sha256 = download(url, downloaded)
        except DownloadError as e:
            raise WeightsNotFoundError(
                f"{w.file_name}: not found (looked for {published_name(w, cache)} and {looked_in_torch}) "
                f"and not downloaded from {_named(url)} ({e})") from None
        if not sha256.startswith(w.sha256_prefix):
            raise DownloadError(f"{w.file_name}: downloaded from {_named(url)}, its sha256 starts "
                                f"{sha256[:len(w.sha256_prefix)]}, not {w.sha256_prefix} as published; refused")
        return _converted(downloaded, w, cache, published=True, sha256=sha256)


def published_name(w: KnownWeights, cache: str) -> str:
    """How messages name the cache entry of the published weights."""
    return os.path.join(cache, f"{w.name}-{w.sha256_prefix}*.h5")


# Where a model is looked for when no path is given: nnabla-examples' default file name in
# the current folder, then what converters/fetch_weights.py puts in weights/.
DEFAULT_MODELS = {
    "2D": ("2DFAN4_NNabla_model.h5", "weights/2DFAN4.h5", "weights/2DFAN4_NNabla_model.h5"),
    "3D": ("3DFAN4_NNabla_model.h5", "weights/3DFAN4.h5", "weights/3DFAN4_NNabla_model.h5"),
    "depth": ("Resnet_Depth_NNabla_model.h5", "weights/depth.h5", "weights/Resnet_Depth_NNabla_model.h5"),
}
FETCH_NAMES = {"2D": "2DFAN4", "3D": "3DFAN4", "depth": "depth"}


def find_model(given: Optional[str], which: str) -> str:
    """``given``, else the first of DEFAULT_MODELS that exists, else the published weights
    as face-alignment users get them on first use (face_alignment.hub: our cache,
    $TORCH_HOME's checkpoints, a download). A PyTorch checkpoint given (the authors' .pth.tar)
    is converted once into the cache, and the conversion used."""
    if given:
        from .weights.convert import is_torch_checkpoint

        if is_torch_checkpoint(given):
            from .registry import FAN, RESNET_DEPTH

            return converted_checkpoint(given, RESNET_DEPTH if which == "depth" else FAN)
        return given
    for candidate in DEFAULT_MODELS[which]:
        if os.path.isfile(candidate):
            return candidate
    try:
        return weights_path(FETCH_NAMES[which])
    except WeightsNotFoundError as e:
        raise WeightsNotFoundError(
            f"no {which} model given and none of {', '.join(DEFAULT_MODELS[which])} exists; {e}; pass its path, "
            f"or fetch it: .venv/bin/python converters/fetch_weights.py {FETCH_NAMES[which]} (where the package is "
            f"installed: fan-fetch {FETCH_NAMES[which]})") from None
