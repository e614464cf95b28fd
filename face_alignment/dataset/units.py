"""The inputs of a dataset job, and the work units they are cut into.

An input on the command line is a folder (its images and videos, recursively, hidden files and
folders skipped), an image or video file (by extension: ``IMAGE_EXTENSIONS``,
``VIDEO_EXTENSIONS``), or a list: a ``.txt`` file with one path a line (blank lines and lines
starting with ``#`` skipped; relative paths are relative to the list's folder). A listed path
is taken as given, whatever its extension (a video by ``VIDEO_EXTENSIONS``, else a photo): a
listed file that is missing or unreadable becomes a row of ``_errors.parquet``, not a stop. So
does a folder that cannot be listed (an input of kind ``folder``).

Paths are made absolute (the ``video`` column holds them, and Ray workers may run elsewhere)
and sorted. Paths that lead to one real file (a symbolic link, a linked folder) are one input,
under the listed path that sorts first, whatever order they were listed in.

An input is ``{"path", "kind", "size", "mtime_ns"}`` (a folder that cannot be listed also has
its ``reason``): its content is identified by its size and modification time in nanoseconds,
read with one ``stat`` (a hash would read every file of the dataset on every resume); a file
that cannot be reached has ``None`` for both. Units are cut from the inputs that are still to
do: each video (and each folder that cannot be listed) alone, the photos in groups of
``photos_per_unit`` in sorted order. A unit's id is the first 16 hex digits of the sha256 of
its kind and its members' paths, sizes and times: the same inputs with the same content give
the same units whatever the order they were listed in, and new or changed inputs give new
units, so that adding N inputs costs the work of N.
"""
import hashlib
import os
from typing import Dict, Iterable, List, Optional, Tuple

from ..errors import FaceAlignmentError
from ..pipeline.image import IMAGE_EXTENSIONS
from ..video.reader import VIDEO_EXTENSIONS

LIST_EXTENSIONS = (".txt",)
PHOTO, VIDEO, FOLDER = "photo", "video", "folder"
DEFAULT_PHOTOS_PER_UNIT = 32


def kind_of(path: str) -> str:
    return VIDEO if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS else PHOTO


def shown(path: str) -> str:
    """``path`` as text that UTF-8 (Parquet, Arrow) can hold: bytes of a name that is not
    UTF-8 are written as ``\\xe9``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _media(path: str) -> bool:
    extension = os.path.splitext(path)[1].lower()
    return extension in IMAGE_EXTENSIONS or extension in VIDEO_EXTENSIONS


def _walk(folder: str, unlisted: List[Tuple[str, str]]) -> List[str]:
    """The media files below ``folder``; a folder on the way that cannot be listed is added to
    ``unlisted`` with the reason, and the walk goes on."""
    def failed(error: OSError) -> None:
        unlisted.append((error.filename or folder, f"cannot list the folder ({error.strerror or error})"))

    found = []
    for current, dirs, files in os.walk(folder, onerror=failed):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(os.path.join(current, f) for f in files if not f.startswith(".") and _media(f))
    return found


def _read_list(path: str) -> List[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise FaceAlignmentError(f"{path}: cannot read the list of inputs ({e})") from None
    base = os.path.dirname(os.path.abspath(path))
    return [os.path.join(base, line.strip()) for line in lines
            if line.strip() and not line.strip().startswith("#")]


def content(path: str) -> Tuple[Optional[int], Optional[int]]:
    """What identifies the content of the file ``path`` leads to: (size, mtime_ns), or
    (None, None) if it cannot be reached."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None, None
    return st.st_size, st.st_mtime_ns


def list_inputs(paths: Iterable[str]) -> List[Dict]:
    """The inputs ``paths`` name, sorted by path, one per real file. FaceAlignmentError, one
    line, for a command-line path that is missing or of no known kind."""
    found, unlisted = [], []
    for path in paths:
        if os.path.isdir(path):
            found.extend(_walk(path, unlisted))
        elif not os.path.exists(path):
            raise FaceAlignmentError(f"{path}: no such file or folder (--input)")
        elif os.path.splitext(path)[1].lower() in LIST_EXTENSIONS:
            found.extend(_read_list(path))
        elif _media(path):
            found.append(path)
        else:
            raise FaceAlignmentError(
                f"{path}: not an image, a video or a list of paths (--input takes folders, files ending in one of "
                f"{', '.join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))}, or a {'/'.join(LIST_EXTENSIONS)} list)")
    by_file: Dict[str, str] = {}
    for path in sorted({os.path.normpath(os.path.abspath(p)) for p in found}):
        by_file.setdefault(os.path.realpath(path), path)  # the first in sorted order names it
    inputs = [dict(path=path, kind=kind_of(path), size=size, mtime_ns=mtime)
              for path in sorted(by_file.values()) for size, mtime in (content(path),)]
    folders = {os.path.normpath(os.path.abspath(folder)): reason for folder, reason in unlisted}
    inputs += [dict(path=folder, kind=FOLDER, size=None, mtime_ns=None, reason=reason)
               for folder, reason in folders.items()]
    return sorted(inputs, key=lambda i: i["path"])


def identity(item: Dict) -> Tuple:
    return item["path"], item["size"], item["mtime_ns"]


def unit_id(kind: str, members: List[Tuple]) -> str:
    text = "\n".join([kind] + [f"{path}\0{size}\0{mtime}" for path, size, mtime in members])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def make_units(inputs: List[Dict], photos_per_unit: int = DEFAULT_PHOTOS_PER_UNIT) -> List[Dict]:
    """{"id", "kind", "members": [[path, size, mtime_ns], ...]} per unit (a folder's also
    "reason"): videos first (the longest work, started early), each alone, then the folders
    that could not be listed, then the photos in groups, all in sorted order."""
    inputs = sorted(inputs, key=lambda i: i["path"])
    photos = [i for i in inputs if i["kind"] == PHOTO]
    groups = ([(VIDEO, [i]) for i in inputs if i["kind"] == VIDEO] + [(FOLDER, [i]) for i in inputs
                                                                         if i["kind"] == FOLDER]
              + [(PHOTO, photos[k:k + photos_per_unit]) for k in range(0, len(photos), photos_per_unit)])
    units = []
    for kind, items in groups:
        members = [list(identity(i)) for i in items]
        unit = {"id": unit_id(kind, members), "kind": kind, "members": members}
        if kind == FOLDER:
            unit["reason"] = items[0]["reason"]
        units.append(unit)
    return units
