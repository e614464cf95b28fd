"""Files: writing them so that a reader never sees half of one, checking where outputs go
before any work is done, naming many images' outputs in one folder, and their digests."""
import errno
import hashlib
import os
import secrets
import stat
from collections import Counter
from contextlib import contextmanager
from typing import Dict, Iterable, List, Sequence, Tuple

from .errors import FaceAlignmentError, OutputExistsError

# The temporary file beside an output: ".fa-" + 8 random characters + ".tmp" + the output's
# extension, so that it is short whatever the output's name (a name valid for the file system
# must stay writable) and writers that choose the format by the extension (cv2.imwrite) still
# can. An extension longer than this is no format's and is left out.
TEMP_PREFIX = ".fa-"
MAX_TEMP_EXTENSION = 16


def check_not_there(path: str, force: bool) -> None:
    """Refuse an existing ``path`` unless ``force``: the early check that spares a long job
    whose output could not be written (``atomic_write`` checks again as it finishes)."""
    if not force and os.path.exists(path):
        raise _exists(path)


def check_replaceable(path: str, what: str = "the output") -> None:
    """Refuse an existing ``path`` that is not a regular file (a device such as /dev/null, a
    pipe, a socket): outputs are renamed into place, which would put a regular file where
    it was (for root, even in /dev)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # not there (or not reachable: the write itself will say why)
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise FaceAlignmentError(f"{path}: {what} is a device, pipe or socket, which would be replaced by a "
                                 "regular file; expected the name of a regular file")


def _exists(path: str) -> OutputExistsError:
    return OutputExistsError(f"{path}: already exists (pass --force to overwrite)")


@contextmanager
def atomic_write(path: str, force: bool = True):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on any
    error it is removed. Refuses an existing ``path`` unless ``force``. An OSError in making,
    writing or renaming the temporary file names ``path``, never the temporary file."""
    check_not_there(path, force)
    check_replaceable(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FaceAlignmentError(f"{folder}: output folder does not exist")
    tmp = None
    try:
        tmp = _make_temp(folder, os.path.splitext(path)[1])
        yield tmp
        # The temporary file is private (0600); give it the permissions open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        _commit(tmp, path, force)
    except OSError as e:
        raise _naming(e, tmp, path) from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
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


def not_a_file(path: str, what: str) -> str:
    """The one-line reason ``path``, not a regular file, cannot be read as a ``what`` ("video
    file"): a folder is called a folder, not missing."""
    article = "an" if what[:1] in "aeiou" else "a"
    if os.path.isdir(path):
        return f"{path}: a folder; expected {article} {what}"
    if os.path.exists(path):
        return f"{path}: not a regular file (a pipe or device); expected {article} {what}"
    return f"{path}: no such {what}"


def check_utf8_path(path: str) -> str:
    """``path`` if it is valid UTF-8: OpenCV's imread crashes the process (SIGSEGV) on a path
    with undecodable bytes (a Latin-1 name on a UTF-8 system)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise FaceAlignmentError(f"{path}: the file name is not valid UTF-8, which OpenCV cannot open; "
                                 "expected a file name in UTF-8 (rename the file)") from None
    return path


def abandon_atomic_write(atomic, error: BaseException) -> None:
    """End an ``atomic_write`` that a writer object entered by hand, after ``error``: the
    temporary file is removed. A new error in doing so is raised; ``error`` itself is left to
    the caller."""
    if atomic is None:
        return
    try:
        atomic.__exit__(type(error), error, error.__traceback__)
    except BaseException as again:
        if again is not error:
            raise


def checked_extension(path: str, known, what: str, error=FaceAlignmentError) -> str:
    """The lower-case extension of ``path``, one of ``known``; else ``error`` naming both."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in known:
        raise error(f"{path}: unknown {what} {extension or '(no extension)'!r}; "
                    f"expected one of {', '.join(sorted(known))}")
    return extension


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


Named = Tuple[str, str]  # (what a path is to the user, e.g. "--save-json", path)


def check_outputs(files: Sequence[Named], inputs: Iterable[Named] = (), folders: Sequence[Named] = ()) -> None:
    """Before any work is done, check that every output ``files`` entry can be written: its
    folder exists (or is one of the output ``folders``, which must exist or be possible to
    make) and is writable, it is not a folder (nor a device, pipe or socket), its name is not
    too long, and it is neither an input nor another output. Paths are compared as the files
    they name (the same file by any path, symbolic or hard link), not as strings. Raises
    FaceAlignmentError naming the path and what it is."""
    checked = set()
    for what, folder in folders:
        _check_folder(folder, what, may_create=True)
        checked.add(os.path.abspath(folder))
    for what, path in files:
        if os.path.isdir(path):
            raise FaceAlignmentError(f"{path}: {what} is a folder; expected a file name")
        check_replaceable(path, what)
        folder = os.path.dirname(path) or os.curdir
        if os.path.abspath(folder) not in checked:
            _check_folder(folder, what, may_create=False)
            checked.add(os.path.abspath(folder))
        _check_name_length(path, what, folder)
    claimed = {}
    for what, path in inputs:
        claimed.setdefault(_file_key(path), (what, path, "an input"))
    for what, path in files:
        key = _file_key(path)
        if key in claimed:
            other_what, other, role = claimed[key]
            raise FaceAlignmentError(f"{path}: {what} is the same file as {other_what} {other}; "
                                     f"expected a path that is not {role}")
        claimed[key] = (what, path, "another output")


def _file_key(path: str):
    """What identifies the file ``path`` names: its inode if it exists, else its real path."""
    try:
        st = os.stat(path)
        return "inode", st.st_dev, st.st_ino
    except OSError:
        return "path", os.path.normcase(os.path.realpath(path))


def _check_folder(folder: str, what: str, may_create: bool) -> None:
    existing = folder
    while not os.path.lexists(existing):  # the folder, or the nearest that exists on the way to it
        if not may_create:
            raise FaceAlignmentError(f"{folder}: the folder for {what} does not exist")
        existing = os.path.dirname(existing.rstrip(os.sep)) or os.curdir
    if not os.path.isdir(existing):
        raise FaceAlignmentError(f"{existing}: not a folder; {what} needs a folder there")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FaceAlignmentError(f"{existing}: cannot write {what} in this folder (permission denied)")


def _check_name_length(path: str, what: str, folder: str) -> None:
    name = os.fsencode(os.path.basename(path))
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX") if os.path.isdir(folder) else 255
    except (OSError, ValueError):
        return
    if len(name) > limit:
        raise FaceAlignmentError(f"{path}: {what}: file name of {len(name)} bytes; expected at most {limit}")


PICTURE_SUFFIX = "_landmarks.png"
PICTURE_NAMES = (
    "each image's picture is named STEM_landmarks.png (face.jpg: face_landmarks.png); images that share "
    "a stem are named by their path below the folder they have in common, with '_' for '/' and the "
    "extension kept (a/face.jpg, b/face.jpg: a_face.jpg_landmarks.png, b_face.jpg_landmarks.png), and "
    "a name still taken (ignoring case) gets the first free number: face_landmarks_2.png")
NAME_MAX = 255  # bytes in a file name on common file systems


def picture_names(images: Sequence[str], suffix: str = PICTURE_SUFFIX) -> List[str]:
    """The file names of the pictures of ``images`` in one folder (or of other outputs, by
    their ``suffix``), in order: different from each other even where case is ignored (see
    :data:`PICTURE_NAMES`)."""
    tag, extension = os.path.splitext(suffix)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in images]
    sharing = Counter(stem.casefold() for stem in stems)
    groups: Dict[str, List[int]] = {}
    for index, stem in enumerate(stems):
        if sharing[stem.casefold()] > 1:
            groups.setdefault(stem.casefold(), []).append(index)
    names = [stem + suffix for stem in stems]
    for members in groups.values():
        paths = [os.path.abspath(images[i]) for i in members]
        common = os.path.commonpath([os.path.dirname(p) for p in paths])
        for index, path in zip(members, paths):
            flat = os.path.relpath(path, common).replace(os.sep, "_")
            if len(os.fsencode(flat + suffix)) <= NAME_MAX:
                names[index] = flat + suffix
    # The first image to have a name keeps it; a later one is numbered, skipping taken names.
    taken, repeated = set(), []
    for index, name in enumerate(names):
        if name.casefold() in taken:
            repeated.append(index)
        taken.add(name.casefold())
    for index in repeated:
        base = names[index][:-len(suffix)]
        number = 2
        while f"{base}{tag}_{number}{extension}".casefold() in taken:
            number += 1
        names[index] = f"{base}{tag}_{number}{extension}"
        taken.add(names[index].casefold())
    return names
