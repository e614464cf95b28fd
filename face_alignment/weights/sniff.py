"""What a file that should hold weights holds instead, told from its first bytes.

A failed download leaves an HTML error page, a JSON or XML error, or plain text under the
weights' name; loaders name that instead of blaming the format they expected.
"""
import codecs
from typing import Optional

_HEAD = 4096
_TEXT_CONTROLS = b"\t\n\r\f\v"


def text_kind(path: str) -> Optional[str]:
    """"an HTML page", "an XML document", "JSON" or "text" when the file starts as one (UTF-8,
    no control characters but white space), "nothing" when it is empty; None when it is binary
    or unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return None
    if not head:
        return "nothing"
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    if any((b < 0x20 and b not in _TEXT_CONTROLS) or b == 0x7F for b in head):
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # more than a character cut at the end of the head
            return None
    start = head.lstrip()[:16].lower()
    if start.startswith(b"<?xml"):
        return "an XML document"
    if start.startswith(b"<"):
        return "an HTML page"
    if start.startswith((b"{", b"[")):
        return "JSON"
    return "text"


def not_weights(path: str, expected: str) -> Optional[str]:
    """The one-line complaint that ``path`` is text (or empty), not ``expected``; None if it is
    neither."""
    kind = text_kind(path)
    if kind is None:
        return None
    holds = "it is empty" if kind == "nothing" else f"it looks like {kind}"
    return f"{path}: not {expected}: {holds} (a failed download?)"
