"""Fetch a known model into ``weights/``: download to a temporary file, check its hash,
convert it to NNabla ``.h5`` when it is a PyTorch checkpoint, and only then rename it."""
import logging
import os
import tempfile
from typing import Optional

from ..download import download
from ..errors import DownloadError, FaceAlignmentError
from ..registry import KnownWeights, known_weights

log = logging.getLogger(__name__)
DEFAULT_DIR = "weights"


def output_name(w: KnownWeights) -> str:
    return f"{w.name}.h5" if w.needs_conversion else w.file_name


def fetch(name: str, dest_dir: str = DEFAULT_DIR, mirror: Optional[str] = None, check_hash: bool = True,
          force: bool = False, allow_pickle: bool = False, progress: bool = False) -> str:
    """Path of the NNabla ``.h5`` for the known model ``name``, fetched if not there yet.
    ``mirror`` replaces the folder part of the URL (a local copy or an internal server)."""
    from .convert import convert_checkpoint
    from .loading import load_weights

    w = known_weights(name)
    if os.path.exists(dest_dir) and not os.path.isdir(dest_dir):
        raise FaceAlignmentError(f"{dest_dir}: not a folder; expected the folder to put the weights in")
    os.makedirs(dest_dir, exist_ok=True)
    target = os.path.join(dest_dir, output_name(w))
    if os.path.exists(target) and not force:
        log.info("%s: already there", target)
        return target
    url = f"{mirror.rstrip('/')}/{w.file_name}" if mirror else w.url
    log.info("downloading %s", url)
    # Everything lands in a hidden folder beside the target first; it vanishes on any error.
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest_dir) as staging:
        downloaded = os.path.join(staging, w.file_name)
        sha256 = download(url, downloaded, progress)
        expected = w.sha256_prefix
        if check_hash and expected and not sha256.startswith(expected):
            raise DownloadError(
                f"{w.file_name}: sha256 starts {sha256[:len(expected)]}, not {expected} as its name says; "
                "the file may be corrupt or replaced (pass --no-check-hash to accept it)")
        if w.needs_conversion:
            convert_checkpoint(downloaded, target, arch=w.arch, force=True, allow_pickle=allow_pickle)
        else:
            load_weights(downloaded, arch=w.arch)  # refuse a file that does not fit before keeping it
            os.replace(downloaded, target)
    log.info("%s: ready", target)
    return target
