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


# -- text that is not valid Unicode ---------------------------------------------------
#
# Python reads argv, the environment and paths with surrogateescape: a byte that
# is not UTF-8 (`echo $'\xff'`) becomes a lone surrogate (U+DCFF), which no
# database's text column accepts, nor PostgreSQL a NUL. A store's text column
# therefore holds such a value as STORED_ESCAPED followed by the value with `\`
# doubled, each of those bytes as `\xHH` and any other lone surrogate as `\uHHHH`:
# valid text, readable, and decoded back exactly. Every other value (all but a few)
# is stored as it is. U+FDD0 is a Unicode noncharacter, never found in real text.
STORED_ESCAPED = "\ufdd0"
_STORED_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})")


def _needs_escape(text: str) -> bool:
    if text.isascii():
        return "\x00" in text
    if text.startswith(STORED_ESCAPED) or "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _escaped_char(char: str) -> str:
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code == 0:
        return "\\x00"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return char


def to_stored(text: str | None) -> str | None:
    """text as a store's text column keeps it (see STORED_ESCAPED); None stays None."""
    if text is None or not _needs_escape(text):
        return text
    return STORED_ESCAPED + "".join(_escaped_char(c) for c in text)


def _unescaped(match: re.Match) -> str:
    code = match.group(1)
    if code == "\\":
        return "\\"
    value = int(code[1:], 16)
    return chr(0xDC00 + value if code[0] == "x" and value >= 0x80 else value)


def from_stored(text: str | None) -> str | None:
    """The value to_stored() was given."""
    if text is None or not text.startswith(STORED_ESCAPED):
        return text
    return _STORED_ESCAPE.sub(_unescaped, text[len(STORED_ESCAPED) :])


def shown(text: str) -> str:
    """text with each byte that was not UTF-8 shown as `\\xHH`, as a shell shows it:
    what a message, a search index or a terminal is given (a NUL, which no shell
    word holds, as `\\x00`)."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that was not a byte
        return "".join(_escaped_char(c) if "\ud800" <= c <= "\udfff" else c for c in text)


# -- text from a record, printed on someone's terminal --------------------------------
#
# A record holds whatever a command printed or was given, escape sequences included:
# OSC 52 writes the clipboard, OSC 0 the window title, others move the cursor or
# rewrite the screen. Text from a record is printed through printable(), which shows
# every control character visibly as `cat -v` and `less` do: C0 in caret notation
# (ESC as ^[, BEL as ^G, CR as ^M), DEL as ^?, C1 as M-^[ style (U+009B, 8-bit CSI,
# as M-^[). What qme colours itself (SGR) is added after, by the printer.
_PRINTABLE_TABLE = {c: f"^{chr(c + 64)}" for c in range(32)} | {0x7F: "^?"}
_PRINTABLE_TABLE |= {c: f"M-^{chr(c - 128 + 64)}" for c in range(0x80, 0xA0)}
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f]")
_SGR = re.compile("(\x1b\\[[0-9;:]*m)")  # colours and text attributes only


def printable(text: str, keep: str = "", *, colors: bool = False) -> str:
    """text with every control character shown visibly (see above), but for those
    in keep (such as "\\t\\n" for multi-line text) and, with colors, the colour
    sequences (SGR: ESC [ … m); bytes that were not UTF-8 as `\\xHH` (see shown())."""
    text = shown(text)
    if not _UNPRINTABLE.search(text):
        return text
    table = _PRINTABLE_TABLE
    if keep:
        table = {c: v for c, v in table.items() if chr(c) not in keep}
    if colors:
        pieces = _SGR.split(text)  # odd pieces are the SGR sequences
        return "".join(p if i % 2 else p.translate(table) for i, p in enumerate(pieces))
    return text.translate(table)


MARK_START, MARK_END = "\x02", "\x03"  # around each match in a search hit's line


def marked_spans(line: str) -> tuple[str, list[tuple[int, int]]]:
    """A search hit's line (see first_match()) without its \\x02 … \\x03 marks, and
    the (start, end) offsets of each marked span in that plain line."""
    plain, spans, start = [], [], None
    length = 0
    for piece in re.split("([\x02\x03])", line):
        if piece == MARK_START:
            start = length
        elif piece == MARK_END:
            if start is not None:
                spans.append((start, length))
            start = None
        else:
            plain.append(piece)
            length += len(piece)
    return "".join(plain), spans
