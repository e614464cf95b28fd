"""Files: writing them so that a reader never sees half of one, checking where outputs go
before any work is done, and their digests."""
import errno
import hashlib
import os
import secrets
from contextlib import contextmanager

from .errors import FaceAlignmentError, OutputExistsError

# The temporary file beside an output: ".fa-" + 8 random characters + ".tmp" + the output's
# extension, so that it is short whatever the output's name (a name valid for the file system
# must stay writable) and writers that choose the format by the extension (cv2.imwrite) still
# can. An extension longer than this is no format's and is left out.
TEMP_PREFIX = ".fa-"
MAX_TEMP_EXTENSION = 16


@contextmanager
def atomic_write(path: str, force: bool = True):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on any
    error it is removed. Refuses an existing ``path`` unless ``force``. An OSError in making,
    writing or renaming the temporary file names ``path``, never the temporary file."""
    if os.path.exists(path) and not force:
        raise OutputExistsError(f"{path}: already exists (pass --force to overwrite)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FaceAlignmentError(f"{folder}: output folder does not exist")
    tmp = None
    try:
        tmp = _make_temp(folder, os.path.splitext(path)[1])
        yield tmp
        # The temporary file is private (0600); give it the permissions open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        raise _naming(e, tmp, path) from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.remove(tmp)


def _make_temp(folder: str, extension: str) -> str:
    suffix = ".tmp" + (extension if len(extension) <= MAX_TEMP_EXTENSION else "")
    for _ in range(100):
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)


def _naming(error: OSError, tmp, path: str) -> OSError:
    """``error`` as the same kind of OSError about ``path``, if it was about the temporary file."""
    if tmp is None or error.filename in (tmp, path) or error.filename2 in (tmp, path):
        return type(error)(error.errno, error.strerror or str(error), path)
    if tmp in str(error):  # e.g. h5py's messages, which name the file in the text
        return type(error)(error.errno, str(error).replace(tmp, path), path)
    return error


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
