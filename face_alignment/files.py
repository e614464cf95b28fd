"""Files: writing them so that a reader never sees half of one, and their digests."""
import hashlib
import os
import tempfile
from contextlib import contextmanager

from .errors import FaceAlignmentError, OutputExistsError


def check_not_there(path: str, force: bool) -> None:
    """Refuse an existing ``path`` unless ``force``: the early check that spares a long job
    whose output could not be written (``atomic_write`` checks again as it finishes)."""
    if not force and os.path.exists(path):
        raise _exists(path)


def _exists(path: str) -> OutputExistsError:
    return OutputExistsError(f"{path}: already exists (pass --force to overwrite)")


@contextmanager
def atomic_write(path: str, force: bool = True):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on any
    error it is removed. Refuses an existing ``path`` unless ``force``."""
    check_not_there(path, force)
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
        _commit(tmp, path, force)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _commit(tmp: str, path: str, force: bool):
    """Give ``tmp`` the name ``path``. Without ``force`` this fails if ``path`` exists by then,
    in the same step as it is made: of two writers that both found no ``path``, one wins."""
    if force:
        os.replace(tmp, path)
        return
    exists = _exists(path)
    try:
        os.link(tmp, path)  # the caller removes tmp
    except FileExistsError:
        raise exists from None
    except OSError:  # a file system without hard links: reserve the name, then fill it
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise exists from None
        try:
            os.replace(tmp, path)
        except BaseException:
            os.remove(path)
            raise


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
