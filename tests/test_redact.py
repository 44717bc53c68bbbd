"""Secrets are redacted before they are stored: in commands and output, by qme's
writer process (never `qme run` itself), a secret cut in two by a chunk boundary
included; users add patterns; `qme redact` scrubs what is stored, on every store."""

from __future__ import annotations

import json

import pytest
import sqlservers
from helpers import ok
from test_session_units import HARMLESS_COMMANDS, SECRET_COMMANDS

from qme.redact import MARK, Redactor, StreamRedactor

TOKEN = "ghp_" + "Q7" * 18
KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    "AAAAMwAAAAtzc2gtZWQyNTUxOQ\n-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.mark.parametrize("command", SECRET_COMMANDS)
def test_every_secret_the_session_filter_knows_is_redacted(command):
    redacted = Redactor().text(command)
    assert MARK in redacted or "[redacted private key" in redacted


@pytest.mark.parametrize("command", HARMLESS_COMMANDS)
def test_harmless_commands_are_left_alone(command):
    assert Redactor().text(command) == command


@pytest.mark.parametrize(
    "text, redacted",
    [
        ("mysql -uroot -pS3cret db", "mysql -uroot -p[redacted] db"),
        ("mysql -p db", "mysql -p db"),
        ("mkdir -p build", "mkdir -p build"),
        ("clone https://bob:pw@example.com/x", "clone https://bob:[redacted]@example.com/x"),
        ("curl -u bob:pw https://x", "curl -u bob:[redacted] https://x"),
        ("app --password='a b' run", "app --password=[redacted] run"),
        (f"token {TOKEN} ok", "token [redacted] ok"),
        (KEY + "after\n", "[redacted]\nafter\n"),
    ],
)
def test_what_is_redacted(text, redacted):
    assert Redactor().text(text) == redacted
    assert Redactor().data(text.encode()) == redacted.encode()


# With SECRET_COMMANDS, a secret for each word the built-in patterns are looked for by.
MORE_SECRETS = [
    "mysql -uroot -pS3cret db",
    "mariadb-dump -uroot -pS3cret db",
    "http --auth bob:pw https://x",
    "curl -a bob:pw https://x",
    "curl -H 'Authorization: token abc' https://api",
    "export AWS_SESSION=ASIAABCDEFGHIJKLMNOP",
    *(f"echo gh{kind}_{'a1' * 18}" for kind in "pousr"),
    "export PASSWD=hunter2",
    "--client-secret=abc",
    "[redacted private key…]\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----",
]


@pytest.mark.parametrize("case", [str, str.upper, str.lower, str.swapcase])
def test_a_pattern_is_skipped_only_where_it_cannot_match(case):
    """Each built-in pattern is searched for only in text that holds one of its
    words (output at ~50 MB/s, not ~2): that finds what all of them always would,
    in any case, for a secret of every word."""
    import re

    from qme.redact import BUILTIN, OPEN_KEY, _combined, _replacer

    texts = [*SECRET_COMMANDS, *MORE_SECRETS, *HARMLESS_COMMANDS, KEY]
    for words, pattern in BUILTIN:
        for word in words:
            found = [t for t in texts if word.lower() in t.lower() and re.search(pattern, t)]
            assert found, f"no secret holds {word!r} and matches {pattern!r}"
    everything = _combined(tuple(range(len(BUILTIN))), str)
    for text in map(case, texts):
        assert Redactor().text(text) == everything.sub(_replacer(MARK, OPEN_KEY), text), text


def test_a_secret_cut_by_any_chunk_boundary_is_caught():
    data = f"line one\n{KEY}then {TOKEN} and https://u:pw@h/ end\nlast {TOKEN}".encode()
    whole = Redactor().data(data)
    for size in (1, 2, 3, 7, 16, 61, 4096):
        stream, out = StreamRedactor(Redactor()), b""
        for start in range(0, len(data), size):
            out += stream.feed("t", "output", data[start : start + size])
        out += stream.flush("t", "output")
        assert out == whole
        assert TOKEN.encode() not in out and b"b3Blbn" not in out and b"pw@" not in out


@pytest.mark.parametrize("cut, shown_at_once", [(10, b"\r"), (3000, b"\rstep 1/2\r")])
def test_a_long_value_on_a_line_cut_in_two_chunks_is_caught(cut, shown_at_once):
    """A line longer than a chunk (a 5,000-byte value after `--password `) is
    caught whole; a progress bar's carriage returns end its lines."""
    line = b"\rstep 1/2\rstep 2/2 --password " + b"S" * 5000 + b" done\r\n"
    stream = StreamRedactor(Redactor())
    first = stream.feed("t", "output", line[:cut])
    out = first + stream.feed("t", "output", line[cut:]) + stream.flush("t", "output")
    assert out == b"\rstep 1/2\rstep 2/2 --password [redacted] done\r\n"
    assert first == shown_at_once  # a last carriage return may be a CRLF's: kept


def test_a_large_chunk_is_searched_a_piece_at_a_time_with_the_same_result():
    """The writer joins what comes at once (50 MB of `cat`) into one chunk; it is
    searched PIECE bytes at a time, with secrets across the pieces' edges."""
    from qme.redact import PIECE

    secrets = f"then {TOKEN} and https://u:pw@h/ end\n{KEY}".encode()
    block = (b"y" * 79 + b"\n") * 5 + b"z" * 17 + b"\n" + secrets
    data = block * (16 * PIECE // len(block))
    edges = [at % len(block) for at in range(PIECE, len(data), PIECE)]
    assert sum(at > len(block) - len(secrets) for at in edges) >= 3  # edges cut secrets
    stream = StreamRedactor(Redactor())
    out = stream.feed("t", "output", data) + stream.flush("t", "output")
    assert out == Redactor().data(data)
    assert TOKEN.encode() not in out and b"b3Blbn" not in out and b"pw@" not in out


def stored(qme, database="sqlite"):
    tasks = json.loads(ok(qme("--database", database, "ls", "--json")))
    return [json.loads(ok(qme("--database", database, "get", t["id"]))) for t in tasks]


@pytest.mark.parametrize("database", ["sqlite", "filesystem"])
def test_qme_run_stores_no_secret(qme, database):
    script = f"printf 'before {TOKEN[:10]}'; sleep 0.3; printf '{TOKEN[10:]} after\\n'; cat"
    result = qme("--database", database, "run", "sh", "-c", script, input=KEY.encode())
    assert result.returncode == 0
    assert TOKEN.encode() in result.stdout  # the command's own output is untouched
    result = qme("--database", database, "run", "mysql-shim", "-pHunter2", "db")
    [shim, printed] = stored(qme, database)
    assert printed["output"] == "before [redacted] after\n[redacted]\n"
    assert shim["command"] == "mysql-shim -p[redacted] db"
    assert "Hunter2" not in json.dumps(shim["argv"])
    search = qme("--database", database, "search", TOKEN)
    assert search.returncode == 1 and search.stdout == b""


def test_users_patterns_from_the_redact_setting(qme):
    ok(qme("config", "--set", "redact", r"corp-[0-9]{4}"))
    assert qme("run", "echo", "id corp-1234 x").returncode == 0
    [task] = stored(qme)
    assert task["command"] == "echo 'id [redacted] x'"
    assert task["output"] == "id [redacted] x\n"
    refused = qme("config", "--set", "redact", "corp-(")
    assert refused.returncode == 1 and b"regular expressions" in refused.stderr


def test_queue_run_in_process_redacts_too(queue):
    task = queue.run(["echo", f"tok={TOKEN}"])
    got = queue.get(task.id)
    assert TOKEN not in got.command and got.output == b"tok=[redacted]\n"


@pytest.mark.parametrize("database", ["sqlite", "filesystem", *sqlservers.KINDS])
def test_qme_redact_scrubs_every_store(qme, database, request):
    database = sqlservers.database(database, request.node.name)
    assert qme("--database", database, "run", "echo", "pin 4711 here").returncode == 0
    assert qme("--database", database, "search", "4711").returncode == 0
    refused = qme("--database", database, "redact", "4711")
    assert refused.returncode == 1 and b"--force" in refused.stderr  # no terminal to ask
    done = qme("--database", database, "redact", "--force", "--json", "47[0-9]1")
    assert json.loads(ok(done)) == {"redacted": 1}
    [task] = stored(qme, database)
    assert (task["command"], task["output"]) == (
        "echo 'pin [redacted] here'",
        "pin [redacted] here\n",
    )
    assert qme("--database", database, "search", "4711").returncode == 1
    assert qme("--database", database, "redact", "--force", "(").returncode == 1
