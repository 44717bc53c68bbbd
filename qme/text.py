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


def plain_words(text: str) -> str:
    """text's words as words() finds them, diacritics removed, one space apart: what
    a server's full-text parser is given, so that it splits words as FTS5 does."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text)
    if not decomposed.isascii():
        decomposed = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_WORD.findall(decomposed))


def first_match(texts: dict[str, str], patterns: list[re.Pattern]) -> tuple[str, str] | None:
    """(field, line) of the first line of texts (field -> text) that a pattern
    matches, with \x02 … \x03 around each match; None when none does."""
    for field, text in texts.items():
        for line in text.splitlines():
            if any(p.search(line) for p in patterns):
                for p in patterns:
                    line = p.sub(lambda m: f"\x02{m.group(0)}\x03", line)
                return field, line
    return None
