"""Turning captured terminal bytes into searchable text."""

from __future__ import annotations

import re

# CSI (colours, cursor moves), OSC (titles, hyperlinks; BEL or ST terminated),
# DCS/SOS/PM/APC strings, and the two-byte escapes.
_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    rb"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    rb"|\x1b[@-Z\\-_]"
)
_CONTROLS = bytes(c for c in range(32) if c not in b"\t\n") + b"\x7f"


def searchable(raw: bytes) -> str:
    """Escape sequences dropped, carriage returns made line breaks, other control
    characters dropped, invalid UTF-8 replaced. Each step makes one copy, so a
    big output costs a few times its size, briefly."""
    text = _ESCAPES.sub(b"", raw)
    text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n").translate(None, _CONTROLS)
    return text.decode("utf-8", errors="replace")


_WORD = re.compile(r"[^\W_]+")


def words(term: str) -> list[str]:
    """The tokens a full-text index sees in a search term ('-la' -> ['la']); a
    term ending in '*' makes its last token a prefix ('deploy*' -> ['deploy*'])."""
    found = _WORD.findall(term.lower())
    if found and term.endswith("*"):
        found[-1] += "*"
    return found


def word_pattern(word: str) -> re.Pattern:
    """A regular expression for one token from words(): a whole word, or a word's
    start when it ends in '*'; case-insensitive."""
    end = "" if word.endswith("*") else r"(?![^\W_])"
    return re.compile(r"(?<![^\W_])" + re.escape(word.rstrip("*")) + end, re.IGNORECASE)
