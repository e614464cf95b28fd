"""Downloading a URL to a file, with the errors a user can act on."""
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Optional

from .errors import DownloadError

CHUNK = 1 << 20


def download(url: str, path: str, progress: bool = False, timeout: float = 60.0,
             decompress: Optional[Callable[[bytes], bytes]] = None) -> str:
    """Write ``url``'s content (passed through ``decompress``, a streaming decompressor's
    method, if given) to ``path``; return the sha256 of what was written."""
    from tqdm import tqdm

    host = urllib.parse.urlparse(url).netloc or url
    digest = hashlib.sha256()
    try:
        request = urllib.request.Request(url)
    except ValueError as e:  # e.g. a --mirror without http://
        raise DownloadError(f"{url}: not a URL ({e}); expected one such as https://host/folder/file") from None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(path, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            # disable=None: a bar only on a terminal.
            with tqdm(total=total, unit="B", unit_scale=True, disable=None if progress else True,
                      desc=os.path.basename(urllib.parse.urlparse(url).path)) as bar:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    bar.update(len(chunk))
                    data = decompress(chunk) if decompress else chunk
                    out.write(data)
                    digest.update(data)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if urllib.parse.urlparse(url).scheme == "file":  # a local path: no network involved
            missing = isinstance(e.reason, FileNotFoundError)
            raise DownloadError(f"{url}: " + ("no such file" if missing else f"cannot read it ({e.reason})")) from None
        raise DownloadError(f"could not reach {host}: {e.reason} (no network?)") from None
    except (OSError, EOFError) as e:
        # Socket time-outs and corrupt compressed data are OSErrors too.
        raise DownloadError(f"{url}: download failed ({e})") from None
    return digest.hexdigest()
