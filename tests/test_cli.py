"""The CLI commands other than the recording itself, through the real `qme` program:
those that run commands, ask on the terminal or are about processes. The commands
that only read (and config) run in-process in tests/test_cli_inprocess.py."""

from __future__ import annotations

import io
import json
import os
import sys

import pexpect
import pytest
from helpers import ok, one_error_line


@pytest.fixture
def three(qme, tmp_path):
    """Three recorded tasks: ids oldest to newest."""
    ok(qme("run", "echo", "alpha"))
    assert (
        qme(
            "-m", "deploy notes", "run", "sh", "-c", "echo beta; echo spoo | rev >&2; exit 4"
        ).returncode
        == 4
    )
    (tmp_path / "sub").mkdir()
    ok(qme("run", "echo", "gamma", cwd=tmp_path / "sub"))
    tasks = json.loads(ok(qme("ls", "--json")))
    return [t["id"] for t in reversed(tasks)]


def test_rerun_makes_a_linked_task(qme, three, tmp_path):
    result = qme("rerun", three[1], "-m", "again")
    assert result.returncode == 4  # the command's own exit code
    assert result.stdout == b"beta\n"
    new = json.loads(ok(qme("get")))
    assert new["rerun_of"] == three[1] and new["message"] == "again"
    assert new["id"] != three[1]
    assert json.loads(ok(qme("get", three[1])))["status"] == "failed"  # old one untouched
    assert len(json.loads(ok(qme("ls", "--json")))) == 4


def test_rerun_in_its_directory_or_here(qme, three, tmp_path):
    ok(qme("run", "pwd", cwd=tmp_path / "sub"))
    assert qme("rerun").stdout.decode().strip() == str(tmp_path / "sub")
    os.rmdir(tmp_path / "sub")
    assert "no longer exists" in one_error_line(qme("rerun"))
    assert qme("rerun", "--here", cwd=tmp_path).stdout.decode().strip() == str(tmp_path)


def test_clear_needs_yes_or_force(qme, three):
    assert "no terminal to confirm" in one_error_line(qme("clear", three[0]))
    assert "say what to clear" in one_error_line(qme("clear"))
    assert len(json.loads(ok(qme("ls", "--json")))) == 3
    ok(qme("clear", three[0], "--force"))
    assert len(json.loads(ok(qme("ls", "--json")))) == 2
    ok(qme("clear", "shell", "--force"))
    assert json.loads(ok(qme("ls", "--json"))) == []


def test_clear_force_without_target_clears_everything(qme, three):
    ok(qme("clear", "--force"))
    assert json.loads(ok(qme("ls", "--json"))) == []


def test_clear_asks_on_the_terminal(qme_home, three):
    def clear(answer: str) -> int:
        child = pexpect.spawn(sys.executable, ["-m", "qme", "clear", "--all"], env=os.environ)
        child.expect(r"Delete every task\? \[y/N\] ")
        child.sendline(answer)
        child.expect(pexpect.EOF)
        child.close()
        return child.exitstatus

    assert clear("n") == 1
    from qme import Queue

    assert len(Queue(config_dir=qme_home).list()) == 3
    assert clear("y") == 0
    assert Queue(config_dir=qme_home).list() == []


def test_sqlite_file_in_config(qme, qme_home):
    ok(qme("config", "--database", "sqlite://other.db"))
    ok(qme("run", "true"))
    assert (qme_home / "other.db").exists() and not (qme_home / "qme.db").exists()


def test_filesystem_store_keeps_queuemes_layout(qme, qme_home):
    env = {"QME_DATABASE": "filesystem"}
    ok(qme("run", "echo", "files", env=env))
    task_id = json.loads(ok(qme("get", env=env)))["id"]
    path = qme_home / "database" / "shell" / f"{task_id}.json"
    assert json.loads(path.read_text())["output"] == "files\n"
    assert ok(qme("search", "files", "--json", env=env))


def test_debug_shows_the_traceback(qme):
    result = qme("--debug", "get", "ffffffff")
    assert result.returncode != 0 and b"Traceback" in result.stderr


def test_shell_has_a_queue_ready(qme):
    result = qme("shell", input=b"print('store', queue.database)\n", env={"QME_SHELL": "python"})
    assert b"store sqlite" in result.stdout
    assert "QME_SHELL must be one of" in one_error_line(qme("shell", env={"QME_SHELL": "fish"}))


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "ls", "-la"],
        ["run", "--", "ls", "--help"],
        ["-m", "note", "run", "-v", "--executor", "shell", "echo", "-m", "x"],
        ["--config_dir", "/tmp/x", "--debug", "--log_level", "info", "run", "--message=hi", "true"],
        ["--database=filesystem", "run", "sh", "-c", "exit 3"],
    ],
)
def test_fast_run_parser_agrees_with_argparse(argv):
    from qme.cli.parser import build_parser
    from qme.cli.run import parse_fast

    fast = vars(parse_fast(argv))
    slow = vars(build_parser().parse_args(argv))
    fast["cmd"] = fast["cmd"][1:] if fast["cmd"][:1] == ["--"] else fast["cmd"]
    slow["cmd"] = slow["cmd"][1:] if slow["cmd"][:1] == ["--"] else slow["cmd"]
    assert fast == slow


@pytest.mark.parametrize("argv", [["run"], ["run", "--help"], ["run", "--nosuch", "x"], ["ls"]])
def test_fast_run_parser_leaves_the_rest_to_argparse(argv):
    from qme.cli.run import parse_fast

    assert parse_fast(argv) is None


def test_cancel_stops_a_running_task_and_refuses_others(qme, qme_home, queue):
    """qme cancel: SIGTERM to the running command (as the dashboard's Cancel), the
    task ends cancelled and `qme run` exits 143; a finished task or one on another
    machine is one error line."""
    from helpers import last_task, start_run, wait_for

    def running_task():
        return next(iter(queue.list(status="running")), None)

    running = start_run("sleep", "30")
    task = wait_for(running_task, what="the task running")
    result = qme("cancel", task.short_id, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["done"].startswith(f"sent SIGTERM to task {task.short_id}")
    assert running.wait(timeout=10) == 143
    assert wait_for(lambda: last_task(qme_home).status == "cancelled", what="cancelled")
    assert "is not running (it is cancelled)" in one_error_line(qme("cancel", "--last"))

    exported = io.StringIO()
    queue.export(exported)
    header, record = exported.getvalue().splitlines()
    elsewhere = {**json.loads(record), "host": "login7", "status": "running", "pid": 4242}
    elsewhere["id"] = f"shell-{'0' * 8}-0000-4000-8000-000000000000"
    queue.import_from([header, json.dumps(elsewhere)])
    error = one_error_line(qme("cancel", elsewhere["id"]))
    assert "runs on login7, not on this machine" in error and "kill 4242" in error
