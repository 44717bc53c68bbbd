"""What users expect from a CLI of this kind, run in-process against a real SQLite
store: NO_COLOR and FORCE_COLOR, table widths for CJK and emoji, --format
templates on ls and search, and qme doctor."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import ok, one_error_line
from test_cli_inprocess import run_main

from qme import Queue
from qme.cli.env import USAGE
from qme.cli.render import shown_width

ESCAPE = "\x1b["
WIDE = "echo 漢字テスト 🎉"


@pytest.fixture
def qme():
    return run_main


@pytest.fixture
def tasks(qme_home, tmp_path):
    with Queue(config_dir=qme_home) as queue:
        first = queue.run(["echo", "plain"], cwd=str(tmp_path))
        wide = queue.run(WIDE, cwd=str(tmp_path))
        failed = queue.run(["sh", "-c", "exit 3"], message="a note")
    return first, wide, failed


def test_statuses_are_coloured_on_a_terminal_unless_no_color(qme, tasks):
    shown = ok(qme("ls", tty=True))
    assert "\x1b[32mcomplete" in shown and "\x1b[31mfailed" in shown
    assert ESCAPE not in ok(qme("ls", tty=True, env={"NO_COLOR": "1"}))
    assert ESCAPE not in ok(qme("ls"))  # a pipe
    forced = ok(qme("ls", env={"FORCE_COLOR": "1"}))
    assert "\x1b[31mfailed" in forced
    assert ESCAPE not in ok(qme("ls", env={"FORCE_COLOR": "1", "NO_COLOR": "1"}))
    # search and exec decide the same way
    assert ESCAPE in ok(qme("search", "plain", tty=True))
    assert ESCAPE not in ok(qme("search", "plain", tty=True, env={"NO_COLOR": "1"}))
    assert ESCAPE in ok(qme("search", "plain", env={"FORCE_COLOR": "1"}))
    assert ESCAPE in ok(qme("exec", "slurm", env={"FORCE_COLOR": "1"}))  # its table's header
    assert ESCAPE not in ok(qme("exec", "slurm", tty=True, env={"NO_COLOR": "1"}))


def test_table_columns_line_up_with_cjk_and_emoji(qme, tasks):
    lines = ok(qme("ls")).splitlines()
    header, rows = lines[0], lines[1:]
    assert any("漢字テスト 🎉" in row for row in rows)
    # every row's COMMAND column starts at the same terminal column as its header
    start = header.index("COMMAND")
    for row, task in zip(rows, tasks):
        assert shown_width(row[: row.index(task.command[:4])]) == start, row
    # on a narrow terminal the command is cut to the columns left, not to characters
    narrow = ok(qme("ls", tty=True, env={"NO_COLOR": "1", "COLUMNS": str(start + 8)}))
    cut = next(line for line in narrow.splitlines() if "漢" in line)
    assert cut.endswith("…") and shown_width(cut) <= start + 8


def test_cjk_widths_in_a_wide_cwd_column(qme, qme_home, tmp_path):
    where = tmp_path / "データ"
    where.mkdir()
    with Queue(config_dir=qme_home) as queue:
        queue.run(["true"], cwd=str(where))
        queue.run(["true"], cwd=str(tmp_path))
    lines = ok(qme("ls")).splitlines()
    starts = {shown_width(line[: line.rindex("true")]) for line in lines[1:]}
    assert len(starts) == 1 and shown_width(lines[0][: lines[0].index("COMMAND")]) in starts


def test_format_templates_on_ls_and_search(qme, tasks):
    first, wide, failed = tasks
    template = "{exit}|{status}|{command}|{directory}|{host}|{user}|{id}|{session}|{duration}"
    lines = ok(qme("ls", "--format", template)).splitlines()
    assert len(lines) == 3
    exit_, status, command, directory, host, user, task_id, session, duration = lines[2].split("|")
    assert (exit_, status, command, task_id) == ("3", "failed", "sh -c 'exit 3'", failed.id)
    assert (directory, host, user, session) == (failed.cwd, failed.host, failed.user, "")
    assert duration.endswith("ms") or duration.endswith("s")
    assert lines[1].split("|")[2] == WIDE
    # {time}: local time; \t a tab; {{ }} braces; newest first with -r
    shown = ok(qme("ls", "-r", "--format", r"{time}\t{{{short_id}}}")).splitlines()
    assert shown[0].endswith(f"\t{{{failed.short_id}}}")
    assert len(shown[0].split("\t")[0]) == len("2026-11-24 09:30:01")
    # search: one line per hit, newest first
    assert ok(qme("search", "plain", "--format", "{id} {exit}")) == f"{first.id} 0\n"
    assert qme("search", "nothinglikethis", "--format", "{id}").returncode == 1
    # QueueMe's format still works
    assert ok(qme("ls", "--format", "queueme")).splitlines()[0] == f"1  {first.id}\techo plain"


@pytest.mark.parametrize("command", ["ls", "search"])
def test_an_unknown_placeholder_is_one_line_and_exit_2(qme, tasks, command):
    argv = [command, "plain"] if command == "search" else [command]
    line = one_error_line(qme(*argv, "--format", "{command} {nope}"), code=USAGE)
    assert line.startswith("qme: error: unknown placeholder {nope} in --format (placeholders: ")
    assert "{command}" in line and "{exit}" in line
    line = one_error_line(qme(*argv, "--format", "xml"), code=USAGE)
    assert "unknown format 'xml'" in line
    assert "{" in one_error_line(qme(*argv, "--format", "{command"), code=USAGE)


def test_doctor_tells_what_a_bug_report_needs(qme, qme_home, tasks):
    (qme_home / "config.ini").write_text(
        "[DEFAULT]\nmax_output = 2M\ndatabase_string = qme.db\nbogus = 1\n"
    )
    report = json.loads(ok(qme("doctor", "--json", env={"QME_HOOKS": "bash 1"})))
    assert report["python"].endswith(
        ".".join(map(str, sys.version_info[:2])) + "." + str(sys.version_info[2])
    )
    assert report["installed_at"].endswith("qme")
    store = report["store"]
    assert store["kind"] == "sqlite" and store["opens"] is True
    assert (store["tasks"], store["running"], store["failed"]) == (3, 0, 1)
    assert isinstance(store["schema"], int) and store["schema"] >= 1
    assert report["spool"] == {"waiting": 0, "for_this_store": 0}
    assert report["shell"]["hooks_loaded"] == "bash"
    assert {"shell", "slurm"} <= set(report["executors"])
    assert report["settings"]["max_output"]["value"] == "2M"
    assert report["settings"]["max_output"]["source"].startswith("config file")
    assert any("bogus" in problem for problem in report["setting_problems"])
    text = ok(qme("doctor"))
    for expected in ("qme:", "python:", "store:", "opens: yes", "3 tasks", "spool:", "hooks"):
        assert expected in text
    assert "max_output" in text and "bogus" in text


def test_doctor_hides_a_password_and_tells_a_store_that_does_not_open(qme, qme_home):
    env = {
        "QME_DATABASE": "postgresql",
        "QME_DATABASE_STRING": "ada:s3cret-pw@127.0.0.1:1/nowhere",
    }
    result = qme("doctor", "--json", env=env)
    assert "s3cret-pw" not in result.stdout.decode() + result.stderr.decode()
    report = json.loads(ok(result))
    assert report["store"]["opens"] is False and report["store"]["error"]
    text = qme("doctor", env=env)
    assert "s3cret-pw" not in text.stdout.decode() and "opens: NO" in text.stdout.decode()


def test_doctor_through_the_shell_function_says_the_hooks_are_loaded(tmp_path):
    """The hooks' `qme` function tells qme doctor which shell loaded them."""
    init = subprocess.run(
        [sys.executable, "-m", "qme", "init", "bash", "--no-completion"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qme").write_text(f'#!/bin/sh\nexec {sys.executable} -m qme "$@"\n')
    (bin_dir / "qme").chmod(0o755)
    script = tmp_path / "init.bash"
    script.write_text(init)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "--norc", "-i", "-c", f"source {script}; qme doctor --json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert json.loads(result.stdout)["shell"]["hooks_loaded"] == "bash", result.stderr
