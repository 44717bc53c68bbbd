"""Never leak a record: hostile escape sequences in records never reach a terminal,
and every setting is checked in one place (one line naming it, its source and what
it takes). Real stores, the real `qme` program, real terminals (pexpect)."""

from __future__ import annotations

import io
import json
import os
import re
import sys

import pexpect
import pytest
from helpers import ok

# OSC 52 (the clipboard), OSC 0 (the window title), 8-bit CSI, a BEL, DEL.
HOSTILE = ["\x1b]52;c;ZXZpbA==\x07", "\x1b]0;PWNED\x07", "\x9b2J", "bell\x07", "del\x7f"]
# What a terminal may be given: SGR (colours) only.
SGR = re.compile(rb"\x1b\[[0-9;]*m")


def obeyed(data: bytes) -> list[bytes]:
    """The control characters in data that a terminal would act on (all but SGR, \\t,
    \\r, \\n): empty when it is safe to print."""
    rest = SGR.sub(b"", data)
    found = re.findall(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]", rest)
    return found


@pytest.fixture
def hostile(qme, qme_home):
    """A record whose command, message, cwd and output are hostile."""
    folder = qme_home.parent / "dir\x1b]0;CWD\x07"
    folder.mkdir(parents=True)
    result = qme(
        "-m",
        "note \x1b]0;MSG\x07 evil",
        "run",
        "printf",
        "%s\\n",
        *HOSTILE,
        "evil",
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    assert b"\x1b]52" in result.stdout  # the command's own output is its own business
    return folder


@pytest.mark.parametrize(
    "command",
    [
        ["ls"],
        ["ls", "--format", "queueme"],
        ["ls", "--json"],
        ["search", "evil"],
        ["search", "evil", "--json"],
        ["get", "--last"],
        ["get", "--last", "--format", "queueme"],
        ["get", "nosuch\x1b]0;X\x07"],
    ],
)
def test_hostile_records_print_no_control_sequence(qme, hostile, command):
    result = qme(*command, env={"FORCE_COLOR": "1"})
    assert result.stdout or result.stderr
    assert obeyed(result.stdout) == [] and obeyed(result.stderr) == [], result


def test_control_characters_are_shown_as_cat_v_does(qme, hostile):
    listing = ok(qme("ls"))
    assert "'^[]52;c;ZXZpbA==^G' '^[]0;PWNED^G' 'M-^[2J' 'bell^G' 'del^?'" in listing
    line = ok(qme("search", "ZXZpbA")).splitlines()
    assert "^[]52;c;ZXZpbA==^G" in line[0]
    assert json.loads(ok(qme("get", "--last")))["message"] == "note \x1b]0;MSG\x07 evil"


def test_get_output_keeps_the_raw_bytes(qme, hostile):
    result = qme("get", "--last", "--output")
    assert result.stdout == "".join(f"{h}\n" for h in [*HOSTILE, "evil"]).encode()
    assert b"raw bytes" in qme("get", "--help").stdout


def run_on_terminal(*args: str, cwd=None) -> bytes:
    child = pexpect.spawn(sys.executable, ["-m", "qme", *args], env=os.environ, cwd=cwd)
    child.expect(pexpect.EOF, timeout=30)
    return child.before


@pytest.mark.parametrize(
    "command",
    [["ls"], ["search", "evil"], ["get", "--last"], ["sync", "--list"], ["exec", "shell"]],
)
def test_on_a_terminal_only_colours_reach_it(hostile, command):
    shown = run_on_terminal(*command)
    assert obeyed(shown) == [], shown
    if command == ["ls"]:
        assert b"\x1b[1m" in shown  # coloured: a terminal


def test_the_picker_shows_hostile_commands_visibly(hostile):
    child = pexpect.spawn(
        sys.executable, ["-m", "qme", "get"], env=os.environ, dimensions=(24, 400)
    )
    child.logfile_read = seen = io.BytesIO()
    child.expect("Show which task", timeout=30)
    child.expect("1 found", timeout=10)  # the list and the preview are drawn
    child.sendcontrol("c")
    child.expect(pexpect.EOF, timeout=10)
    shown = seen.getvalue()
    assert b"\x1b]52" not in shown and b"\x1b]0;" not in shown and b"\x07" not in shown
    assert b"^[]52" in re.sub(rb"\x1b\[[0-9;]*m", b"", shown)  # shown, in its own colour


# -- settings ---------------------------------------------------------------------------


def one_warning(stderr: bytes, *parts: str) -> str:
    lines = [line for line in stderr.decode().splitlines() if line.startswith("qme: ")]
    lines = [line for line in lines if not line.startswith("qme: no tasks")]
    assert len(lines) == 1, stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "variable, value, key",
    [
        ("QME_MAX_OUTPUT", "banana", "max_output"),
        ("QME_MAX_OUTPUT", "-1", "max_output"),
        ("QME_LOG_LEVEL", "LOUD", "log_level"),
        ("QME_SECRETS_FILTER", "maybe", "secrets_filter"),
        ("QME_REDACT", "unclosed(", "redact"),
    ],
)
def test_a_bad_setting_from_the_environment_is_one_line(qme, variable, value, key):
    result = qme("ls", env={variable: value})
    assert result.returncode == 0
    one_warning(result.stderr, "warning", f"{key} = {value!r}", f"environment ({variable})")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "soon"])
def test_busy_timeout_must_be_finite(qme, value):
    result = qme("ls", env={"QME_BUSY_TIMEOUT": value})
    assert result.returncode == 1
    one_warning(result.stderr, "error", "busy_timeout", "QME_BUSY_TIMEOUT", "number of seconds")
    if value.startswith("-"):
        return  # argparse reads it as an option
    refused = qme("config", "--set", "busy_timeout", value)
    assert refused.returncode == 1
    one_warning(refused.stderr, "from --set", "number of seconds")
    shown = json.loads(ok(qme("config", "--json")))["settings"]["busy_timeout"]
    assert shown == {"value": "15", "source": "default"}  # not saved


def test_qme_run_runs_with_a_broken_setting_and_says_one_line(qme):
    result = qme("run", "echo", "ran", env={"QME_MAX_OUTPUT": "banana"})
    assert (result.returncode, result.stdout) == (0, b"ran\n")
    one_warning(result.stderr, "max_output = 'banana'", "QME_MAX_OUTPUT", "K, M or G")
    assert [t["command"] for t in json.loads(ok(qme("ls", "--json")))] == ["echo ran"]


def test_unknown_keys_and_sections_in_config_ini_are_warned_about(qme, qme_home):
    qme_home.mkdir(parents=True, mode=0o700)
    (qme_home / "config.ini").write_text(
        "[DEFAULT]\ndatabase = sqlite\ncolour = red\n\n"
        "[executor.nosuch]\nkey = 1\n\n[executor.slurm]\nsacct_format = jobid\nbogus = 2\n"
    )
    result = qme("ls")
    assert result.returncode == 0
    lines = [x for x in result.stderr.decode().splitlines() if x != "qme: no tasks yet"]
    assert len(lines) == 3, lines
    assert "unknown setting 'colour'" in lines[0] and "config.ini" in lines[0]
    assert "[executor.nosuch]" in lines[1]
    assert "unknown setting 'bogus' in [executor.slurm]" in lines[2]
    run = qme("run", "true")
    assert run.returncode == 0 and "unknown setting 'colour'" in run.stderr.decode()


def test_a_bad_value_in_config_ini_names_the_file(qme, qme_home):
    qme_home.mkdir(parents=True, mode=0o700)
    (qme_home / "config.ini").write_text("[DEFAULT]\nlog_level = LOUD\n")
    warning = one_warning(qme("ls").stderr, "log_level = 'LOUD'", "config file")
    assert str(qme_home / "config.ini") in warning


# -- private by default -----------------------------------------------------------------


def test_an_older_homes_files_are_made_private_once_with_one_line(qme, qme_home):
    old = os.umask(0o022)
    try:
        qme_home.mkdir()
        (qme_home / "config.ini").write_text("[DEFAULT]\ndatabase = filesystem\n")
        ok(qme("run", "echo", "hi"))
        qme_home.chmod(0o755)
        for path in qme_home.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        first = qme("ls")
        second = qme("ls")
    finally:
        os.umask(old)
    one_warning(first.stderr, "made", str(qme_home), "private")
    assert b"private" not in second.stderr
    for path in [qme_home, *qme_home.rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, path


def test_config_ini_and_the_dashboard_log_are_private(qme_home, tmp_path):
    from qme.web import logs

    old = os.umask(0o022)
    try:
        from qme import Queue

        Queue(config_dir=qme_home / "sub").set_setting("max_output", "2M")
        log = tmp_path / "dashboard.log"
        logs.setup(logs.Scrubber("t"), str(log), False)
    finally:
        os.umask(old)
    assert (qme_home / "sub").stat().st_mode & 0o777 == 0o700
    assert (qme_home / "sub" / "config.ini").stat().st_mode & 0o777 == 0o600
    assert log.stat().st_mode & 0o777 == 0o600


# -- small things -----------------------------------------------------------------------


def test_small_things(qme):
    empty = qme("ls")
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, b"", b"qme: no tasks yet\n")
    assert qme("ls", "--limit", "-5").returncode == 2
    assert qme("search", "x", "-n", "-1").returncode == 2
    bogus = qme("ls", "--bogus")
    assert bogus.returncode == 2 and bogus.stderr.startswith(b"usage: qme ls")
    bare = qme("run")
    assert bare.returncode == 2 and b"no command given" in bare.stderr
    ran = qme("run", "--json", "sh", "-c", "echo out; exit 3")
    assert ran.returncode == 3
    out, record = ran.stdout.decode().splitlines()
    record = json.loads(record)
    assert out == "out" and (record["status"], record["returncode"]) == ("failed", 3)
    assert json.loads(ok(qme("get", record["id"])))["returncode"] == 3
    again = qme("rerun", "--json", record["id"])
    assert json.loads(again.stdout.decode().splitlines()[-1])["id"] != record["id"]
    assert json.loads(ok(qme("status", "--json"))) == {"recording": False, "session": None}
    assert json.loads(ok(qme("sync", "--list", "--json"))) == []
    assert json.loads(ok(qme("sync", "--json")))["delivered"] == 0
    assert json.loads(ok(qme("clear", "--all", "--force", "--json"))) == {"deleted": 2}


def test_search_hits_give_a_clean_line_and_spans(queue):
    from qme.text import marked_spans

    queue.run(["echo", "alpha beta alpha"])
    [hit] = [h for h in queue.search("alpha") if h.field == "output"] or queue.search("alpha")
    line, spans = marked_spans(hit.line)
    assert "\x02" not in line and [line[a:b] for a, b in spans] == ["alpha", "alpha"]
