"""The read-only commands (and config), run in this process through
`main(argv, env)` with an Environment of StringIO streams, against a real SQLite
store in the test's QME_HOME. Here the `qme` fixture runs main(), not the program,
and answers like subprocess.run, so helpers.ok and one_error_line apply as they do
to the subprocess tests (tests/test_cli.py), which keep what is about processes
and terminals: run, rerun, clear's question, sessions."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from helpers import ok, one_error_line

from qme import Queue
from qme.cli import main
from qme.cli.env import ERROR, INTERRUPTED, OK, USAGE, Environment
from qme.cli.parser import COMMANDS

ESCAPE = "\x1b["


def environment(stdin: str = "", tty: bool = False) -> Environment:
    """StringIO streams (stdout with a byte buffer under it, as `get --output`
    writes bytes), each said to be a terminal or not."""
    return Environment(
        io.StringIO(stdin),
        io.TextIOWrapper(io.BytesIO(), encoding="utf-8"),
        io.StringIO(),
        stdin_isatty=tty,
        stdout_isatty=tty,
        stderr_isatty=tty,
    )


def run_main(*argv: str, stdin: str = "", tty: bool = False, cwd=None, env=None):
    """main(argv) in an environment of its own, in cwd, with env added to
    os.environ meanwhile; its exit status and output as subprocess.run gives them."""
    environ, here = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    try:
        if cwd is not None:
            os.chdir(cwd)
        streams = environment(stdin, tty)
        status = main(list(argv), streams)
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(environ)
    streams.stdout.flush()
    stdout = streams.stdout.buffer.getvalue()
    return subprocess.CompletedProcess(argv, status, stdout, streams.stderr.getvalue().encode())


@pytest.fixture
def qme():
    return run_main


@pytest.fixture(autouse=True)
def no_forced_colour(monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Three real commands, recorded once for the module through the Queue API and
    kept as an export: ids oldest to newest, and the directory the newest ran in."""
    where = tmp_path_factory.mktemp("recorded")
    (where / "sub").mkdir()
    with Queue(config_dir=where / "home", database="sqlite") as queue:
        queue.run(["echo", "alpha"])
        queue.run(["sh", "-c", "echo beta; echo spoo | rev >&2; exit 4"], message="deploy notes")
        queue.run(["echo", "gamma"], cwd=str(where / "sub"))
        export = io.StringIO()
        queue.export(export)
        ids = [task.id for task in reversed(queue.list())]
    return SimpleNamespace(export=export.getvalue(), ids=ids, sub=where / "sub")


@pytest.fixture
def three(queue, recorded):
    """The three tasks, in this test's store."""
    queue.import_from(io.StringIO(recorded.export))
    return recorded.ids


# -- help, version, usage ----------------------------------------------------------------


def test_every_command_has_help(qme):
    assert "usage: qme" in ok(qme("--help"))
    for name in COMMANDS:
        result = qme(name, "--help")
        assert f"usage: qme {name}" in ok(result)
        assert len(result.stdout.splitlines()) > 2 and result.stderr == b""


def test_version(qme):
    assert ok(qme("--version")).startswith("qme ")


@pytest.mark.parametrize(
    "argv",
    [
        ["nosuch"],
        ["ls", "--nosuch"],
        ["--nosuch", "ls"],
        ["ls", "--limit", "many"],
        ["get", "a", "b"],
    ],
)
def test_usage_mistakes_are_status_2_with_one_error_line(qme, argv):
    result = qme(*argv)
    assert one_error_line(result, USAGE)
    assert result.stderr.decode().startswith("usage: qme")
    assert result.stdout == b""


def test_no_command_prints_the_help_on_stderr(qme):
    result = qme()
    assert result.returncode == USAGE and result.stdout == b""
    assert "Run 'qme COMMAND --help'" in result.stderr.decode()


def test_exit_statuses():
    assert (OK, ERROR, USAGE, INTERRUPTED) == (0, 1, 2, 130)


# -- get ---------------------------------------------------------------------------------


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
    assert json.loads(ok(qme("get", "--last")))["id"] == three[2]


def test_get_errors(qme, three, tmp_path):
    assert "no task matches 'ffffffff'" in one_error_line(qme("get", "ffffffff"))
    assert "matches several tasks" in one_error_line(qme("get", "shell"))
    assert "no tasks yet" in one_error_line(qme("--config_dir", str(tmp_path / "empty"), "get"))
    assert qme("get", "--output", "--error").returncode == USAGE


# -- ls ----------------------------------------------------------------------------------


def test_ls_table_and_filters(qme, three, recorded):
    table = ok(qme("ls")).splitlines()
    assert table[0].split() == ["ID", "STATUS", "EXIT", "TIME", "STARTED", "CWD", "COMMAND"]
    assert "echo alpha" in table[1] and "echo gamma" in table[3]  # newest last
    assert "echo gamma" in ok(qme("ls", "--reverse")).splitlines()[1]
    assert "failed" in ok(qme("ls", "--status", "failed"))
    assert len(ok(qme("ls", "--limit", "1")).splitlines()) == 2
    here = json.loads(ok(qme("ls", "--here", "--json", cwd=recorded.sub)))
    assert [t["id"] for t in here] == [three[2]]
    assert json.loads(ok(qme("ls", "--since", "1h", "--json")))
    assert json.loads(ok(qme("ls", "--until", "1h", "--json"))) == []
    assert len(json.loads(ok(qme("ls", "shell", "--json")))) == 3
    assert "unknown executor 'nosuch'" in one_error_line(qme("ls", "nosuch"))
    assert qme("ls", "--since", "yesterdayish").returncode == 2


def test_ls_json_is_newest_first_with_every_field(qme, three):
    listed = json.loads(ok(qme("ls", "--json")))
    assert [t["id"] for t in listed] == three[::-1]
    assert listed[1]["message"] == "deploy notes" and listed[1]["returncode"] == 4


def test_ls_of_an_empty_store_prints_nothing(qme):
    assert qme("ls").stdout == b""
    assert json.loads(ok(qme("ls", "--json"))) == []


# -- search ------------------------------------------------------------------------------


def test_search(qme, three):
    out = ok(qme("search", "OOPS"))
    assert three[1].split("-", 1)[1][:8] in out and "error: oops" in out
    hits = json.loads(ok(qme("search", "deploy", "--json")))
    assert [h["id"] for h in hits] == [three[1]]
    assert hits[0]["match"] == {"field": "message", "line": "deploy notes", "spans": [[0, 6]]}
    assert qme("search", "absentword").returncode == 1
    assert "nothing to search for" in one_error_line(qme("search", "--", "--"))
    assert json.loads(ok(qme("search", "--rank", "echo", "--json")))


# -- colours -----------------------------------------------------------------------------


def test_colour_on_a_terminal_only(qme, three):
    assert ESCAPE in ok(qme("ls", tty=True))
    assert ESCAPE not in ok(qme("ls"))


def test_no_color_wins_even_on_a_terminal(qme, three):
    assert ESCAPE not in ok(qme("ls", tty=True, env={"NO_COLOR": "1"}))
    assert ESCAPE not in ok(qme("search", "oops", tty=True, env={"NO_COLOR": "1"}))
    both = {"NO_COLOR": "1", "FORCE_COLOR": "1"}
    assert ESCAPE not in ok(qme("ls", tty=True, env=both))


def test_force_color_colours_a_pipe(qme, three):
    table = ok(qme("ls", env={"FORCE_COLOR": "1"}))
    assert f"{ESCAPE}31mfailed" in table
    assert f"{ESCAPE}1;33moops" in ok(qme("search", "oops", env={"FORCE_COLOR": "1"}))
    assert ESCAPE not in ok(qme("ls", env={"FORCE_COLOR": ""}))  # set but empty: unset


def test_the_colour_decision(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Environment(stdout=io.StringIO(), stdout_isatty=True).colors
    assert not Environment(stdout=io.StringIO()).colors
    assert not Environment(stdout=io.StringIO(), stdout_isatty=True, colors=False).colors
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert Environment(stdout=io.StringIO()).colors
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Environment(stdout=io.StringIO(), stdout_isatty=True).colors


# -- config ------------------------------------------------------------------------------


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
    assert "max_output takes a size" in one_error_line(qme("config", "--set", "max_output", "lots"))
    assert "unknown database" in one_error_line(qme("config", "--database", "oracle"))


def test_config_table_and_what_set_says(qme, qme_home):
    lines = ok(qme("config")).splitlines()
    assert lines[0] == f"home:   {qme_home}"
    assert lines[1].startswith("store:  sqlite at ")
    assert lines[3].split() == ["SETTING", "VALUE", "FROM"]
    said = ok(qme("config", "--set", "max_output", "2M"))
    assert said == f"Saved max_output = 2M in {qme_home / 'config.ini'}\n"
    assert "--set takes KEY VALUE" in one_error_line(qme("config", "--set", "max_output"))


def test_broken_config_and_store_are_one_line_errors(qme, qme_home):
    qme_home.mkdir(parents=True)
    (qme_home / "config.ini").write_text("[DEFAULT\nthis is not ini")
    assert "cannot read" in one_error_line(qme("ls"))
    (qme_home / "config.ini").unlink()
    (qme_home / "qme.db").write_bytes(b"this is not a database" * 100)
    assert "qme.db" in one_error_line(qme("ls"))
    assert "not a database" in one_error_line(qme("ls"))


# -- export, and import from the environment's stdin -------------------------------------


def test_export_to_stdout_and_a_file(qme, three, tmp_path):
    result = qme("export")
    lines = [json.loads(line) for line in ok(result).splitlines()]
    assert lines[0]["format"] == "qme-export"
    assert [task["id"] for task in lines[1:]] == three
    assert result.stderr == b"qme: exported 3 tasks\n"
    document = json.loads(ok(qme("export", "--json", "--since", "1h")))
    assert [task["id"] for task in document["tasks"]] == three
    ok(qme("export", str(tmp_path / "out.jsonl")))
    written = (tmp_path / "out.jsonl").read_text().splitlines()
    assert written[1:] == ok(qme("export")).splitlines()[1:]  # the header has the time
    assert "unknown executor" in one_error_line(qme("export", "--executor", "nosuch"))
    assert "cannot open" in one_error_line(qme("export", str(tmp_path / "no" / "such")))


def test_import_reads_the_environments_stdin(qme, three, tmp_path):
    exported = ok(qme("export"))
    other = str(tmp_path / "other")
    result = qme("--config_dir", other, "import", stdin=exported)
    assert result.returncode == OK and result.stderr == b"qme: imported 3 tasks\n"
    again = qme("--config_dir", other, "import", stdin=exported)
    assert again.stderr == b"qme: imported 0 tasks (3 tasks already there, skipped)\n"
    listed = json.loads(ok(qme("--config_dir", other, "ls", "--json")))
    assert [t["id"] for t in listed] == three[::-1]


# -- other commands that only print ------------------------------------------------------


def test_generate_key(qme):
    keys = {ok(qme("generate-key")).strip() for _ in range(2)}
    assert len(keys) == 2 and all(len(k) >= 40 for k in keys)


def test_init_prints_the_hooks(qme):
    assert ok(qme("init", "bash")).startswith("# qme shell integration for bash")
    assert "command qme session" in ok(qme("init", "zsh", "--auto"))


def test_status_outside_a_session(qme, monkeypatch):
    monkeypatch.delenv("QME_SESSION", raising=False)
    result = qme("status")
    assert result.returncode == OK and result.stdout == b""
    assert "not in a qme session" in result.stderr.decode()
    assert qme("off").returncode == ERROR


def test_exec_lists_actions_and_refuses_a_muddle(qme, three):
    actions = json.loads(ok(qme("exec", "slurm", "--json")))
    assert actions["executor"] == "slurm" and "status" in actions["actions"]
    assert ok(qme("exec", "slurm")).split()[:4] == ["ACTION", "WHAT", "IT", "DOES"]
    assert "say which action" in one_error_line(qme("exec", "a", "b", "c"), USAGE)
    assert "has no action 'status'" in one_error_line(qme("exec", "status"))


def test_sync_with_nothing_spooled(qme):
    assert qme("sync", "--list").stdout == b""
    assert "delivered 0 of 0" in qme("sync").stderr.decode()


# -- main() and the Environment ----------------------------------------------------------


def test_config_dir_comes_from_the_environment_unless_given(qme, qme_home, tmp_path):
    streams = Environment(stdout=io.StringIO(), stderr=io.StringIO())
    assert streams.config_dir == str(qme_home)  # $QME_HOME
    given = Environment(stdout=io.StringIO(), config_dir=str(tmp_path / "given"))
    assert main(["config", "--json"], given) == OK
    assert json.loads(given.stdout.getvalue())["home"] == str(tmp_path / "given")
    flag = Environment(stdout=io.StringIO(), config_dir=str(tmp_path / "given"))
    assert main(["--config_dir", str(tmp_path / "flag"), "config", "--json"], flag) == OK
    assert json.loads(flag.stdout.getvalue())["home"] == str(tmp_path / "flag")
    assert flag.config_dir == str(tmp_path / "flag")


def test_a_closed_stdout_reads_as_dev_null(monkeypatch, three):
    monkeypatch.setattr(sys, "stdout", None)
    env = Environment(stderr=io.StringIO())
    assert main(["ls"], env) == OK and env.stderr.getvalue() == ""


def test_a_reader_that_left_is_no_error(three):
    class LeftPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError

    env = Environment(stdout=LeftPipe(), stderr=io.StringIO())
    assert main(["ls"], env) == OK and env.stderr.getvalue() == ""


def test_a_bug_is_one_line_and_a_traceback_only_with_debug(qme, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Queue, "list", broken)
    line = one_error_line(qme("ls"))
    assert line == "qme: error: RuntimeError: a bug (run with --debug for details)"
    with pytest.raises(RuntimeError):
        qme("--debug", "ls")


def test_ctrl_c_is_status_130(qme, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Queue, "list", interrupted)
    result = qme("ls")
    assert result.returncode == INTERRUPTED and result.stderr == b""
