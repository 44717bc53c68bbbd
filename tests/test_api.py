"""The Python API that the CLI and the dashboard are built on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import last_task

from qme.errors import AmbiguousTask, NoSuchTask, QmeError


def test_queueme_style_session(queue, capfd):
    task = queue.run("echo hi")
    assert capfd.readouterr().out == "hi\n"  # the command's output is passed through
    assert task.status == "complete" and task.returncode == 0
    record = task.load()
    assert record["output"] == "hi\n" and record["command"] == "echo hi"
    assert queue.get().id == task.id
    assert [t.id for t in queue.list()] == [task.id]
    assert queue.search("hi")[0].task.id == task.id
    again = queue.rerun(task.id, message="second")
    assert again.rerun_of == task.id and again.message == "second"
    assert queue.clear(task.id) == 1
    assert [t.id for t in queue.list()] == [again.id]


def test_queueme_import_path_and_database_name(qme_home):
    """QueueMe's path keeps QueueMe's default store; qme's own is SQLite (tests/test_queueme.py)."""
    from qme.main import Queue

    assert Queue(config_dir=qme_home / "qm").database == "filesystem"
    assert Queue(config_dir=qme_home / "qm", database="sqlite").database == "sqlite"


def test_argv_list_runs_without_a_shell(queue, tmp_path):
    odd = tmp_path / "a file; with $pecial chars"
    odd.write_text("content\n")
    task = queue.run(["cat", str(odd)], message="note")
    assert task.load()["output"] == "content\n"
    assert task.argv == ["cat", str(odd)] and task.message == "note"


def test_shell_line_runs_through_the_users_shell(queue, monkeypatch):
    monkeypatch.setenv("SHELL", "/bin/bash")
    task = queue.run("echo {1..3} | tr ' ' +")
    assert task.argv[:2] == ["/bin/bash", "-c"]
    assert task.load()["output"] == "1+2+3\n"


def test_metadata(queue, tmp_path):
    task = queue.run(["sh", "-c", "exit 5"], cwd=str(tmp_path))
    got = queue.get(task.id)
    assert (got.status, got.returncode, got.cwd) == ("failed", 5, str(tmp_path))
    assert got.user and got.host and got.pid
    assert got.ended > got.started and got.duration < 5
    assert got.max_rss > 0 and got.cpu_user is not None
    assert got.id.startswith("shell-") and len(got.uuid) == 36


def test_prefix_lookup(queue):
    a, b = queue.run("true"), queue.run("true")
    assert queue.get(a.uuid[:8]).id == a.id
    assert queue.get(b.id[:14]).id == b.id
    with pytest.raises(AmbiguousTask):
        queue.get("shell-")
    with pytest.raises(NoSuchTask):
        queue.get("no such id!")


def test_errors_are_qme_errors(queue):
    with pytest.raises(QmeError, match="no tasks yet"):
        queue.get()
    with pytest.raises(QmeError, match="no command"):
        queue.run([])
    with pytest.raises(QmeError, match="unknown executor"):
        queue.run("true", executor="nosuch")


def test_search_newest_first_or_ranked(queue):
    few = queue.run(["echo", "needle"])
    many = queue.run(["echo", "needle needle needle"])
    assert [h.task.id for h in queue.search("NEEDLE")] == [many.id, few.id]
    assert queue.search("needle", rank=True)[0].task.id == many.id
    with pytest.raises(QmeError, match="nothing to search"):
        queue.search("--")


def test_hot_path_imports_only_the_standard_library(qme_home):
    code = (
        "import sys; before = set(sys.modules); from qme.cli import main; main(['run', 'true']);"
        "after = sorted(set(sys.modules) - before); import json; print(json.dumps(after))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True
    )
    top = {name.split(".")[0] for name in json.loads(result.stdout)}
    outside = sorted(top - set(sys.stdlib_module_names) - {"qme", "__main__"})
    assert outside == [], f"qme run imported {outside}"
    # The store, its thread and the executor registry are the writer child's work
    # (qme/recorder/handoff.py); these cost the command's start-up milliseconds.
    heavy = {"sqlite3", "threading", "json", "re", "enum", "collections", "argparse", "typing"}
    heavy.add("termios")  # for terminals only (stdio are pipes here)
    assert sorted(top & heavy) == [], f"qme run imported {sorted(top & heavy)}"
    assert last_task(qme_home).status == "complete"  # written by the child, waited for


@pytest.mark.parametrize("database", ["sqlite", "filesystem"])
def test_sqlite_and_files_never_import_sqlalchemy_or_drivers(qme_home, database):
    code = (
        "import sys; from qme.cli import main; main(['run', 'echo', 'hi']); main(['ls']);"
        "main(['search', 'hi']); main(['get', '--last']); main(['config']);"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'psycopg', "
        "'pymysql'}))"
    )
    env = {**os.environ, "QME_DATABASE": database}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert "hi" in result.stdout  # the commands ran
    assert result.stdout.splitlines()[-1] == "[]"


def test_an_open_queue_reads_a_run_that_just_ended_as_it_ended(queue, qme):
    # `qme run` leaves the last write to its writer child; a reader must not take
    # the task for running, nor for lost (its recorder has exited).
    queue.list()
    for code in range(1, 8):
        assert qme("run", "sh", "-c", f"exit {code}").returncode == code
        task = queue.get()
        assert (task.status, task.returncode) == ("failed", code)


def test_queueme_run_captures_without_showing(qme_home):
    """QueueMe's run() kept a command's output out of sight; qme.main's does too,
    and the record still has every byte."""
    code = (
        "import sys; from qme.main import Queue; q = Queue(config_dir=sys.argv[1]); "
        "t = q.run('sh -c \"echo out-$((6*7)); echo err-$((6*7)) >&2\"'); q.rerun(t.taskid); "
        "print(q.get(t.taskid).load()['data']['output'], file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(qme_home)], capture_output=True, text=True, check=True
    )
    assert "42" not in done.stdout
    assert done.stderr.strip().endswith("['out-42\\n']"), done.stderr


@pytest.mark.slow
def test_writer_processes_forked_by_a_queue_that_has_read_keep_every_record(qme_home):
    """A queue that has read the store (its SQLite connection open) and then runs
    commands with writer_process (what `qme rerun` does): each writer child is
    forked from it, and must not inherit that connection, whose lock state would
    let the children's writes overwrite each other (with the CPUs busy, 5 of 10
    records were lost)."""
    from qme import Queue

    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        with Queue(config_dir=qme_home) as queue:
            first = queue.run(["true", "first"])
            for n in range(10):
                queue.get(first.id)  # the store is open when the next one forks
                queue.run(["true", str(n)], writer_process=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    with Queue(config_dir=qme_home) as queue:
        assert sorted(t.command for t in queue.list()) == sorted(
            ["true first", *(f"true {n}" for n in range(10))]
        )
