"""The inputs of a dataset job, and the work units they are cut into.

An input on the command line is a folder (its images and videos, recursively, hidden files and
folders skipped), an image or video file (by extension: ``IMAGE_EXTENSIONS``,
``VIDEO_EXTENSIONS``), or a list: a ``.txt`` file with one path a line (blank lines and lines
starting with ``#`` skipped; relative paths are relative to the list's folder). A listed path
is taken as given, whatever its extension (a video by ``VIDEO_EXTENSIONS``, else a photo): a
listed file that is missing or unreadable becomes a row of ``errors.parquet``, not a stop.

Paths are made absolute (the ``video`` column holds them, and Ray workers may run elsewhere),
de-duplicated and sorted. Units: each video alone; the photos in groups of ``photos_per_unit``
in that order. A unit's id is the first 16 hex digits of the sha256 of its kind and members.
"""
import hashlib
import os
from typing import Dict, Iterable, List

from ..errors import FaceAlignmentError
from ..pipeline.image import IMAGE_EXTENSIONS
from ..video.reader import VIDEO_EXTENSIONS

LIST_EXTENSIONS = (".txt",)
PHOTO, VIDEO = "photo", "video"
DEFAULT_PHOTOS_PER_UNIT = 32


def kind_of(path: str) -> str:
    return VIDEO if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS else PHOTO


def _media(path: str) -> bool:
    extension = os.path.splitext(path)[1].lower()
    return extension in IMAGE_EXTENSIONS or extension in VIDEO_EXTENSIONS


def _walk(folder: str) -> List[str]:
    found = []
    for current, dirs, files in os.walk(folder):
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


def list_inputs(paths: Iterable[str]) -> List[str]:
    """The sorted, de-duplicated absolute paths of the photos and videos ``paths`` name.
    FaceAlignmentError, one line, for a command-line path that is missing or of no known kind."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            found.extend(_walk(path))
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
    return sorted({os.path.normpath(os.path.abspath(p)) for p in found})


def unit_id(kind: str, members: List[str]) -> str:
    return hashlib.sha256("\n".join([kind] + members).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def make_units(items: List[str], photos_per_unit: int = DEFAULT_PHOTOS_PER_UNIT) -> List[Dict]:
    """{"id", "kind", "paths"} per unit: videos first (the longest work, started early), each
    alone, then the photos in groups, all in sorted order."""
    videos = [p for p in items if kind_of(p) == VIDEO]
    photos = [p for p in items if kind_of(p) == PHOTO]
    groups = [(VIDEO, [v]) for v in videos] + [(PHOTO, photos[i:i + photos_per_unit])
                                               for i in range(0, len(photos), photos_per_unit)]
    return [{"id": unit_id(kind, members), "kind": kind, "paths": members} for kind, members in groups]
