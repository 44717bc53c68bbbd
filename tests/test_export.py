"""Output timing (Task.timing) kept by `qme run`, Queue.run and sessions; `qme export
--as sh|md|ipynb|cast` and `qme replay`, with real commands, stores and terminals."""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import pexpect
import pytest
from helpers import last_task, ok, one_error_line, require_module
from test_shells import shells, world  # noqa: F401 - fixtures

from qme.recorder import capture
from qme.recorder.capture import StreamCapture

# Three lines, 0.4 s apart, the middle one on stderr.
PACED = "printf '\\033[31mred\\033[0m one\\n'; sleep 0.4; echo two >&2; sleep 0.4; echo three"
TOLERANCE = 0.15  # seconds a time may be late on a busy machine
WORDS = (b"\x1b[31mred\x1b[0m one", b"two", b"three")


def timed(queue, task=None) -> list[tuple[float, str, bytes]]:
    return queue.timed_output(task)


def assert_paced(chunks, streams=("output", "error", "output")):
    """The three lines of PACED at about 0, 0.4 and 0.8 s."""
    lines = [(at, stream, data) for at, stream, data in chunks]
    joined = b"".join(data for _, _, data in lines)
    assert joined.replace(b"\r\n", b"\n") == b"\x1b[31mred\x1b[0m one\ntwo\nthree\n"
    starts = {}
    for at, stream, data in lines:
        for word in (b"one", b"two", b"three"):
            if word in data:
                starts[word] = (at, stream)
    assert [starts[w][1] for w in (b"one", b"two", b"three")] == list(streams)
    for word, expected in ((b"one", 0.0), (b"two", 0.4), (b"three", 0.8)):
        assert expected - 0.02 <= starts[word][0] <= expected + TOLERANCE, (word, starts)


# -- the index itself -------------------------------------------------------------------


def test_capture_keeps_one_time_per_chunk_not_per_read():
    cap = StreamCapture(0)
    for _ in range(1000):  # a fast writer: a thousand reads within one resolution
        cap.feed(b"x" * 100)
    time.sleep(0.05)
    cap.feed(b"later\n")
    cap.finish()
    times = cap.timing()
    assert len(times) <= 3 and times[0] == [0, times[0][1]] and times[-1][0] == 100_000
    assert times[-1][1] - times[0][1] >= 45


def test_capture_index_is_bounded_for_endless_output():
    cap = StreamCapture(0, resolution=0)  # every read its own entry, to reach the cap
    for n in range(5 * capture.MAX_TIMES):
        cap.feed(b"%d\n" % n)
        if n % 50 == 0:
            time.sleep(0.001)
    times = cap.timing()
    assert len(times) <= capture.MAX_TIMES
    assert [o for o, _ in times] == sorted({o for o, _ in times})  # offsets rise
    assert [t for _, t in times] == sorted(t for _, t in times)
    assert cap.resolution > 0


def test_capture_index_follows_the_head_and_tail_kept():
    cap = StreamCapture(100)  # 50 bytes of head, 50 of tail
    stored = cap.feed(b"a" * 40)
    time.sleep(0.03)
    stored += cap.feed(b"b" * 1000)  # the rest of the head, then the middle
    time.sleep(0.03)
    stored += cap.feed(b"c" * 30)  # in the tail
    stored += cap.finish()
    times = cap.timing()
    marker = stored.index(b"\r\n[qme:")
    assert marker == 50
    offsets = [o for o, _ in times]
    assert offsets[0] == 0 and 40 in offsets
    c_start = stored.index(b"c")
    assert c_start in offsets  # the tail's c's come with their own, later time
    assert dict(times)[c_start] > dict(times)[40] > dict(times)[0]
    assert all(0 <= o < len(stored) for o in offsets)


# -- recorded by every way of running ---------------------------------------------------


def test_qme_run_with_pipes_keeps_each_streams_times(qme, queue):
    ok(qme("run", "sh", "-c", PACED))
    task = queue.get(None)
    assert set(task.timing) == {"output", "error"}
    assert_paced(timed(queue))


def test_qme_run_on_a_terminal_keeps_the_times(qme_home, queue):
    child = pexpect.spawn(
        sys.executable, ["-m", "qme", "run", "sh", "-c", PACED], env=os.environ, timeout=20
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    task = last_task(qme_home)
    assert task.timing["output"]  # stderr kept apart too, as qme run keeps it
    assert_paced(timed(queue), streams=[s for s in ("output", "error", "output")])


def test_queue_run_keeps_the_times(queue):
    task = queue.run(["sh", "-c", PACED])
    assert_paced(timed(queue, task))
    assert queue.get(task.id).timing == task.timing


def test_a_huge_output_keeps_a_small_index(qme, queue):
    ok(qme("run", "sh", "-c", "head -c 30000000 /dev/zero; sleep 0.2; echo end"))
    task = queue.get(None)
    assert len(task.timing["output"]) <= capture.MAX_TIMES
    assert len(json.dumps(task.timing)) < 40_000
    assert timed(queue)[-1][2].endswith(b"end\n")


def test_session_commands_keep_their_times(world, shells):  # noqa: F811
    sh = world.session("bash")
    shells.append(sh)
    sid = sh.session_id()
    sh.run("echo one; sleep 0.5; echo two", "two")
    assert sh.exit() == 0
    (task,) = [t for t in world.tasks(sid) if t.command.startswith("echo one")]
    queue = world.queue()
    try:
        chunks = queue.timed_output(task.id)
    finally:
        queue.close()
    when = {w: at for at, _, data in chunks for w in (b"one", b"two") if w in data}
    assert when, (task.output, task.timing)
    assert when[b"one"] <= 0.2 and 0.45 <= when[b"two"] - when[b"one"] <= 0.5 + TOLERANCE


def test_a_store_from_before_timing_reads_none(tmp_path):
    from qme.store.sqlite import MIGRATIONS, SqliteStore

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:  # the schema before the timing column
        db.executescript(script)
    db.execute(
        "INSERT INTO tasks (id, executor, command, argv, cwd, user, host, started, status) "
        "VALUES ('shell-1', 'shell', 'echo', '[\"echo\"]', '/', 'ada', 'box', 1, 'complete')"
    )
    db.execute("PRAGMA user_version = 3")  # QueueMe's adoption (version 3) had nothing to do
    db.commit()
    db.close()
    store = SqliteStore(path)
    try:
        assert store.get("shell-1").timing is None
    finally:
        store.close()


# -- export -----------------------------------------------------------------------------


@pytest.fixture
def history(queue, tmp_path):
    """Four tasks in two directories: one failed, one not UTF-8, one with backticks."""
    here, there = tmp_path / "here", tmp_path / "the re"
    here.mkdir()
    there.mkdir()
    made = [
        queue.run(["sh", "-c", "echo first; echo oops >&2"], cwd=str(here)),
        queue.run(["sh", "-c", "echo '```` fenced'; exit 3"], cwd=str(there)),
        queue.run(["printf", "%s\\n", "caf\udce9", "it's"], cwd=str(there)),
        queue.run(["sh", "-c", PACED], cwd=str(here)),
    ]
    return made


def export(qme, *args) -> bytes:
    result = qme("export", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_sh_reproduces_the_commands_in_their_directories(qme, history, tmp_path):
    script = tmp_path / "again.sh"
    result = qme("export", "--as", "sh", "--since", "1h", "-o", str(script))
    assert result.returncode == 0 and b"exported 4 tasks" in result.stderr
    text = script.read_bytes()
    assert os.access(script, os.X_OK) and text.startswith(b"#!/usr/bin/env bash\n")
    assert b"# set -e" in text and b"\nset -e" not in text
    assert b"exit 3 (failed)" in text and text.count(b"\ncd ") == 3  # each change of directory
    rerun = subprocess.run(["bash", str(script)], capture_output=True, cwd="/")
    assert rerun.returncode == 0  # the failed command did not stop it
    assert rerun.stdout == (b"first\n```` fenced\ncaf\xe9\nit's\n\x1b[31mred\x1b[0m one\nthree\n")
    assert rerun.stderr == b"oops\ntwo\n"


def test_md_fences_hold_any_backticks_and_show_clean_output(qme, history):
    text = export(qme, "--as", "md", "--since", "1h").decode()
    assert text.startswith("# Commands recorded by qme")
    assert text.count("\n## ") == 4 and "exit 3 (failed)" in text
    assert "\x1b" not in text and "red one" in text
    block = re.search(r"\n(`{5,})text\n```` fenced\n\1\n", text)
    assert block, "the fence is longer than the output's backtick run"
    assert "first\noops\n" in text  # stdout and stderr as they came


def test_md_output_is_cut_to_the_documented_limit(qme, queue):
    queue.run(["seq", "1", "5000"])
    text = export(qme, "--as", "md").decode()
    assert "\n1\n" in text and "\n100\n" in text and "\n101\n" not in text
    assert "[qme: 4800 lines not shown]" in text and "\n4901\n" in text and "\n5000\n" in text


def test_ipynb_is_a_valid_notebook_with_the_recorded_output(qme, history):
    nbformat = require_module("nbformat", "pip install -e '.[test]'")
    notebook = nbformat.reads(export(qme, "--as", "ipynb", "--since", "1h").decode(), 4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) == 4
    assert code[0].source.startswith("%%bash\ncd ")
    assert code[0].outputs[0].name == "stdout" and code[0].outputs[0].text == "first\n"
    assert code[0].outputs[1].name == "stderr" and code[0].outputs[1].text == "oops\n"
    assert code[1].metadata["qme"]["returncode"] == 3
    assert "\x1b[31m" in code[3].outputs[0].text  # colours, which Jupyter shows


def test_cast_is_asciicast_v3_with_the_real_timing(qme, queue, history):
    lines = export(qme, "--as", "cast", history[-1].id, "--max-wait", "2").decode().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 3 and header["idle_time_limit"] == 2
    assert set(header["term"]) >= {"cols", "rows"} and header["timestamp"] == int(
        history[-1].started
    )
    events = [json.loads(line) for line in lines[1:]]
    for interval, code, data in events:
        assert isinstance(interval, (int, float)) and interval >= 0
        assert code in "oimrx" and isinstance(data, str)
    assert events[-1][1:] == ["x", "0"]
    clock, when = 0.0, {}
    for interval, code, data in events:
        clock += interval
        for word in ("one", "two", "three"):
            if code == "o" and word in data and "$ " not in data:
                when[word] = clock
    assert 0.38 <= when["two"] - when["one"] <= 0.4 + TOLERANCE
    assert 0.38 <= when["three"] - when["two"] <= 0.4 + TOLERANCE
    shown = "".join(data for _, code, data in events if code == "o")
    assert "two\r\n" in shown and not re.search(r"(?<!\r)\n", shown)  # as a terminal shows


def test_jsonl_stays_the_default_and_keeps_the_timing(qme, queue, history, tmp_path):
    whole = tmp_path / "all.jsonl"
    ok(qme("export", str(whole)))  # FILE as before
    picked = export(qme, "-o", "-", history[-1].id)
    assert len(picked.splitlines()) == 2  # the header and that task
    other = {"QME_HOME": str(tmp_path / "elsewhere")}
    result = qme("import", str(whole), env=other)
    assert result.returncode == 0, result.stderr
    from qme import Queue

    with Queue(config_dir=tmp_path / "elsewhere") as moved:
        assert moved.get(history[-1].id).timing == history[-1].timing
        assert_paced(moved.timed_output(history[-1].id))


def test_export_choices_and_errors(qme, history):
    assert b"exported 1 task" in qme("export", "--as", "sh").stderr  # the last task
    assert "not in a 'qme on' session" in one_error_line(qme("export", "--as", "md", "--session"))
    assert "takes one FILE" in one_error_line(qme("export", "a", "b"))
    assert "no task" in one_error_line(qme("export", "--as", "cast", "nosuchtask"))
    result = qme("export", "--as", "pdf")
    assert result.returncode == 2 and b"invalid choice" in result.stderr


def test_a_session_exports_as_a_script_of_its_shell(world, shells, qme):  # noqa: F811
    sh = world.session("bash")
    shells.append(sh)
    sid = sh.session_id()
    sh.run("cd /tmp && echo in-tmp", "in-tmp")
    sh.run("false")
    assert sh.exit() == 0
    text = export(qme, "--as", "sh", "--session", sid).decode()
    assert "\ncd /tmp && echo in-tmp\n" in text and "exit 1 (failed)" in text


# -- replay -----------------------------------------------------------------------------


def replay(qme_home, *args: str, script: str | None = None) -> pexpect.spawn:
    """`qme replay` on a pty of its own (inside a shell that notes stty before and
    after, when script is given)."""
    command = [sys.executable, "-m", "qme", "replay", *args]
    if script is None:
        return pexpect.spawn(command[0], command[1:], env=os.environ, timeout=20)
    line = " ".join(map(pexpect_quote, command))
    return pexpect.spawn("sh", ["-c", script.replace("REPLAY", line)], env=os.environ, timeout=20)


def pexpect_quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def test_replay_plays_at_the_recorded_speed_with_colours(qme_home, queue):
    task = queue.run(["sh", "-c", PACED])
    recorded = {w: at for at, _, data in queue.timed_output(task) for w in WORDS if w in data}
    child = replay(qme_home, task.id)
    shown = {}
    for word in WORDS:
        child.expect(re.escape(word))
        shown[word] = time.monotonic()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    for earlier, later in zip(WORDS, WORDS[1:]):
        gap = recorded[later] - recorded[earlier]
        assert gap - 0.1 <= shown[later] - shown[earlier] <= gap + TOLERANCE, (earlier, later)


def test_replay_speed_and_max_wait(qme_home, queue):
    task = queue.run(["sh", "-c", "echo a; sleep 1.5; echo b"])
    for args, low, high in (
        (["--speed", "3"], 0.4, 0.5 + TOLERANCE),
        (["--max-wait", "0.2"], 0.1, 0.2 + TOLERANCE),
    ):
        child = replay(qme_home, task.id, *args)
        child.expect(b"a\r\n")
        first = time.monotonic()
        child.expect(b"b\r\n")
        assert low <= time.monotonic() - first <= high, args
        child.expect(pexpect.EOF)
        child.close()


class Watched:
    """`qme replay TASK` in a shell on a pty that saves `stty -g` before and after."""

    def __init__(self, qme_home, task_id: str, tmp_path):
        self.before, self.after = tmp_path / "before", tmp_path / "after"
        script = f"trap : INT; stty -g > {self.before}; REPLAY; echo status=$?; "
        self.child = replay(qme_home, task_id, script=script + f"stty -g > {self.after}")
        self.child.logfile_read = self.log = io.BytesIO()

    def finish(self) -> bytes:
        """Wait for the end; what was shown. The terminal's modes must be as before."""
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert self.before.read_text() == self.after.read_text()  # echo, line editing
        return self.log.getvalue()


def test_q_stops_the_replay_and_the_terminal_is_restored(qme_home, queue, tmp_path):
    task = queue.run(["sh", "-c", "printf '\\033[?25l\\033[32mgreen'; sleep 5; echo never"])
    watched = Watched(qme_home, task.id, tmp_path)
    watched.child.expect(b"green")
    time.sleep(0.3)
    pressed = time.monotonic()
    watched.child.send(b"q")
    watched.child.expect(b"status=0")
    assert time.monotonic() - pressed < 1
    shown = watched.finish()
    assert b"never" not in shown and b"replay stopped" in shown
    assert shown.index(b"\x1b[?25h") > shown.index(b"green")  # the cursor shown again
    assert b"\x1b[0m" in shown[shown.index(b"green") :]  # and the colour reset


def test_replay_restores_the_terminal_after_ctrl_c(qme_home, queue, tmp_path):
    task = queue.run(["sh", "-c", "echo start; sleep 5; echo never"])
    watched = Watched(qme_home, task.id, tmp_path)
    watched.child.expect(b"start")
    watched.child.sendintr()
    watched.child.expect(b"status=")
    assert b"never" not in watched.finish()


def test_replay_without_a_terminal_writes_the_bytes(qme, queue):
    task = queue.run(["sh", "-c", PACED])
    result = qme("replay", task.id, "--speed", "10")
    assert result.returncode == 0
    assert result.stdout == b"\x1b[31mred\x1b[0m one\ntwo\nthree\n"  # both streams, in order
