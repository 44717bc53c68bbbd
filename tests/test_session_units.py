"""Fast tests of the session's parts: the marks (marks.py), the filters
(filters.py), the cutter (cutter.py) writing through a real StoreWriter into a
SQLite file in tmp_path, and the store watch (proxy.py). No shell, no pty."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from qme.config import OPTIONS, Settings
from qme.errors import StoreError
from qme.session.cutter import CommandCutter
from qme.session.filters import CommandFilter, first_program
from qme.session.marks import MAX_MARK, End, MarkParser, Start, decode, parse_mark
from qme.session.proxy import StoreWatch
from qme.store.base import TaskQuery
from qme.store.sqlite import SqliteStore
from qme.store.writer import StoreWriter
from qme.task import Task

PID = 4242
DEFAULT_IGNORE = OPTIONS["ignore"].default.split()


def encode(text: str) -> bytes:
    """As the hooks do."""
    for char, code in (("%", "%25"), ("\x1b", "%1B"), ("\x07", "%07"), (";", "%3B")):
        text = text.replace(char, code)
    return text.encode()


def start(command: str, cwd: str = "/work", pid: int = PID) -> bytes:
    return b"\x1b]6973;qme;S;%d;%s;c;%s\x07" % (pid, encode(cwd), encode(command))


def start_history(number: int, line: str, cwd: str = "/work", pid: int = PID) -> bytes:
    """What bash's PS0 prints: `history 1` through the pty (\\n became \\r\\n)."""
    history = f"{number:5d}  {line}\n".replace("\n", "\r\n").encode()
    return b"\x1b]6973;qme;S;%d;%s;h;%s\x07" % (pid, encode(cwd), history)


def end(status: int, pid: int = PID) -> bytes:
    return b"\x1b]6973;qme;E;%d;%d\x07" % (pid, status)


# -- marks ---------------------------------------------------------------------------


def test_decode_reverses_the_hooks_encoding():
    for text in ["plain", "100%", "%1B", "a\x1bb\x07c", "%25%07", "é ü", "a;b", "%3B;"]:
        assert decode(encode(text)) == text


def test_decode_reads_fish_url_style():
    # string escape --style=url -- "a;b%c é" (newline) "x"
    assert decode(b"a%3Bb%25c%20%C3%A9%0Ax") == "a;b%c é\nx"
    assert decode(b"%e9%ZZ%") == "\ufffd%ZZ%"  # not UTF-8, not a code: kept


def test_parse_command_mark():
    mark = parse_mark(start("echo 'a;b' 50%", cwd="/tmp/x;y")[len(b"\x1b]6973;qme;") : -1])
    assert mark == Start(PID, "/tmp/x;y", "echo 'a;b' 50%")


def test_parse_multiline_command_mark_undoes_the_pty_line_ends():
    body = b"S;1;/w;c;for i in 1 2\r\n  echo $i\r\nend"
    assert parse_mark(body).command == "for i in 1 2\n  echo $i\nend"


@pytest.mark.parametrize(
    ("history", "command"),
    [
        (b"   12  echo hi\r\n", "echo hi"),
        (b"12345  ls -l\r\n", "ls -l"),
        (b"    7*  edited line\r\n", "edited line"),
        (b"    3   leading space\r\n", " leading space"),
        (b"    9  cat <<EOF\r\nx\r\nEOF\r\n", "cat <<EOF\nx\nEOF"),
    ],
)
def test_parse_bash_history_mark(history, command):
    mark = parse_mark(b"S;%d;/w;h;%s" % (PID, history))
    assert mark == Start(PID, "/w", command)


@pytest.mark.parametrize(
    "body",
    [b"E;x;0", b"E;1;", b"S;;/w;c;ls", b"X;1;0", b"S;1;/w;z;ls", b"S;1;/w;h;no number\r\n", b""],
)
def test_malformed_marks_are_none(body):
    assert parse_mark(body) is None


def test_parser_splits_output_and_marks_in_order():
    data = b"$ " + start("ls") + b"a b\r\n" + end(0) + b"$ "
    assert MarkParser().feed(data) == [
        b"$ ",
        Start(PID, "/work", "ls"),
        b"a b\r\n",
        End(PID, 0),
        b"$ ",
    ]


def test_parser_gives_the_same_items_whatever_the_reads():
    data = b"x" + start("echo hi") + b"hi\r\n" + end(1) + b"\x1b]0;title\x07" + b"\x1b]69 y"
    whole = MarkParser().feed(data)
    parser = MarkParser()
    pieces = [item for i in range(len(data)) for item in parser.feed(data[i : i + 1])]
    pieces += parser.feed(b"")
    assert _merge(pieces) == _merge(whole)
    assert b"".join(i for i in whole if isinstance(i, bytes)) == b"xhi\r\n\x1b]0;title\x07\x1b]69 y"


def test_parser_holds_a_possible_mark_start_then_lets_it_go():
    parser = MarkParser()
    assert parser.feed(b"abc\x1b]69") == [b"abc"]
    assert parser.feed(b"xyz") == [b"\x1b]69xyz"]


def test_parser_passes_an_endless_mark_through_as_output():
    parser = MarkParser()
    assert parser.feed(b"\x1b]6973;qme;S;1;/;c;" + b"x" * 100) == []
    items = parser.feed(b"x" * MAX_MARK)
    assert len(b"".join(items)) == len(b"\x1b]6973;qme;S;1;/;c;") + 100 + MAX_MARK


def _merge(items):
    merged: list = []
    for item in items:
        if isinstance(item, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += item
        elif item != b"":
            merged.append(item)
    return merged


# -- filters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "program"),
    [
        ("vim file", "vim"),
        ("/usr/bin/vim file", "vim"),
        ("EDITOR=x FOO=1 less f", "less"),
        ("sudo top", "top"),
        ("time nohup make", "make"),
        ("", ""),
    ],
)
def test_first_program(command, program):
    assert first_program(command) == program


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (" echo hidden", "starts with a space"),
        ("qme ls", "qme records its own commands"),
        ("/opt/bin/qme run make", "qme records its own commands"),
        ("vim notes", "vim is in the ignore list"),
        ("sudo htop", "htop is in the ignore list"),
        ("make test", None),
        ("echo vim", None),
    ],
)
def test_what_is_skipped(command, reason):
    assert CommandFilter(DEFAULT_IGNORE, True).reason_to_skip(command) == reason


SECRET_COMMANDS = [
    "export GITHUB_TOKEN=ghp_" + "a1" * 18,
    "git clone https://github_pat_11ABCDEFG0123456789_abcdefghij@github.com/x/y",
    "curl -H 'PRIVATE-TOKEN: glpat-abcdefghij0123456789' https://gitlab.example",
    "export AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP",
    "aws configure set aws_secret_access_key abc",
    "curl -X POST https://hooks.slack.com/services/T000/B000/XXXX",
    "SLACK=xoxb-1234567890-abcdef ./bot",
    "stripe login --api-key sk_live_abcdefghijklmnopqrstuvwx",
    "curl 'https://maps.googleapis.com/?key=AIza" + "B" * 35 + "'",
    "npm config set //registry.npmjs.org/:_authToken npm_" + "c" * 36,
    "echo '-----BEGIN RSA PRIVATE KEY-----' > k",
    "http GET api eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig",
    "curl -H 'Authorization: Bearer abc' https://api",
    "mysql --password=hunter2",
    "PGPASSWORD=hunter2 psql",
    "./deploy --token abc123",
    "git clone https://user:hunter2@example.com/repo",
    "curl -u user:pass https://example.com",
    "curl --user=user:pass https://example.com",
]
HARMLESS_COMMANDS = [
    "git commit -m 'fix the token parser'",
    "grep -r password docs/",
    "docker run -u 1000:1000 image",
    "sort -u names.txt",
    "ssh user@host",
    "curl https://example.com/a:b@c",
    "curl -u user: https://example.com",  # curl asks for the password
    "git push -u origin main",
]


@pytest.mark.parametrize("command", SECRET_COMMANDS)
def test_secrets_are_skipped(command):
    assert CommandFilter([], True).reason_to_skip(command) == "looks like it carries a secret"
    assert CommandFilter([], False).reason_to_skip(command) is None


@pytest.mark.parametrize("command", HARMLESS_COMMANDS)
def test_harmless_commands_are_kept(command):
    assert CommandFilter([], True).reason_to_skip(command) is None


# -- the cutter, on a real store --------------------------------------------------------


class Recorder:
    """A CommandCutter writing through a StoreWriter into a SQLite file."""

    def __init__(
        self, path, shell="/bin/bash", ignore=(), max_output=0, open_store=None, check_store=None
    ):
        self.path = str(path)
        self.writer = StoreWriter(open_store or (lambda: SqliteStore(self.path)))
        self.cutter = CommandCutter(
            self.writer,
            shell=shell,
            shell_pid=PID,
            session="session-1",
            command_filter=CommandFilter(list(ignore), True),
            max_output=max_output,
            check_store=check_store,
        )
        self.shown = b""

    def feed(self, *chunks: bytes) -> bytes:
        shown = b"".join(self.cutter.feed(chunk) for chunk in chunks)
        self.shown += shown
        return shown

    def close(self, status: int = 0):
        """End the session; return (error, tasks oldest first, with their output)."""
        error = self.cutter.close(status)
        store = SqliteStore(self.path)
        try:
            tasks = [store.get(t.id) for t in store.list(TaskQuery(), newest_first=False)]
        finally:
            store.close()
        assert b"\x1b]6973" not in self.shown
        return error, tasks


@pytest.fixture
def db(tmp_path):
    return tmp_path / "qme.db"


def test_one_task_per_command(db):
    rec = Recorder(db)
    shown = rec.feed(b"$ ", start("echo hi", cwd="/tmp"), b"hi\r\n", end(0), b"$ ")
    rec.feed(start("false"), end(1), b"$ ")
    assert shown == b"$ hi\r\n$ "
    error, tasks = rec.close()
    assert error is None
    hi, false = tasks
    assert (hi.command, hi.cwd, hi.output, hi.status, hi.returncode) == (
        "echo hi",
        "/tmp",
        b"hi\r\n",
        "complete",
        0,
    )
    # No executor yet: the writer child picks it as for `qme run` (tests/test_slurm.py
    # types an sbatch in a session); this StoreWriter writes what the cutter gives.
    assert hi.executor == "" and hi.session == "session-1"
    assert hi.argv == ["/bin/bash", "-c", "echo hi"]
    assert hi.output_size == 4 and hi.ended >= hi.started
    assert (false.status, false.returncode, false.output) == ("failed", 1, b"")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0, "complete"),
        (1, "failed"),
        (129, "cancelled"),
        (130, "cancelled"),
        (137, "cancelled"),
        (143, "cancelled"),
    ],
)
def test_exit_status_gives_the_task_status(db, status, expected):
    rec = Recorder(db)
    rec.feed(start("cmd"), b"out", end(status))
    _, [task] = rec.close()
    assert (task.status, task.returncode) == (expected, status)


def test_a_start_without_an_end_cancels_the_command_before(db):
    rec = Recorder(db)
    rec.feed(start("one"), b"1\r\n", start("two"), b"2\r\n", end(0))
    _, (one, two) = rec.close()
    assert (one.status, one.returncode, one.output) == ("cancelled", None, b"1\r\n")
    assert (two.status, two.output) == ("complete", b"2\r\n")


def test_the_shell_exiting_ends_the_running_command(db):
    rec = Recorder(db)
    rec.feed(start("exit 3"), b"exit\r\n")
    _, [task] = rec.close(3)
    assert (task.command, task.status, task.returncode) == ("exit 3", "failed", 3)


def test_marks_of_a_nested_shell_are_its_output(db):
    inner = 999
    rec = Recorder(db)
    shown = rec.feed(
        start("bash"),
        b"in$ ",
        start("ls", pid=inner),
        b"a\r\n",
        end(0, pid=inner),
        b"in$ ",
        b"exit\r\n",
        end(0),
    )
    assert shown == b"in$ a\r\nin$ exit\r\n"
    _, [task] = rec.close()
    assert (task.command, task.output) == ("bash", b"in$ a\r\nin$ exit\r\n")


def test_the_reads_do_not_matter(db, tmp_path):
    data = (
        b"$ "
        + start("printf 'a\\nb\\n'")
        + b"a\r\nb\r\n"
        + end(0)
        + b"$ "
        + start("false")
        + end(1)
        + b"$ "
        + start_history(3, "echo x")
        + b"x\r\n"
        + end(0)
    )
    whole = Recorder(tmp_path / "whole.db")
    whole.feed(data)
    bytewise = Recorder(tmp_path / "bytes.db")
    bytewise.feed(*(data[i : i + 1] for i in range(len(data))))
    assert bytewise.shown == whole.shown == b"$ a\r\nb\r\n$ $ x\r\n"
    _, expected = whole.close()
    _, got = bytewise.close()
    assert [(t.command, t.output, t.status) for t in got] == [
        (t.command, t.output, t.status) for t in expected
    ]


def test_bash_repeats_under_the_same_history_number_are_each_recorded(db):
    # HISTCONTROL=ignoredups: the hooks took entry 6 out after the second `echo a`,
    # so the third comes as entry 6 again (a line that never reached the history,
    # under `set +o history`, sends no start mark at all).
    rec = Recorder(db)
    for number in (5, 6, 6):
        rec.feed(start_history(number, "echo a"), b"a\r\n", end(0))
    _, tasks = rec.close()
    assert [(t.command, t.output) for t in tasks] == [("echo a", b"a\r\n")] * 3


def test_skipped_commands_leave_no_task_and_their_output_goes_nowhere(db):
    rec = Recorder(db, ignore=["vim"])
    shown = rec.feed(
        start(" secret"),
        b"s\r\n",
        end(0),
        start("vim f"),
        b"\x1b[?1049h",
        end(0),
        start("qme ls"),
        b"list\r\n",
        end(0),
        start("export T=ghp_" + "x" * 36),
        end(0),
    )
    assert shown == b"s\r\n\x1b[?1049hlist\r\n"
    _, tasks = rec.close()
    assert tasks == []


ZSH_PROMPT_SP = b"\x1b[1m\x1b[7m%\x1b[27m\x1b[1m\x1b[0m" + b" " * 99 + b"\r \r"


@pytest.mark.parametrize("split", [False, True], ids=["one-read", "two-reads"])
def test_zsh_prompt_sp_is_not_output(db, split):
    rec = Recorder(db, shell="/bin/zsh")
    chunks = [start("printf x"), b"x" + ZSH_PROMPT_SP, end(0)]
    if not split:
        chunks = [b"".join(chunks)]
    shown = rec.feed(*chunks)
    assert shown == b"x" + ZSH_PROMPT_SP  # the terminal still gets it
    _, [task] = rec.close()
    assert task.output == b"x"


def test_output_that_goes_on_after_something_like_prompt_sp_is_kept(db):
    rec = Recorder(db, shell="/bin/zsh")
    rec.feed(start("cmd"), b"a" + ZSH_PROMPT_SP, b"more\r\n", end(0))
    _, [task] = rec.close()
    assert task.output == b"a" + ZSH_PROMPT_SP + b"more\r\n"


def test_prompt_sp_search_stays_fast_on_huge_blank_output(db):
    rec = Recorder(db, shell="/bin/zsh")
    blank = b" " * (4 << 20)
    began = time.monotonic()
    rec.feed(start("cmd"), blank + b"\x1b[0m" + b" " * 99 + b"\r \r" + end(0))
    assert time.monotonic() - began < 2
    _, [task] = rec.close()
    assert task.output_size == len(blank)  # up to the PROMPT_SP


FISH_PREAMBLE = b"\x1b[?2004l\x1b]0;echo hi ~\x07\x1b[30m\x1b(B\x1b[m\r"


@pytest.mark.parametrize("bytewise", [False, True])
def test_fish_preamble_is_not_output(db, bytewise):
    rec = Recorder(db, shell="/usr/bin/fish")
    data = start("echo hi") + FISH_PREAMBLE + b"hi\r\n" + end(0)
    if bytewise:
        rec.feed(*(data[i : i + 1] for i in range(len(data))))
    else:
        rec.feed(data)
    assert rec.shown == FISH_PREAMBLE + b"hi\r\n"
    _, [task] = rec.close()
    assert task.output == b"hi\r\n"


@pytest.mark.parametrize(
    ("preamble", "output"),
    [
        (b"\x1b[?2004l", b"\x1b[1;31mred\x1b[0m\r\n"),  # TERM=linux: no title
        (b"\x1b[?2004l\x1b]0;ls ~\x07\x1b[30m\x1b[m\x0f\r", b"\x1b[0m\x1b[01;34mdir\x1b[0m\r\n"),
        (b"", b"plain\r\n"),
    ],
)
def test_fish_preamble_variants_leave_the_commands_colours(db, preamble, output):
    rec = Recorder(db, shell="fish")
    rec.feed(start("cmd"), preamble + output, end(0))
    _, [task] = rec.close()
    assert task.output == output


def test_fish_command_with_no_output(db):
    rec = Recorder(db, shell="fish")
    rec.feed(start("true"), FISH_PREAMBLE, end(0))
    _, [task] = rec.close()
    assert task.output == b""


def test_other_shells_keep_what_looks_like_a_fish_preamble(db):
    rec = Recorder(db, shell="/bin/bash")
    rec.feed(start("printf"), FISH_PREAMBLE + b"x", end(0))
    _, [task] = rec.close()
    assert task.output == FISH_PREAMBLE + b"x"


def test_long_output_is_cut_to_max_output(db):
    rec = Recorder(db, max_output=1000)
    rec.feed(start("seq"), *(b"%05d\r\n" % i for i in range(1000)), end(0))
    _, [task] = rec.close()
    assert task.output_size == 7000
    assert task.output.startswith(b"00000\r\n") and task.output.endswith(b"00999\r\n")
    assert b"[qme: 6000 bytes not kept]" in task.output


def test_a_store_that_cannot_open_warns_once_and_output_flows(tmp_path):
    home = tmp_path / "a-file"
    home.write_text("x")
    rec = Recorder(tmp_path / "unused.db", open_store=lambda: SqliteStore(home / "qme.db"))
    time.sleep(0.2)
    shown = [rec.feed(start(f"echo {i}"), b"%d\r\n" % i, end(0), b"$ ") for i in range(3)]
    warning = b"\r\nqme: warning: recording stopped: cannot open the SQLite store"
    assert shown[0].startswith(b"0\r\n" + warning)
    assert shown[1:] == [b"1\r\n$ ", b"2\r\n$ "]
    assert rec.cutter.close(0).startswith("cannot open the SQLite store")


def test_a_failing_store_check_stops_recording(db):
    broken = []

    def check():
        if broken:
            raise StoreError("the store went away")

    rec = Recorder(db, check_store=check)
    rec.feed(start("one"), b"1\r\n", end(0))
    broken.append(True)
    shown = rec.feed(start("two"), b"2\r\n", end(0), start("three"), b"3\r\n", end(0))
    assert shown == (
        b"2\r\n\r\nqme: warning: recording stopped: StoreError: the store went away\r\n3\r\n"
    )
    error, tasks = rec.close()
    assert error == "StoreError: the store went away"
    assert [t.command for t in tasks] == ["one"]


# -- the store watch -----------------------------------------------------------------


def _task(number: int) -> Task:
    return Task(
        id=f"shell-0000000{number}-0000-4000-8000-000000000000",
        executor="shell",
        command=f"cmd {number}",
        argv=[],
        cwd="/",
        user="u",
        host="h",
        started=time.time(),
    )


@pytest.fixture
def watched(tmp_path):
    home = tmp_path / "home"
    store = SqliteStore(home / "qme.db")
    store.add(_task(1))
    watch = StoreWatch(Settings.load(home))
    watch()
    yield home, store, watch
    watch.close()
    store.close()


def test_watch_accepts_the_store_it_first_saw(watched):
    """Writes into the store the watch first saw pass, however many (the file
    grows, its header changes); a copy of that store put in its place does not."""
    home, store, watch = watched
    first = os.stat(home / "qme.db")
    header = (home / "qme.db").read_bytes()[:100]
    for number in range(2, 5):
        store.add(_task(number))
        watch()
    checkpoint = sqlite3.connect(home / "qme.db")
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    watch()
    watch()
    now = os.stat(home / "qme.db")
    assert (now.st_dev, now.st_ino) == (first.st_dev, first.st_ino)
    assert (home / "qme.db").read_bytes()[:100] != header  # the file did change
    assert store.count(TaskQuery()) == 4
    # What it accepts is that very file, not any SQLite database at that path.
    shutil.copyfile(home / "qme.db", home / "copy.db")
    os.replace(home / "copy.db", home / "qme.db")
    with pytest.raises(StoreError, match="was replaced"):
        watch()


def test_watch_notices_a_replaced_file(watched):
    home, _, watch = watched
    (home / "new").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    os.replace(home / "new", home / "qme.db")
    with pytest.raises(StoreError, match="was replaced"):
        watch()


def test_watch_notices_garbage_written_over_the_file(watched):
    home, _, watch = watched
    with open(home / "qme.db", "r+b") as handle:
        handle.write(b"garbage\n")
    with pytest.raises(StoreError, match="no longer a SQLite database"):
        watch()


def test_watch_notices_a_deleted_home(watched, tmp_path):
    home, _, watch = watched
    for name in os.listdir(home):
        os.unlink(home / name)
    os.rmdir(home)
    with pytest.raises(StoreError, match="was deleted"):
        watch()
    home.write_text("now a file")
    with pytest.raises(StoreError, match="Not a directory"):
        watch()


def test_watch_waits_for_the_store_to_be_created(tmp_path):
    """No store yet (nor its folder) is not an error; the store created later is
    the one watched from then on."""
    home = tmp_path / "later"
    watch = StoreWatch(Settings.load(home))
    store = None
    try:
        watch()
        home.mkdir()
        watch()  # the folder, still no store
        store = SqliteStore(home / "qme.db")
        store.add(_task(1))
        watch()
        store.add(_task(2))
        watch()
        (home / "new").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
        os.replace(home / "new", home / "qme.db")
        with pytest.raises(StoreError, match="was replaced"):
            watch()
        os.unlink(home / "qme.db")
        with pytest.raises(StoreError, match="was deleted"):
            watch()
    finally:
        watch.close()
        if store is not None:
            store.close()


def test_watch_keeps_the_writers_locks(watched):
    """Closing a descriptor of the database drops every POSIX lock the process holds
    on it, SQLite's too: another process closing its connection would then delete
    the WAL that the session's connection still writes to."""
    home, store, watch = watched
    read = (
        "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
        "print(db.execute('select count(*) from tasks').fetchone()[0]); db.close()"
    )

    def count() -> int:
        out = subprocess.run(
            [sys.executable, "-c", read, str(home / "qme.db")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(out)

    for _ in range(3):
        watch()
    assert count() == 1
    store.add(_task(2))
    watch()
    assert count() == 2
    assert (home / "qme.db-wal").exists()
