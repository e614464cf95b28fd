"""Files: writing them so that a reader never sees half of one, and their digests."""
import hashlib
import os
import tempfile
from contextlib import contextmanager

from .errors import FaceAlignmentError, OutputExistsError


@contextmanager
def atomic_write(path: str, force: bool = True):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on any
    error it is removed. Refuses an existing ``path`` unless ``force``."""
    if os.path.exists(path) and not force:
        raise OutputExistsError(f"{path}: already exists (pass --force to overwrite)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FaceAlignmentError(f"{folder}: output folder does not exist")
    name, ext = os.path.splitext(os.path.basename(path))
    # Keep the extension: some writers (cv2.imwrite) choose the format by it.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{ext}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the permissions open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
