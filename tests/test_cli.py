"""The CLI commands other than the recording itself, through the real `qme` program."""

from __future__ import annotations

import json
import os
import sys

import pexpect
import pytest
from helpers import ok, one_error_line

from qme.cli.parser import COMMANDS


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


def test_every_command_has_help(qme):
    assert "usage: qme" in ok(qme("--help"))
    for name in COMMANDS:
        assert f"usage: qme {name}" in ok(qme(name, "--help"))


def test_version(qme):
    assert ok(qme("--version")).startswith("qme ")


def test_get_last_by_prefix_and_streams(qme, three):
    last = json.loads(ok(qme("get")))
    assert last["id"] == three[2] and last["output"] == "gamma\n"
    by_uuid = json.loads(ok(qme("get", three[1].split("-", 1)[1][:6])))
    assert by_uuid["id"] == three[1]
    assert by_uuid["message"] == "deploy notes"
    assert (by_uuid["returncode"], by_uuid["status"]) == (4, "failed")
    assert by_uuid["error"] == "oops\n"
    for key in ("cwd", "user", "host", "pid", "started", "ended", "duration", "argv"):
        assert by_uuid[key] is not None
    assert qme("get", three[1][:12], "--output").stdout == b"beta\n"
    assert qme("get", three[1], "--error").stdout == b"oops\n"


def test_get_errors(qme, three, tmp_path):
    assert "no task matches 'ffffffff'" in one_error_line(qme("get", "ffffffff"))
    assert "matches several tasks" in one_error_line(qme("get", "shell"))
    assert "no tasks yet" in one_error_line(qme("--config_dir", str(tmp_path / "empty"), "get"))


def test_ls_table_and_filters(qme, three, tmp_path):
    table = ok(qme("ls")).splitlines()
    assert table[0].split() == ["ID", "STATUS", "EXIT", "TIME", "STARTED", "CWD", "COMMAND"]
    assert "echo alpha" in table[1] and "echo gamma" in table[3]  # newest last
    assert "echo gamma" in ok(qme("ls", "--reverse")).splitlines()[1]
    assert "failed" in ok(qme("ls", "--status", "failed"))
    assert len(ok(qme("ls", "--limit", "1")).splitlines()) == 2
    here = json.loads(ok(qme("ls", "--here", "--json", cwd=tmp_path / "sub")))
    assert [t["id"] for t in here] == [three[2]]
    assert json.loads(ok(qme("ls", "--since", "1h", "--json")))
    assert json.loads(ok(qme("ls", "--until", "1h", "--json"))) == []
    assert len(json.loads(ok(qme("ls", "shell", "--json")))) == 3
    assert "unknown executor 'nosuch'" in one_error_line(qme("ls", "nosuch"))
    assert qme("ls", "--since", "yesterdayish").returncode == 2


def test_search(qme, three):
    out = ok(qme("search", "OOPS"))
    assert three[1].split("-", 1)[1][:8] in out and "error: oops" in out
    hits = json.loads(ok(qme("search", "deploy", "--json")))
    assert [h["id"] for h in hits] == [three[1]]
    assert hits[0]["match"] == {"field": "message", "line": "deploy notes"}
    assert qme("search", "absentword").returncode == 1
    assert "nothing to search for" in one_error_line(qme("search", "--", "--"))
    assert json.loads(ok(qme("search", "--rank", "echo", "--json")))


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


def test_config_show_set_and_errors(qme, qme_home):
    shown = json.loads(ok(qme("config", "--json")))
    assert shown["store"]["kind"] == "sqlite"
    assert shown["settings"]["database"] == {"value": "sqlite", "source": "default"}
    ok(qme("config", "--database", "filesystem"))
    assert json.loads(ok(qme("config", "--json")))["store"]["kind"] == "filesystem"
    assert oct((qme_home / "config.ini").stat().st_mode & 0o777) == "0o600"
    env = {"QME_DATABASE": "sqlite"}
    source = json.loads(ok(qme("config", "--json", env=env)))["settings"]["database"]["source"]
    assert source == "environment (QME_DATABASE)"
    ok(qme("config", "--set", "max_output", "1M"))
    assert "max_output = 1M" in (qme_home / "config.ini").read_text()
    ok(qme("config", "--unset", "max_output"))
    assert "max_output" not in (qme_home / "config.ini").read_text()
    assert "unknown setting 'colour'" in one_error_line(qme("config", "--set", "colour", "x"))
    assert "has no setting 'foo'" in one_error_line(qme("config", "--set", "shell", "foo", "1"))
    assert "unknown executor" in one_error_line(qme("config", "--set", "nosuch", "k", "v"))
    assert "not a size" in one_error_line(qme("config", "--set", "max_output", "lots"))
    assert "unknown database" in one_error_line(qme("config", "--database", "oracle"))


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


def test_broken_config_and_store_are_one_line_errors(qme, qme_home):
    qme_home.mkdir(parents=True)
    (qme_home / "config.ini").write_text("[DEFAULT\nthis is not ini")
    assert "cannot read" in one_error_line(qme("ls"))
    (qme_home / "config.ini").unlink()
    (qme_home / "qme.db").write_bytes(b"this is not a database" * 100)
    assert "qme.db" in one_error_line(qme("ls"))
    assert "not a database" in one_error_line(qme("ls"))


def test_debug_shows_the_traceback(qme):
    result = qme("--debug", "get", "ffffffff")
    assert result.returncode != 0 and b"Traceback" in result.stderr


def test_generate_key(qme):
    keys = {ok(qme("generate-key")).strip() for _ in range(2)}
    assert len(keys) == 2 and all(len(k) >= 40 for k in keys)


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
