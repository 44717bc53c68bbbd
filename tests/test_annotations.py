"""Using what was recorded: references (@1, @@1), notes and tags, `qme out`.

The store part runs against every store (the contract's fixture: SQLite, files,
PostgreSQL, MySQL); the rest against real SQLite homes, real `qme` processes and
a real `qme start` over HTTP."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from urllib.request import Request, urlopen

import pytest
from helpers import ok, one_error_line
from test_cli_inprocess import run_main
from test_store_contract import BACKENDS, make_task
from test_web import BEARER, TOKEN, Dashboard

from qme import Queue
from qme.errors import QmeError
from qme.store.base import TaskQuery
from qme.store.sqlite import MIGRATIONS, SqliteStore
from qme.task import Task
from qme.web.auth import Guard

# -- the store contract ---------------------------------------------------------------------


@pytest.fixture(params=sorted(BACKENDS))
def store(request, tmp_path):
    """Each store (as tests/test_store_contract.py makes them); .again() opens the
    same one anew, as another process would."""
    made = BACKENDS[request.param](tmp_path)
    made.again = lambda: BACKENDS[request.param](tmp_path)
    yield made
    made.close()


def _search(store, word):
    return store.search([word], executor=None, limit=10, rank=False)


def test_notes_and_tags_are_kept_listed_filtered_and_searched(store):
    task = make_task(command="make all", message="first try")
    other = make_task(command="make test", started=task.started + 1)
    for each in (task, other):
        store.add(each)
    store.annotate(task.id, message="worked with the flaky fix", tags=["deploy", "50%_off"])
    store.annotate(other.id, tags=["50x_off"])
    got = store.get(task.id)
    assert (got.message, got.tags) == ("worked with the flaky fix", ["deploy", "50%_off"])
    assert {t.id: t.tags for t in store.list(TaskQuery())} == {
        task.id: ["deploy", "50%_off"],
        other.id: ["50x_off"],
    }
    # LIKE's wildcards in a tag match only themselves.
    assert [t.id for t in store.list(TaskQuery(tag="50%_off"))] == [task.id]
    assert [t.id for t in store.list(TaskQuery(tag="50x_off"))] == [other.id]
    assert store.list(TaskQuery(tag="deplo")) == []
    assert store.count(TaskQuery(tag="deploy")) == 1
    assert [h.task.id for h in _search(store, "flaky")] == [task.id]
    assert [h.task.id for h in _search(store, "deploy")] == [task.id]
    assert _search(store, "first") == []  # the note replaced
    store.annotate(task.id, message="")
    assert store.get(task.id).message is None
    assert store.get(task.id).tags == ["deploy", "50%_off"]  # left as they were


def test_a_writer_finishing_a_task_keeps_a_note_given_meanwhile(store):
    """update() (the writer's) never undoes annotate() (another process's): the note
    and tags given while the command ran survive its last update."""
    task = make_task(command="sleep 60", message="from -m")
    store.add(task)
    store.append(task.id, "output", b"started\n")
    other = store.again()
    try:
        other.annotate(task.id, message="noted while it ran", tags=["slow"])
    finally:
        other.close()
    store.append(task.id, "output", b"done\n")
    task.status, task.returncode, task.ended = "complete", 0, time.time()
    store.update(task)
    got = store.get(task.id)
    assert (got.message, got.tags, got.status) == ("noted while it ran", ["slow"], "complete")
    assert got.output == b"started\ndone\n"
    assert [h.task.id for h in _search(store, "slow")] == [task.id]


def test_read_gives_at_most_size_bytes_across_chunks(store):
    task = make_task()
    store.add(task)
    pieces = [bytes([65 + i]) * (1000 + i) for i in range(5)]
    for piece in pieces:
        store.append(task.id, "output", piece)
    whole = b"".join(pieces)
    for size in (1, 7, 999, 1001, 4096, len(whole)):
        got, offset = [], 0
        while data := store.read(task.id, "output", offset, size):
            assert len(data) <= size
            got.append(data)
            offset += len(data)
        assert b"".join(got) == whole
    assert store.read(task.id, "output", 2500, 10) == whole[2500:2510]
    assert store.read(task.id, "output", len(whole), 10) == b""


def test_annotating_a_missing_task_raises(store):
    from qme.errors import NoSuchTask

    with pytest.raises(NoSuchTask):
        store.annotate("shell-0000", message="x")


def test_sqlite_rows_from_before_tags_read_as_untagged(tmp_path):
    """The migration adds the column: a task stored before has no tags and can get some."""
    path = tmp_path / "qme.db"
    mine = next(i for i, step in enumerate(MIGRATIONS) if "tags" in str(step))
    db = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:mine]:
        if callable(step):
            step(db)
        else:
            db.executescript(step)
    db.execute(f"PRAGMA user_version = {mine}")
    columns = [row[1] for row in db.execute("PRAGMA table_info(tasks)")]
    db.execute(
        f"INSERT INTO tasks (rowid, {', '.join(columns)}) VALUES (1, "
        + ", ".join("?" for _ in columns)
        + ")",
        [
            {
                "id": "shell-1234",
                "executor": "shell",
                "command": "echo old",
                "argv": '["echo"]',
            }.get(
                c,
                "{}"
                if c == "data"
                else 0
                if c in ("started", "output_size", "error_size")
                else "x"
                if c in ("cwd", "user", "host", "status")
                else None,
            )
            for c in columns
        ],
    )
    db.execute(
        "INSERT INTO search (rowid, command, message, output, error) "
        "VALUES (1, 'echo old', '', '', '')"
    )
    db.close()
    with SqliteStore(path) as migrated:
        assert migrated.get("shell-1234").tags == []
        migrated.annotate("shell-1234", tags=["old"])
        assert [t.id for t in migrated.list(TaskQuery(tag="old"))] == ["shell-1234"]
        assert [h.task.id for h in _search(migrated, "old")] == ["shell-1234"]


# -- references ------------------------------------------------------------------------------


def _add(queue, command, started, session=None, status="complete"):
    task = make_task(command, started=started, session=session, status=status)
    queue.store.add(task)
    return task


def test_references_count_back_from_the_newest(queue):
    now = time.time()
    a, b, c = (_add(queue, f"echo {n}", now + n) for n in range(3))
    assert [queue.get(f"@{n}").id for n in (1, 2, 3)] == [c.id, b.id, a.id]
    assert queue.get("@@2").id == b.id
    assert queue.resolve("@3") == a.id
    with pytest.raises(QmeError, match=r"no task matches '@4' \(there are fewer than 4 tasks\)"):
        queue.get("@4")
    for bad in ("@0", "@", "@x", "@-1", "@1.5", "@@", "@١"):
        with pytest.raises(QmeError, match="is not a task reference"):
            queue.get(bad)


def test_in_a_session_references_count_its_tasks_first(qme_home):
    now = time.time()
    with Queue(config_dir=qme_home, session="s1") as queue:
        before = _add(queue, "echo before", now)
        mine1 = _add(queue, "echo mine1", now + 1, session="s1")
        elsewhere = _add(queue, "echo elsewhere", now + 2, session="s2")
        mine2 = _add(queue, "echo mine2", now + 3, session="s1")
        running = _add(queue, "sleep 9", now + 4, session="s1", status="running")
        assert [queue.get(f"@{n}").id for n in range(1, 6)] == [
            running.id,
            mine2.id,
            mine1.id,
            elsewhere.id,
            before.id,
        ]
        assert queue.get("@@1").id == running.id and queue.get("@@2").id == mine2.id
        assert queue.get("@@3").id == elsewhere.id
        assert queue.recent_task(finished=True).id == mine2.id
        assert queue.recent_task(2, finished=True).id == mine1.id
    with Queue(config_dir=qme_home) as queue:  # no session: every task, newest first
        assert queue.get("@2").id == mine2.id and queue.get("@3").id == elsewhere.id


# -- notes and tags through the Queue -------------------------------------------------------


def test_queue_notes_and_tags(queue):
    task = queue.run(["true"], message="from -m")
    assert queue.get("@1").message == "from -m"  # the first note
    assert queue.note("@1", "replaced").message == "replaced"
    assert queue.note(task.id, "and more", append=True).message == "replaced\nand more"
    assert queue.note(task, "").message is None
    assert queue.tag("@1", ["Deploy", "prod", "deploy"]).tags == ["deploy", "prod"]
    assert queue.tag("@1", remove=["PROD"]).tags == ["deploy"]
    assert queue.tag("@1", ["x"], replace=True).tags == ["x"]
    assert [t.id for t in queue.list(tag="X")] == [task.id]
    assert queue.count(tag="x") == 1
    for bad in ("", "two words", 'quo"te', "back\\slash", "a,b", "-x", "x" * 65, "tab\there"):
        with pytest.raises(QmeError, match="is not a tag"):
            queue.tag("@1", [bad])


def test_stream_output_reads_pieces_of_at_most_size(queue):
    queue.run([sys.executable, "-c", "import sys; sys.stdout.write('ab' * 1250)"])
    pieces = list(queue.stream_output(None, size=1000))
    assert [len(p) for p in pieces] == [1000, 1000, 500]
    assert b"".join(pieces) == b"ab" * 1250
    assert b"".join(queue.stream_output("@1", "error")) == b""
    with pytest.raises(QmeError, match="no stream 'stdout'"):
        next(queue.stream_output("@1", "stdout"))


# -- the command line -----------------------------------------------------------------------


def _qme(*args, env=None, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "qme", *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


def test_qme_out_prints_the_recorded_bytes_exactly(qme_home, tmp_path):
    raw = bytes(range(256)) * 3 + b"\xff\xfe not utf-8 \x1b[31mred\x1b[0m\r\n"
    (tmp_path / "blob").write_bytes(raw)
    assert _qme("run", "sh", "-c", f"cat {tmp_path / 'blob'}; echo to-stderr >&2").stdout == raw
    ok(_qme("run", "echo", "newest"))
    assert _qme("out").stdout == b"newest\n"
    assert _qme("out", "@2").stdout == raw
    assert _qme("out", "@2", "--err").stdout == b"to-stderr\n"
    assert _qme("out", "@2", "--all").stdout == raw + b"to-stderr\n"
    got = _qme("out", "@2")
    assert got.returncode == 0 and got.stderr == b""
    piped = subprocess.run(
        f"{sys.executable} -m qme out @2 | od -An -tx1 | head -1", shell=True, capture_output=True
    )
    assert piped.stdout.split()[:3] == [b"00", b"01", b"02"]


def test_qme_out_all_interleaves_the_streams_as_they_came(qme_home):
    script = "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; sleep 0.3; echo four >&2"
    _qme("run", "sh", "-c", script)
    assert _qme("out", "--all").stdout == b"one\ntwo\nthree\nfour\n"
    assert _qme("out").stdout == b"one\nthree\n"
    assert _qme("out", "--err").stdout == b"two\nfour\n"


def test_qme_out_without_a_task_shows_the_last_finished_one(qme_home):
    ok(_qme("run", "echo", "finished"))
    runner = subprocess.Popen(
        [sys.executable, "-m", "qme", "run", "sh", "-c", "echo running; sleep 30"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 10
        while _qme("out", "@1").stdout != b"running\n":
            assert time.time() < deadline, "the running task never showed"
            time.sleep(0.1)
        assert _qme("out").stdout == b"finished\n"  # not the running one
    finally:
        runner.terminate()
        runner.wait()


def test_qme_out_in_a_session_shows_the_sessions_previous_command(qme_home):
    now = time.time()
    with Queue(config_dir=qme_home) as queue:
        mine = _add(queue, "echo mine", now, session="s1")
        queue.store.append(mine.id, "output", b"mine\n")
        other = _add(queue, "echo other", now + 1, session="s2")
        queue.store.append(other.id, "output", b"other\n")
    assert _qme("out", env={"QME_SESSION": "s1"}).stdout == b"mine\n"
    assert _qme("out", "@1", env={"QME_SESSION": "s1"}).stdout == b"mine\n"
    assert _qme("out", "@@1", env={"QME_SESSION": "s1"}).stdout == b"other\n"
    assert _qme("out", env={"QME_SESSION": ""}).stdout == b"other\n"


def test_qme_out_says_when_the_record_was_cut(qme_home):
    code = "import sys; sys.stdout.write('x' * 300000)"
    ok(_qme("run", sys.executable, "-c", code, env={"QME_MAX_OUTPUT": "100k"}))
    got = _qme("out")
    assert got.returncode == 0 and len(got.stdout) < 300000
    assert b"wrote 300000 bytes to stdout; its record keeps the head and the tail" in got.stderr


def test_qme_out_does_not_call_a_redacted_record_cut(qme_home):
    """A secret replaced by [redacted] makes the record shorter than what the
    command wrote; that is not max_output's cut, and nothing says it is."""
    token = "ghp_" + "A1b2C3d4E5" * 4
    ok(_qme("run", "echo", f"token={token}", env={"QME_SECRETS_FILTER": "off"}))
    got = _qme("out")
    assert got.returncode == 0
    assert b"[redacted]" in got.stdout and token.encode() not in got.stdout
    assert got.stderr == b""


def test_qme_out_errors(qme_home):
    assert "there are fewer than 1 finished tasks" in one_error_line(_qme("out"))
    assert "no task matches 'nope'" in one_error_line(_qme("out", "nope"))
    assert "is not a task reference" in one_error_line(_qme("out", "@zero"))
    assert _qme("out", "--err", "--all").returncode == 2


def test_note_tag_ls_search_get_from_the_command_line(qme_home):
    ok(_qme("run", "-m", "first note", "echo", "hello"))
    assert ok(_qme("note", "@1")) == "first note\n"
    _qme("note", "@1", "the", "real", "note")
    assert ok(_qme("note", "@1")) == "the real note\n"
    ok(_qme("note", "-a", "@1", "second line"))
    assert ok(_qme("note", "@1")) == "the real note\nsecond line\n"
    assert ok(_qme("tag", "@1", "Build", "nightly")) == "build nightly\n"
    assert ok(_qme("tag", "@1", "--remove", "nightly")) == "build\n"
    assert ok(_qme("tag", "@1")) == "build\n"
    ok(_qme("run", "echo", "untagged"))
    listed = json.loads(ok(_qme("ls", "--tag", "BUILD", "--json")))
    assert [(t["command"], t["tags"], t["message"]) for t in listed] == [
        ("echo hello", ["build"], "the real note\nsecond line")
    ]
    assert "untagged" not in ok(_qme("ls", "--tag", "build"))
    assert "echo hello" in ok(_qme("search", "build"))
    assert "echo hello" in ok(_qme("search", "real"))
    got = json.loads(ok(_qme("get", "@2")))
    assert got["tags"] == ["build"] and got["message"] == "the real note\nsecond line"
    ok(_qme("note", "@2", "--remove"))
    assert _qme("note", "@2").stdout == b""
    assert "is not a tag" in one_error_line(_qme("tag", "@2", "a,b"))


def test_references_work_in_get_rerun_clear_exec_cancel(qme_home):
    ok(_qme("run", "echo", "one"))
    ok(_qme("run", "echo", "two"))
    assert json.loads(ok(_qme("get", "@2")))["command"] == "echo one"
    assert run_main("get", "@1").stdout and b"echo two" in run_main("get", "@1").stdout
    assert _qme("rerun", "@2").stdout == b"one\n"
    assert json.loads(ok(_qme("get", "@1")))["command"] == "echo one"
    assert "is not running" in one_error_line(_qme("cancel", "@1"))
    second = json.loads(ok(_qme("get", "@2")))["id"].split("-", 1)[1][:8]
    assert f"task {second} is a shell task" in one_error_line(_qme("exec", "@2", "status"))
    ok(_qme("clear", "@1", "--force"))
    assert json.loads(ok(_qme("get", "@1")))["command"] == "echo two"


# -- the REST API ---------------------------------------------------------------------------


def _patch(dashboard, path, body, headers=BEARER):
    request = Request(
        dashboard.base + path,
        data=body if isinstance(body, bytes) else json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except Exception as exc:  # noqa: BLE001 - HTTPError carries the status
        return exc.code, json.loads(exc.read())


def test_patch_sets_notes_and_tags_over_http(qme_home):
    with Queue(config_dir=qme_home) as queue:
        task = queue.run(["echo", "served"], message="from -m")
    dashboard = Dashboard(qme_home)
    try:
        status, body = _patch(dashboard, "/api/tasks/@1", {"note": "from the API", "tags": ["A"]})
        assert status == 200 and (body["message"], body["tags"]) == ("from the API", ["a"])
        assert body["id"] == task.id and "output" not in body
        assert _patch(dashboard, f"/api/tasks/{task.short_id}", {"tags": []})[1]["tags"] == []
        assert _patch(dashboard, f"/api/tasks/{task.id}", {"note": None})[1]["message"] is None
        for bad in (
            b"",
            b"[]",
            b"{}",
            b"nope",
            {"note": 3},
            {"tags": "a"},
            {"tags": ["a b"]},
            {"other": 1},
            {"tags": [1]},
        ):
            status, body = _patch(dashboard, f"/api/tasks/{task.id}", bad)
            assert status == 400 and body["error"], bad
        assert _patch(dashboard, "/api/tasks/shell-0000", {"note": "x"})[0] == 404
        assert _patch(dashboard, f"/api/tasks/{task.id}", {"note": "x"}, headers={})[0] == 401
        cookie = {"Cookie": f"qme_session_{dashboard.port}={Guard(TOKEN).session}"}
        other_site = {**cookie, "Origin": "https://evil.example"}
        assert _patch(dashboard, f"/api/tasks/{task.id}", {"note": "x"}, other_site)[0] == 403
        same_site = {**cookie, "Origin": dashboard.base}
        assert _patch(dashboard, f"/api/tasks/{task.id}", {"note": "ok"}, same_site)[0] == 200
        status, got = dashboard.get(f"/api/tasks/{task.id}?streams=0")
        assert status == 200 and json.loads(got)["message"] == "ok"
    finally:
        assert dashboard.stop() == 0


def test_task_records_are_tasks():
    assert "tags" in Task.FIELDS


# -- large outputs: streamed, byte for byte, in flat memory ---------------------------------

TRICKY = (
    bytes(range(256))
    + 'é😀\\"\n\t'.encode()
    + b"\\" * 13
    + b"\xff\xfe\xed\xa0\x80 not utf-8"
    + "😀".encode() * 5
)


def test_stream_gives_back_every_byte_in_pieces_of_at_most_size(store):
    task = make_task()
    store.add(task)
    output, error = TRICKY * 4, TRICKY[::-1] * 300  # short: a SQL server reads per piece
    store.append(task.id, "output", output)
    store.append(task.id, "error", error)
    for size in (1, 5, 6, 7, 13, 1000, 1 << 20):
        pieces = list(store.stream(task.id, "output", size))
        assert b"".join(pieces) == output, size
        assert max(map(len, pieces)) <= size
    assert b"".join(store.stream(task.id, "error", 4096)) == error


_PEAK_RSS = """
import resource, subprocess, sys
with open(sys.argv[1], "wb") as out:
    subprocess.run(sys.argv[2:], stdout=out, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_rss_kib(out_file, *args) -> int:
    """`qme ARGS` with stdout to out_file, from a fresh Python: its peak RSS."""
    probe = [sys.executable, "-c", _PEAK_RSS, str(out_file), sys.executable, "-m", "qme"]
    return int(ok(subprocess.run([*probe, *args], capture_output=True)))


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "filesystem"])
def test_qme_out_streams_a_large_output_in_flat_memory(qme_home, tmp_path, monkeypatch, database):
    monkeypatch.setenv("QME_DATABASE", database)
    monkeypatch.setenv("QME_MAX_OUTPUT", "0")
    size = 20_000_000
    data = (TRICKY * (size // len(TRICKY) + 1))[:size]
    (tmp_path / "big").write_bytes(data)
    ok(_qme("run", "true"))
    assert _qme("run", "cat", str(tmp_path / "big")).returncode == 0
    empty = _peak_rss_kib(tmp_path / "empty", "out", "@2")
    large = _peak_rss_kib(tmp_path / "large", "out")
    assert (tmp_path / "large").read_bytes() == data
    # Reading 1 MiB at a time costs about 10 MiB whatever the size; holding the
    # output whole would cost all 19.5 MiB of it, and more.
    assert large - empty < size / 1024 * 0.75, f"{large} KiB, against {empty} KiB for none"
