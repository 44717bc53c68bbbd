"""Reading a filesystem store's task file (`json.dumps(record, indent=4)`, keys in
Task.FIELDS order, the streams last) a piece at a time: the metadata without the
streams, and one stream's bytes as they are decoded, so that neither a listing
nor `qme out` holds a 100 MB output in memory.

The layout makes this safe: a top-level key starts a line indented by 4 spaces,
nested keys by 8, and a newline inside a string is written as `\\n`, so the text
`\\n    "output": "` can only be where that key's value begins.
"""

from __future__ import annotations

import json
from json.decoder import scanstring
from typing import TextIO

OWN_HEAD = '{\n    "id": '  # qme's own records (a QueueMe record starts otherwise)


def own_layout(handle: TextIO) -> bool:
    """Whether the file (read from its start, and left there) is in qme's layout."""
    own = handle.read(len(OWN_HEAD)) == OWN_HEAD
    handle.seek(0)
    return own


def _seek_key(handle: TextIO, key: str, size: int, keep: bool) -> tuple[str, str] | None:
    """Read on to where key's string value begins: (the text before the key when
    keep, else "", the text read past it); None when the record is not in qme's
    layout. Text skipped without keep (a long stream before the key) is let go."""
    if handle.read(len(OWN_HEAD)) != OWN_HEAD:
        return None
    marker = f'\n    "{key}": "'
    kept, text = [OWN_HEAD], ""
    while piece := handle.read(size):
        text += piece
        at = text.find(marker)
        if at >= 0:
            kept.append(text[:at])
            return "".join(kept) if keep else "", text[at + len(marker) :]
        split = max(0, len(text) - len(marker) + 1)  # the marker may straddle reads
        if keep:
            kept.append(text[:split])
        text = text[split:]
    return None


def head(handle: TextIO, size: int = 1 << 16) -> dict | None:
    """The record without its streams, read only up to the first of them (None:
    not a record in qme's own layout)."""
    found = _seek_key(handle, "output", size, keep=True)
    return None if found is None else json.loads(found[0].rstrip(",") + "\n}")


def string_value(handle: TextIO, key: str, size: int):
    """The bytes of a top-level string value (stored with surrogateescape), in
    pieces of at most size bytes; nothing when the record is not in qme's layout."""
    found = _seek_key(handle, key, size, keep=False)
    if found is None:
        return
    held = found[1]
    while True:
        more = handle.read(size)
        text = held + more
        cut = _whole_escapes(text) if more else len(text)
        value, end = scanstring(text[:cut] + '"', 0)
        if end > cut and more and "\ud800" <= value[-1:] <= "\udbff":
            value, cut = value[:-1], cut - 6  # keep a pair's \uD8xx for its \uDCxx
        data = value.encode("utf-8", "surrogateescape")
        for start in range(0, len(data), size):
            yield data[start : start + size]
        if end <= cut or not more:  # that was the closing quote
            return
        held = text[cut:]


def _whole_escapes(text: str) -> int:
    """Where to cut text, the inside of a JSON string read part way, so that no
    escape (6 characters at most) is cut in two: before the first run of
    backslashes that reaches into the last 6 characters."""
    cut = text.find("\\", max(0, len(text) - 6))
    if cut < 0:
        return len(text)
    while cut > 0 and text[cut - 1] == "\\":
        cut -= 1
    return cut
