"""Secrets replaced by `[redacted]` before a record is stored: in the command, its
argv, the message and the output alike.

One list of patterns (`BUILTIN`) serves twice: the writer (qme/store/writer.py,
in qme's writer process or a Queue's writer thread, never on `qme run`'s hot path)
redacts what matches, and a shell session's secrets filter (qme/session/filters.py)
skips typed commands that match any of them (`SECRET_PATTERNS`). A pattern's group
named `s` is the secret (`--password=[redacted]` keeps the option readable); a
pattern without one is a secret as a whole. Users add theirs with the `redact`
setting (regular expressions, one per line).

Output arrives in chunks, so `StreamRedactor` keeps each stream's unfinished last
line (at most WINDOW bytes) until the next chunk comes or the task ends: a secret
cut in two by a chunk boundary is still caught. A PEM private key spans lines: its
first line becomes OPEN_KEY, which swallows the key's next lines as they arrive
and becomes MARK at its last.
"""

from __future__ import annotations

import functools
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

MARK = "[redacted]"
OPEN_KEY = "[redacted private key…]"
# Bytes of a stream's unfinished last line kept for the next chunk. A longer line is
# cut between words, so a secret's name and its value are caught together when the
# value is shorter than this (a 5,000-byte value after `--password ` was not, at 4 KiB).
WINDOW = 64 * 1024
# Output is searched this much at a time: the look for the patterns' words goes
# through it once per word, at ~70 MB/s while it stays in the CPU's cache, ~40 when
# it does not (50 MB at once).
PIECE = 64 * 1024
_OPEN_KEY = OPEN_KEY.encode()

_KEY_BODY = r"(?:[A-Za-z0-9+/=]|\r?\n)*"
_KEY_END = r"-----END [A-Z ]*PRIVATE KEY-----"
_VALUE = r"""(?P<s>'[^'\n]*'|"[^"\n]*"|[^\s'"]+)"""
_SECRET_WORDS = ("pass", "secret", "token", "key")

# Each pattern with words one of which every match of it holds (a word in lower case
# in any case, another as it is): text with none of them is not searched for it.
# Most output holds none, and a search of all the patterns at once goes at ~2 MB/s,
# the look for their words (each once) at ~75 MB/s.
BUILTIN: list[tuple[tuple[str, ...], str]] = [
    # A PEM private key, whole or begun (OPEN_KEY carries on where it was cut).
    (
        ("-----BEGIN ", OPEN_KEY),
        rf"(?:-----BEGIN [A-Z ]*PRIVATE KEY-----|{re.escape(OPEN_KEY)}){_KEY_BODY}"
        rf"(?P<end>{_KEY_END})?",
    ),
    # mysql -pSECRET (its clients take the password glued to -p).
    (
        ("mysql", "mariadb"),
        r"\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb[\w-]*)\b"
        r"[^\n|;&]*?\s-p(?P<s>[^\s'\"-][^\s]*)",
    ),
    # --password=SECRET, --token SECRET, -secret=…
    (
        _SECRET_WORDS,
        r"(?i:(?<![\w-])--?(?:password|passwd|pass|secret|token|api[-_]?key|access[-_]?key|"
        r"auth[-_]?token|client[-_]?secret)(?:=|[ \t]+))" + _VALUE,
    ),
    # -u user:SECRET (curl, wget, httpie): not a uid:gid such as docker's -u 1000:1000
    (
        ("-u", "-a"),
        r"(?<![\w-])(?:-u|--user|-U|--proxy-user|--auth|-a)(?:=|[ \t]*)[^\s:'\"]+:"
        r"(?!\d+(?:\s|$))(?P<s>[^\s'\"]+)",
    ),
    # scheme://user:SECRET@host
    (("://",), r"\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:(?P<s>[^/\s@]+)@"),
    # aws configure set aws_secret_access_key …
    (("aws_secret_access_key",), r"(?i:aws_secret_access_key[ \t]+)(?P<s>[^\s=:'\"]\S*)"),
    # PASSWORD=…, api_key: …, AWS_SECRET_ACCESS_KEY=…
    (
        _SECRET_WORDS,
        r"(?i:(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)\w*[ \t]*[=:][ \t]*)"
        + _VALUE,
    ),
    (
        ("authorization:",),
        r"(?i:authorization:[ \t]*(?:bearer|basic|token)[ \t]+)(?P<s>\S+)",
    ),
    (("AKIA", "ASIA"), r"(?:AKIA|ASIA)[0-9A-Z]{16}"),  # AWS access key id
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub
    (("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    (("glpat-",), r"\bglpat-[A-Za-z0-9_-]{20,}"),  # GitLab
    (("xox",), r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    (("hooks.slack.com/services/",), r"hooks\.slack\.com/services/(?P<s>[A-Za-z0-9/_-]+)"),
    (("k_live_",), r"\b[sr]k_live_[0-9A-Za-z]{20,}"),  # Stripe
    (("AIza",), r"\bAIza[0-9A-Za-z_-]{35}"),  # Google API key
    (("npm_",), r"\bnpm_[A-Za-z0-9]{36}"),
    (("eyJ",), r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),  # JWT
]

# The same patterns for finding a secret (a session's secrets filter): no named groups.
SECRET_PATTERNS = [re.sub(r"\(\?P<\w+>", "(?:", p) for _, p in BUILTIN]


@functools.lru_cache(maxsize=64)
def _combined(found: tuple[int, ...], kind: type) -> re.Pattern:
    """One alternation of the built-in patterns found, each a group p<i> (i: its
    place in BUILTIN), its secret group s<i>."""
    parts = []
    for i in found:
        pattern = BUILTIN[i][1].replace("(?P<s>", f"(?P<s{i}>").replace("(?P<end>", f"(?P<e{i}>")
        parts.append(f"(?P<p{i}>{pattern})")
    text = "|".join(parts)
    return re.compile(text.encode() if kind is bytes else text)


class _Lookup:
    """The built-in patterns' words as kind (str or bytes), each looked for once:
    those in lower case in the text lowered, the others as they are."""

    def __init__(self, kind: type):
        def word(w: str):
            return w.encode() if kind is bytes else w

        everyone = {w for words, _ in BUILTIN for w in words}
        self.lowered = tuple(word(w) for w in everyone if w.islower())
        self.as_is = tuple(word(w) for w in everyone if not w.islower())
        self.patterns = [(i, {word(w) for w in words}) for i, (words, _) in enumerate(BUILTIN)]

    def found(self, value) -> tuple[int, ...]:
        """The places in BUILTIN of the patterns whose words value holds."""
        lower = value.lower()
        present = {w for w in self.lowered if w in lower}
        present.update(w for w in self.as_is if w in value)
        if not present:  # most output
            return ()
        return tuple(i for i, words in self.patterns if not words.isdisjoint(present))


_LOOKUPS = {kind: _Lookup(kind) for kind in (str, bytes)}


class Redactor:
    """Replaces secrets by MARK in text and bytes: the built-in patterns and extra
    ones (regular expressions, as the `redact` setting gives them)."""

    def __init__(self, extra: Iterable[str] = (), *, builtin: bool = True):
        self._lookups = _LOOKUPS if builtin else None
        self._extra = {
            str: [re.compile(p) for p in extra],
            bytes: [re.compile(p.encode("utf-8", "surrogateescape")) for p in extra],
        }
        self._empty = not builtin and not self._extra[str]

    def text(self, value: str | None) -> str | None:
        """value with its secrets replaced (None stays None)."""
        if not value or self._empty:
            return value
        return self._redact(value, str)

    def data(self, value: bytes | None) -> bytes | None:
        if not value or self._empty:
            return value
        return self._redact(value, bytes)

    def _redact(self, value, kind):
        mark, open_key = (MARK, OPEN_KEY) if kind is str else (MARK.encode(), OPEN_KEY.encode())
        found = self._lookups and self._lookups[kind].found(value)
        if found:
            value = _combined(found, kind).sub(_replacer(mark, open_key), value)
        for pattern in self._extra[kind]:
            value = pattern.sub(mark, value)
        return value


def _replacer(mark, open_key) -> Callable:
    def replace(match: re.Match):
        name = match.lastgroup  # p<i>: the outermost group closes last
        i = name[1:]
        whole = match.group(0)
        if i == "0" and match.group(name) is not None:  # a private key
            return mark if match.group(f"e{i}") is not None else open_key
        try:
            start, end = match.span(f"s{i}")
        except IndexError:  # no secret group: the whole match is the secret
            return mark
        if start < 0:
            return mark
        base = match.start()
        return whole[: start - base] + mark + whole[end - base :]

    return replace


class StreamRedactor:
    """Redacts a task's streams chunk by chunk: feed() returns what may be stored
    now, keeping back each stream's unfinished last line (at most WINDOW bytes, and
    an unfinished private key's OPEN_KEY) for the next chunk; flush() the rest."""

    def __init__(self, redactor: Redactor):
        self.redactor = redactor
        self.kept: dict[tuple[str, str], bytes] = {}

    def feed(self, task_id: str, stream: str, data: bytes) -> bytes:
        if len(data) > PIECE:  # the writer joins what comes at once: 50 MB of `cat`
            pieces = (data[at : at + PIECE] for at in range(0, len(data), PIECE))
            return b"".join(self.feed(task_id, stream, piece) for piece in pieces)
        key = (task_id, stream)
        whole = self.kept.pop(key, b"") + data
        cut = whole.rfind(b"\n") + 1
        # A carriage return not followed by a newline (a progress bar's) ends a line too.
        cut = whole.rfind(b"\r", cut, len(whole) - 1) + 1 or cut
        if len(whole) - cut > WINDOW:  # a long line: cut it between words
            cut = len(whole) - WINDOW
            space = max(whole.rfind(b" ", 0, cut), whole.rfind(b"\t", 0, cut))
            cut = space + 1 if space >= 0 else cut
        done, rest = self.redactor.data(whole[:cut]), whole[cut:]
        if done.endswith(_OPEN_KEY):  # a private key goes on in the next chunk
            done, rest = done[: -len(_OPEN_KEY)], _OPEN_KEY + rest
        if rest:
            self.kept[key] = rest
        return done

    def flush(self, task_id: str, stream: str) -> bytes:
        return self.redactor.data(self.kept.pop((task_id, stream), b""))

    def holds(self, task_id: str) -> list[str]:
        """The streams of task_id with bytes kept back."""
        return [stream for (task, stream) in self.kept if task == task_id]


def for_settings(settings) -> Redactor:
    """The redactor of a home's settings: the built-in patterns and the `redact`
    setting's (left out when broken: that is said by the setting's check)."""
    from qme.errors import ConfigError

    try:
        extra = settings.redact
    except ConfigError:
        extra = []
    return Redactor(extra)


def redact_task(redactor: Redactor, task) -> None:
    """Replace the secrets in a task's command, argv and message, in place."""
    task.command = redactor.text(task.command)
    if task.argv:
        task.argv = redact_argv(redactor, task.argv)
    task.message = redactor.text(task.message)


def redact_argv(redactor: Redactor, argv: list[str]) -> list[str]:
    """Each word redacted as it reads after the program and the word before it
    (`mysql -pSECRET`, `--token SECRET`)."""
    done = []
    for i, word in enumerate(argv):
        before = " ".join(argv[j] for j in sorted({0, i - 1}) if 0 <= j < i)
        prefix = f"{before} " if before else ""
        redacted = redactor.text(prefix + word)
        done.append(redacted[len(prefix) :] if redacted.startswith(prefix) else redactor.text(word))
    return done
