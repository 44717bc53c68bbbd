"""The full-screen history search (qme history, Ctrl-R with `qme init SHELL --ctrl-r`,
the pickers' search), driven on real terminals with pexpect: type a query, see the
matches and the preview, toggle filters, and Enter puts the command on a real bash,
zsh or fish prompt line without running it."""

from __future__ import annotations

import os
import subprocess
import sys

import pexpect
import pytest
from helpers import require_program
from test_shells import PLAIN, PROMPT_RE, SET_PROMPT, Shell, World

from qme import Queue
from qme.cli.finder import Scope, find, terms

ENTER = "\r"
ESCAPE = "\x1b"
CTRL_R = "\x12"
ALT_F = "\x1bf"
ALT_D = "\x1bd"


@pytest.fixture
def history(qme_home, tmp_path) -> dict:
    """Tasks in two directories, one of them failed, and many older ones: more than
    the pickers' 200 newest."""
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    queue = Queue(config_dir=qme_home)
    try:
        old = queue.run(["echo", "ancient-zebra-output"], cwd=str(there))
        for i in range(210):
            queue.run(["true", f"filler{i}"], cwd=str(there))
        ids = {
            "old": old.id,
            "deploy": queue.run("echo deploying-site-now", cwd=str(here)).id,
            "broken": queue.run("sh -c 'echo deploy-broken; exit 3'", cwd=str(here)).id,
            "elsewhere": queue.run("echo deploy-elsewhere", cwd=str(there)).id,
        }
    finally:
        queue.close()
    return {"here": here, "there": there, **ids}


def spawn(*args: str, cwd=None) -> pexpect.spawn:
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qme", *args],
        env=env,
        cwd=str(cwd) if cwd else None,
        dimensions=(30, 120),
        timeout=15,
    )
    child.delaybeforesend = None
    return child


def test_terms_search_the_word_being_typed_as_a_start():
    assert terms("make te") == ["make"]  # two letters: left out until a third or a space
    assert terms("make tes") == ["make", "tes*"]
    assert terms("make te ") == ["make", "te"]
    assert terms("") == []


def test_find_reaches_past_the_200_newest_and_filters(queue, history):
    scope = Scope(cwd=str(history["here"]), session="", host=os.uname().nodename)
    assert [f.task.id for f in find(queue, "zebra", set(), scope)] == [history["old"]]
    deploys = [f.task.id for f in find(queue, "deplo", set(), scope)]
    assert deploys == [history["elsewhere"], history["broken"], history["deploy"]]
    here = [f.task.id for f in find(queue, "deplo", {"directory"}, scope)]
    assert here == [history["broken"], history["deploy"]]
    assert [f.task.id for f in find(queue, "deplo", {"failed"}, scope)] == [history["broken"]]
    assert len(find(queue, "", {"directory"}, scope)) == 2


def test_history_types_sees_previews_toggles_and_prints_the_choice(history):
    child = spawn("history", cwd=history["here"])
    child.expect_exact("Search the history")
    child.expect_exact("found in")
    child.send("zebr")
    child.expect_exact("ancient-zebra-output")  # found by its output, 214 tasks back
    child.send("\x7f" * 4 + "deploy")
    child.expect_exact("deploy-elsewhere")
    # The screen is redrawn by differences: what is checked is text that appears anew.
    child.send(ALT_D)  # this directory only: the newest here is selected, and previewed
    child.expect_exact("exit 3")
    # And failed only: the broken one alone, Down stays on it (keys are handled in
    # order, each filter's search within its key).
    child.send(ALT_F)
    child.send("\x1b[B")
    child.send(ENTER)
    child.expect_exact("sh -c 'echo deploy-broken; exit 3'")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_history_escape_prints_nothing(history):
    child = spawn("history", "--query", "deploy")
    child.expect_exact("deploy-elsewhere")
    child.send(ESCAPE)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert b"$ echo" not in child.before.split(b"\x1b[?1049l")[-1]


def test_history_without_a_terminal_says_so_in_one_line(qme_home):
    """No controlling terminal and no terminal on stdin/stdout (a cron job, a pipe):
    one line, no traceback, no prompt_toolkit warning."""
    with Queue(config_dir=qme_home) as queue:
        queue.run(["true"])
    done = subprocess.run(
        [sys.executable, "-m", "qme", "history"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot open
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("qme: error: the search screen needs a terminal")
    assert done.stderr.count("\n") == 1


BIND = {
    "bash": 'eval "$(qme init bash --ctrl-r --no-completion)"',
    "zsh": 'eval "$(qme init zsh --ctrl-r --no-completion)"',
    "fish": "qme init fish --ctrl-r --no-completion | source",
}


@pytest.mark.parametrize("kind", ["bash", "zsh", "fish"])
def test_ctrl_r_puts_the_command_on_the_prompt_line_without_running_it(tmp_path, qme_home, kind):
    require_program(kind)
    queue = Queue(config_dir=qme_home)
    queue.run("printf 'picked-%s\\n' 42")
    queue.run("echo other-line")
    count = len(queue.list())
    queue.close()
    world = World(tmp_path, qme_home)
    world.write_rc(kind)
    env = {**world.env, "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "100"}
    sh = Shell([require_program(kind), *PLAIN[kind]], env, world.home, wait=False)
    try:
        sh.run(SET_PROMPT[kind])
        sh.run(BIND[kind])
        sh.child.send(CTRL_R)
        sh.child.expect_exact("Search the history", timeout=15)
        sh.child.send("picked")
        sh.child.expect_exact("picked-%s", timeout=15)  # the list redrawn
        sh.child.send(ENTER)
        sh.child.expect(PROMPT_RE)  # the prompt again, the command on its line
        sh.child.expect_exact("printf 'picked-%s\\n' 42")
        sh.child.expect(pexpect.TIMEOUT, timeout=0.5)
        assert b"picked-42" not in sh.child.before  # not run
        queue = Queue(config_dir=qme_home)
        assert len(queue.list()) == count
        queue.close()
        sh.child.send(ENTER)  # now it runs, as typed
        sh.child.expect_exact("picked-42")
        sh.wait()
    finally:
        sh.close()


def test_the_rerun_picker_searches_past_the_200_newest(qme_home, history):
    child = spawn("rerun", "-m", "found")
    child.expect_exact("Rerun which task?")
    child.send("zebra")
    child.expect_exact("ancient-zebra-output")
    child.send(ENTER)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    queue = Queue(config_dir=qme_home)
    try:
        assert queue.get(streams=False).rerun_of == history["old"]
    finally:
        queue.close()


def test_a_store_from_before_word_starts_were_indexed_finds_them(tmp_path):
    """A store made before the search index kept the starts of words is rebuilt
    once when opened: typing 'mak' then finds the make tasks, newest first, and
    whole words are found as before."""
    import sqlite3
    import time

    from qme.store import sqlite as sqlite_store
    from qme.task import Task

    path = tmp_path / "qme.db"
    before = next(
        i
        for i, step in enumerate(sqlite_store.MIGRATIONS)
        if callable(step) and "_index_prefixes" in step.__code__.co_names
    )
    db = sqlite3.connect(path, isolation_level=None)
    for step in sqlite_store.MIGRATIONS[:before]:
        step(db) if callable(step) else db.executescript(step)
    db.execute(f"PRAGMA user_version = {before}")
    now = time.time()
    for age, command in enumerate(["make test", "git push", "make all", "echo maker"]):
        task = Task(
            id=f"shell-{age}",
            executor="shell",
            command=command,
            argv=command.split(),
            cwd="/tmp",
            user="ada",
            host="box",
            started=now - age,
        )
        sqlite_store._insert(db, task, streams=False)
    db.close()
    with Queue(config_dir=tmp_path) as queue:
        scope = Scope(cwd="/tmp", session="", host="box")
        found = [f.task.command for f in find(queue, "mak", set(), scope)]
        assert found == ["make test", "make all", "echo maker"]
        assert [f.task.command for f in find(queue, "push ", set(), scope)] == ["git push"]
        assert queue.store.schema_version() == len(sqlite_store.MIGRATIONS)
