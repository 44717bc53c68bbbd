"""Shell integration with real shells: bash, zsh and fish driven by pexpect.

Each test gives the shell a fresh HOME (its own small rc file with a plain prompt)
and QME_HOME in tmp_path, starts `python -m qme session --shell PATH` (or the
shell itself, for the tests outside a session) on a 24x100 pty, types commands,
and checks both what the terminal showed (never a mark: ESC ] 6973) and what the
real SQLite store holds. `qme` on the shells' PATH is a small script that runs
this tree's qme and logs each call, so a test can tell that no prompt started it.

Under CI=true a missing zsh or fish fails the test instead of skipping it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from helpers import LockedDatabase, require_program, wait_for

ROOT = Path(__file__).resolve().parent.parent
HOOKS = ROOT / "qme" / "shell"
TIMEOUT = 6  # seconds for any one expect
KINDS = ("bash", "zsh", "fish")
MARK = b"\x1b]6973"
PROMPT = "QP> "
PROMPT_RE = re.compile(re.escape(PROMPT).encode())
STATUS_RE = rb"qme: recording \(session ([0-9a-f-]{36})\)"
GITHUB_TOKEN = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"  # 36 characters after ghp_

RC_FILE = {"bash": ".bashrc", "zsh": ".zshrc", "fish": ".config/fish/config.fish"}
BASE_RC = {
    "bash": f"PS1='{PROMPT}'\nHISTFILE=~/.bash_history\n",
    "zsh": f"PROMPT='{PROMPT}'\nHISTFILE=~/.zsh_history\nHISTSIZE=1000\nSAVEHIST=1000\n",
    "fish": f"function fish_prompt; printf '{PROMPT}'; end\nset -g fish_greeting\n",
}
# Files to `source`, one per syntax.
LIBS = {
    "lib.sh": 'LIBVAR=from-lib\nlibfn() { echo "libfn:$1"; }\n',
    "lib.fish": "set -g LIBVAR from-lib\nfunction libfn; echo libfn:$argv[1]; end\n",
}


class World:
    """A fresh HOME with rc files, a `qme` on PATH, QME_HOME, and the environment."""

    def __init__(self, tmp_path: Path, qme_home: Path):
        self.home = tmp_path / "home"
        self.bin = tmp_path / "bin"
        self.qme_home = qme_home
        self.calls = tmp_path / "qme-calls.log"
        # With generated_completions there, fish does not start a python in the
        # background to read every man page (it does on a first start).
        generated = self.home / ".local" / "share" / "fish" / "generated_completions"
        for folder in (self.home / ".config" / "fish", self.bin, generated):
            folder.mkdir(parents=True)
        shim = self.bin / "qme"
        shim.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "$*" >> "{self.calls}"\n'
            f'exec "{sys.executable}" -m qme "$@"\n'
        )
        shim.chmod(0o755)
        for name, text in LIBS.items():
            (self.home / name).write_text(text)
        self.env = {
            "HOME": str(self.home),
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "TERM": "xterm",
            "LANG": "C.UTF-8",
            "PAGER": "cat",
            "PYTHONPATH": str(ROOT),
            "QME_HOME": str(qme_home),
            "USER": os.environ.get("USER", "root"),
            "LOGNAME": os.environ.get("LOGNAME", os.environ.get("USER", "root")),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
        }

    def write_rc(self, kind: str, extra: str = "", base: bool = True) -> None:
        rc = self.home / RC_FILE[kind]
        rc.write_text((BASE_RC[kind] if base else "") + extra)

    def qme_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def queue(self):
        from qme import Queue

        return Queue(config_dir=self.qme_home)

    def tasks(self, session: str | None = None) -> list:
        """The tasks, oldest first, each with its output."""
        queue = self.queue()
        try:
            return [queue.get(t.id) for t in queue.list(session=session, newest_first=False)]
        finally:
            queue.close()

    def session(self, kind: str, rc: str = "", env: dict | None = None, **kwargs) -> Shell:
        """`qme session --shell <kind>` with a prompt from the rc file."""
        self.write_rc(kind, rc)
        argv = [sys.executable, "-m", "qme", "session", "--shell", require_program(kind)]
        return Shell(argv, {**self.env, **(env or {})}, self.home, **kwargs)

    def plain(self, kind: str, rc: str = "", env: dict | None = None, **kwargs) -> Shell:
        """The shell on its own, outside any session, reading only its rc file."""
        self.write_rc(kind, rc)
        argv = [require_program(kind), "-i"]
        return Shell(argv, {**self.env, **(env or {})}, self.home, **kwargs)


class Shell:
    """One program on a pty; everything it showed is kept in `shown`."""

    def __init__(self, argv, env, cwd, prompt=PROMPT_RE, wait=True):
        self.prompt = prompt
        self.log = io.BytesIO()
        self.child = pexpect.spawn(
            argv[0],
            list(argv[1:]),
            env=env,
            cwd=str(cwd),
            dimensions=(24, 100),
            timeout=TIMEOUT,
        )
        self.child.delaybeforesend = None
        self.child.logfile_read = self.log
        if wait:
            self.wait()

    @property
    def shown(self) -> bytes:
        return self.log.getvalue()

    def wait(self, timeout: float | None = None) -> bytes:
        """Wait for the next prompt; return what was shown before it."""
        self.child.expect(self.prompt, timeout=timeout or TIMEOUT)
        return self.child.before

    def run(self, line: str, *expect, timeout: float | None = None) -> bytes:
        """Type line and Enter; wait for each pattern in expect, then the prompt."""
        self.child.sendline(line.encode())
        for pattern in expect:
            if isinstance(pattern, str):
                pattern = pattern.encode()
            self.child.expect(pattern, timeout=timeout or TIMEOUT)
        return self.wait(timeout)

    def session_id(self) -> str:
        self.child.sendline("qme status")
        self.child.expect(STATUS_RE)
        sid = self.child.match.group(1).decode()
        self.wait()
        return sid

    def exit(self, how: str = "exit") -> int:
        """End the shell (and with it a session); return the exit status."""
        if how == "ctrl-d":
            self.child.sendcontrol("d")
        else:
            self.child.sendline(how)
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert MARK not in self.shown, "a mark reached the terminal"
        return self.child.exitstatus if self.child.signalstatus is None else -1

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)


@pytest.fixture
def world(tmp_path, qme_home):
    return World(tmp_path, qme_home)


@pytest.fixture
def shells():
    """Shells a test started, killed if it failed half-way."""
    started: list[Shell] = []
    yield started
    for shell in started:
        shell.close()


@pytest.fixture(params=KINDS)
def kind(request):
    require_program(request.param)
    return request.param


def commands(tasks) -> list[str]:
    return [t.command for t in tasks]


def wait_running(world: World, command: str):
    """Wait until the store shows command running (its start mark was handled)."""

    def running():
        queue = world.queue()
        try:
            return [t for t in queue.list(status="running") if t.command == command]
        finally:
            queue.close()

    wait_for(running, what=f"'{command}' to be recorded as running")
    time.sleep(0.2)  # and until the shell has started it


# -- recording commands ---------------------------------------------------------------


def test_each_command_becomes_a_task(world, shells, kind):
    sh = world.session(kind)
    shells.append(sh)
    sid = sh.session_id()
    sh.run('echo "hel""lo"', "hello")
    sh.run("false")
    sh.run("mkdir -p sub && cd sub")
    sh.run('printf "%s\\n" "in""side"', "inside")
    assert sh.exit() == 0

    tasks = world.tasks(sid)
    assert commands(tasks) == [
        'echo "hel""lo"',
        "false",
        "mkdir -p sub && cd sub",
        'printf "%s\\n" "in""side"',
        "exit",
    ]
    hello, false, cd, inside, _ = tasks
    assert all(t.session == sid and t.executor == "shell" for t in tasks)
    assert (hello.status, hello.returncode, hello.output) == ("complete", 0, b"hello\r\n")
    assert (false.status, false.returncode, false.output) == ("failed", 1, b"")
    assert cd.cwd == str(world.home)
    assert inside.cwd == str(world.home / "sub")
    assert inside.output == b"inside\r\n"
    assert all(t.ended and t.ended >= t.started for t in tasks)
    assert world.qme_calls() == [], "a prompt started qme"


@pytest.mark.parametrize("how", ["exit", "exit 3", "ctrl-d"])
def test_exit_ends_the_session_with_status_0(world, shells, kind, how):
    sh = world.session(kind)
    shells.append(sh)
    sh.run('echo "x""y"', "xy")
    assert sh.exit(how) == 0


def test_lines_typed_ahead_are_cut_apart(world, shells, kind):
    sh = world.session(kind)
    shells.append(sh)
    sh.child.send('echo "fi""rst"\necho "sec""ond"\n')  # one write: a paste, or typing ahead
    sh.child.expect("second")
    sh.wait()
    assert sh.exit() == 0
    tasks = world.tasks()
    assert len(tasks) == 3, [(t.command, t.output, t.status) for t in tasks]
    first, second, _ = tasks
    assert (first.command, first.output) == ('echo "fi""rst"', b"first\r\n")
    assert (second.command, second.output) == ('echo "sec""ond"', b"second\r\n")


def test_odd_characters_in_commands_and_directories(world, shells, kind):
    """'%', what looks like the marks' own escapes, and UTF-8 survive the trip."""
    odd = "d %1B %07 %25 %3B ; é"
    sh = world.session(kind)
    shells.append(sh)
    sh.run(f"mkdir -p '{odd}' && cd '{odd}'")
    sh.run('echo "100""%" "é"', "100% é")
    assert sh.exit() == 0
    cd, echo, _ = world.tasks()
    assert cd.command == f"mkdir -p '{odd}' && cd '{odd}'"
    assert echo.cwd == str(world.home / odd)
    assert (echo.command, echo.output) == ('echo "100""%" "é"', "100% é\r\n".encode())


SYNTAX = {
    "state": {
        "bash": [
            "mkdir -p sub && cd sub",
            "export QX=v''1",
            'echo "qx=$QX"',
            "source ~/lib.sh",
            'libfn "a""b"',
            "alias hi='echo al\"\"iased'",
            "hi",
            'greet() { echo "gr""eet:$1"; }',
            "greet z",
        ],
        "fish": [
            "mkdir -p sub && cd sub",
            "set -gx QX v''1",
            'echo "qx=$QX"',
            "source ~/lib.fish",
            'libfn "a""b"',
            "alias hi 'echo al\"\"iased'",
            "hi",
            'function greet; echo "gr""eet:$argv[1]"; end',
            "greet z",
        ],
    },
    "lists": {
        "bash": [
            "printf 'b\\na\\n' | sort | head -n 1",
            'echo "to""file" > out.txt',
            "cat < out.txt",
            'false && echo "n""o" || echo "fall""back"',
            "true && false",
            '(cd / && echo "in:$PWD")',
            'echo "still:$PWD"',
        ],
        "fish": [
            "printf 'b\\na\\n' | sort | head -n 1",
            'echo "to""file" > out.txt',
            "cat < out.txt",
            'false && echo "n""o" || echo "fall""back"',
            "true && false",
            "fish --no-config -c 'cd / && echo \"in:$PWD\"'",
            'echo "still:$PWD"',
        ],
    },
    "statuses": {
        "bash": [
            "false | true | (exit 3)",
            'echo "ps=${PIPESTATUS[*]} rc=$?"',
            "(exit 7)",
            'echo "rc=$?"',
        ],
        "zsh": [
            "false | true | (exit 3)",
            'echo "ps=$pipestatus rc=$?"',
            "(exit 7)",
            'echo "rc=$?"',
        ],
        "fish": [
            "false | true | sh -c 'exit 3'",
            'echo "ps=$pipestatus rc=$status"',
            "sh -c 'exit 7'",
            'echo "rc=$status"',
        ],
    },
}


def syntax(topic: str, kind: str) -> list[str]:
    lines = SYNTAX[topic]
    return lines.get(kind) or lines["bash"]


def test_cd_export_source_alias_function(world, shells, kind):
    lines = syntax("state", kind)
    sh = world.session(kind)
    shells.append(sh)
    expected = {2: "qx=v1", 4: "libfn:ab", 6: "aliased", 8: "greet:z"}
    for number, line in enumerate(lines):
        sh.run(line, *([expected[number]] if number in expected else []))
    assert sh.exit() == 0

    tasks = world.tasks()
    assert commands(tasks) == [*lines, "exit"]
    assert tasks[0].cwd == str(world.home)
    assert all(t.cwd == str(world.home / "sub") for t in tasks[1:])
    for number, text in expected.items():
        assert tasks[number].output == text.encode() + b"\r\n", tasks[number].command
    assert tasks[6].command == "hi"  # as typed, not the alias's expansion


def test_pipelines_redirections_lists_subshells(world, shells, kind):
    lines = syntax("lists", kind)
    sh = world.session(kind)
    shells.append(sh)
    for line in lines:
        sh.run(line)
    assert sh.exit() == 0

    assert (world.home / "out.txt").read_text() == "tofile\n"
    tasks = world.tasks()
    assert commands(tasks) == [*lines, "exit"]
    outputs = [t.output for t in tasks]
    assert outputs[:6] == [b"a\r\n", b"", b"tofile\r\n", b"fallback\r\n", b"", b"in:/\r\n"]
    assert outputs[6] == f"still:{world.home}\r\n".encode()
    assert [t.status for t in tasks[3:5]] == ["complete", "failed"]
    assert all(t.cwd == str(world.home) for t in tasks)


BASH_LINES_TOLD_LATE = {
    # line: its task's output. The DEBUG trap that tells bash's line runs before
    # the first command in the shell itself, perhaps inside a redirection...
    '{ echo "gr""oup"; } > group.txt': b"",
    'if true; then echo "i""f"; fi > if.txt': b"",
    # ... or, with none there, just before the prompt hook: the output before it
    # is the command's all the same.
    '( echo "sub""shell" )': b"subshell\r\n",
    "set -T": b"",  # subshells inherit the trap now: still one task for the line
    '( echo "tra""ced" ); set +T': b"traced\r\n",
    # What the trap runs leaves $_ and, under extdebug, runs the command.
    "echo a b c": b"a b c\r\n",
    'echo "last=$_"': b"last=c\r\n",
    "shopt -s extdebug": b"",
    'echo "ext""debug"; shopt -u extdebug': b"extdebug\r\n",
}


def test_bash_tells_its_lines_without_a_subshell_and_without_a_trace(world, shells):
    """bash's line comes from a DEBUG trap that runs once a line in the shell itself
    (PS0 could only print it from a subshell, ~0.5 ms a command): its mark never
    lands in the command's redirections, a line with no command in the shell is
    recorded whole, and the trap changes nothing the command sees."""
    sh = world.session("bash")
    shells.append(sh)
    for line in BASH_LINES_TOLD_LATE:
        sh.run(line)
    assert sh.exit() == 0

    assert (world.home / "group.txt").read_bytes() == b"group\n"
    assert (world.home / "if.txt").read_bytes() == b"if\n"
    tasks = world.tasks()
    assert commands(tasks) == [*BASH_LINES_TOLD_LATE, "exit"]
    assert [t.output for t in tasks[:-1]] == list(BASH_LINES_TOLD_LATE.values())
    assert all(t.status == "complete" for t in tasks[:-1])


STRICT_LINES = {
    "bash": ["set -u", 'echo "u""1"', "set +u; set -e", "false && true", '( echo "s""2" )'],
    "zsh": ["setopt nounset", 'echo "u""1"', "unsetopt nounset; setopt errexit", "false && true"],
}


@pytest.mark.parametrize("shell", list(STRICT_LINES))
def test_errexit_and_nounset_typed_in_a_session_end_nothing_but_what_they_would(
    world, shells, shell
):
    """Under `set -e`/`set -u` the hooks must not fail where the shell would not:
    a failed hook would end the user's shell at the next prompt."""
    require_program(shell)
    sh = world.session(shell)
    shells.append(sh)
    lines = [*STRICT_LINES[shell], 'echo "still""here"']
    for line in lines:
        sh.run(line)
    assert sh.exit() == 0
    tasks = world.tasks()
    assert commands(tasks) == [*lines, "exit"]
    assert tasks[-2].output == b"stillhere\r\n"
    failed = tasks[lines.index("false && true")]
    assert (failed.status, failed.returncode) == ("failed", 1)


def test_status_and_pipestatus_reach_the_next_command(world, shells, kind):
    lines = syntax("statuses", kind)
    sh = world.session(kind)
    shells.append(sh)
    sh.run(lines[0])
    sh.run(lines[1], "ps=1 0 3 rc=3")
    sh.run(lines[2])
    sh.run(lines[3], "rc=7")
    assert sh.exit() == 0

    pipeline, _, seven, _, _ = world.tasks()
    assert (pipeline.status, pipeline.returncode) == ("failed", 3)
    assert (seven.status, seven.returncode) == ("failed", 7)


def test_a_command_reads_as_finished_once_the_prompt_is_back(world, shells, kind):
    """A reader waits for the session's writer, as for qme run's (qme/pending.py)."""
    sh = world.session(kind)
    shells.append(sh)
    for number in range(3):
        sh.run(f'echo "do""ne{number}"', f"done{number}")
        task = world.tasks()[-1]
        assert (task.command, task.status) == (f'echo "do""ne{number}"', "complete")


def test_a_killed_writer_child_is_replaced_and_readers_never_wait(world, shells):
    sh = world.session("bash")
    shells.append(sh)
    sh.run('echo "fi""rst"', "first")
    proxy = sh.child.pid

    def writer_child() -> list[int]:  # forked by the proxy 50 ms into the session
        same = Path(f"/proc/{proxy}/cmdline").read_bytes()  # the shell's is its own
        children = Path(f"/proc/{proxy}/task/{proxy}/children").read_text().split()
        return [int(p) for p in children if Path(f"/proc/{p}/cmdline").read_bytes() == same]

    [writer] = wait_for(writer_child, what="the writer child")
    assert len(world.tasks()) == 1  # written: readers wait for that
    os.kill(writer, signal.SIGKILL)
    sh.run('echo "sec""ond"', "second")
    sh.run('echo "th""ird"', "third")
    began = time.monotonic()
    world.tasks()
    assert time.monotonic() - began < 2  # no wait for a lock nobody will release
    assert sh.exit() == 0
    assert commands(world.tasks()) == [
        'echo "fi""rst"',
        'echo "sec""ond"',
        'echo "th""ird"',
        "exit",
    ]
    assert len(re.findall(rb"another took over the record: nothing was lost", sh.shown)) == 1


def test_a_locked_store_spools_what_follows_and_recording_goes_on(world, shells):
    sh = world.session("bash", env={"QME_BUSY_TIMEOUT": "0.2"})
    shells.append(sh)
    sh.run('echo "fi""rst"', "first")
    assert len(world.tasks()) == 1
    lock = LockedDatabase(world.qme_home / "qme.db")
    try:
        for number in range(3):
            sh.run(f'echo "af""ter{number}"', f"after{number}")
            time.sleep(0.3)  # the busy timeout, then the spool
        sh.run("true")
    finally:
        lock.release()
    assert sh.exit() == 0
    warnings = re.findall(rb"qme: warning: [^\r\n]*", sh.shown)
    assert len(warnings) == 1, warnings
    assert b"could not write to the store (database is locked)" in warnings[0]
    tasks = world.tasks()  # the spool is delivered now
    expected = ['echo "fi""rst"', *(f'echo "af""ter{n}"' for n in range(3)), "true", "exit"]
    assert [t.command for t in tasks] == expected
    assert [t.output for t in tasks[1:4]] == [b"after%d\r\n" % n for n in range(3)]
    assert {t.status for t in tasks} == {"complete"}


def test_ctrl_c_cancels_the_command_and_the_shell_lives_on(world, shells, kind):
    sh = world.session(kind)
    shells.append(sh)
    started = time.monotonic()
    sh.child.sendline("sleep 30")
    wait_running(world, "sleep 30")
    sh.child.sendcontrol("c")
    sh.wait()
    sh.run('echo "al""ive"', "alive")
    assert sh.exit() == 0
    assert time.monotonic() - started < 10

    sleep, alive, _ = world.tasks()
    assert sleep.command == "sleep 30"
    assert (sleep.status, sleep.returncode) == ("cancelled", 130)
    assert alive.output == b"alive\r\n"


def test_background_job_ctrl_z_and_fg(world, shells, kind):
    """Ctrl-Z leaves the command's task stopped; `fg` goes on with that task (the
    `fg` line is no task of its own) until it ends with the command's status."""
    sh = world.session(kind)
    shells.append(sh)
    sh.run("sleep 0.5 &")
    sh.run("jobs", "sleep")
    sh.run("fg", timeout=5)  # no stopped job: a task of its own
    exit5 = "sh -c 'sleep 1.5; exit 5'"
    sh.child.sendline(exit5)
    wait_running(world, exit5)
    sh.child.sendcontrol("z")
    sh.wait()
    stopped = wait_for(lambda: [t for t in world.tasks() if t.status == "stopped"], what="stop")
    assert [(t.command, t.ended) for t in stopped] == [(exit5, None)]
    sh.child.sendline("fg")
    wait_running(world, exit5)
    sh.wait(timeout=5)
    sh.child.sendline("sleep 30")
    wait_running(world, "sleep 30")
    sh.child.sendcontrol("z")
    sh.wait()
    sh.child.sendline("fg")
    wait_running(world, "sleep 30")
    sh.child.sendcontrol("c")
    sh.wait()
    sh.run('echo "al""ive"', "alive")
    assert sh.exit() == 0

    tasks = world.tasks()
    assert commands(tasks) == [
        "sleep 0.5 &",
        "jobs",
        "fg",
        exit5,
        "sleep 30",
        'echo "al""ive"',
        "exit",
    ]
    background, jobs, fg, resumed, cancelled, _, _ = tasks
    assert background.status == "complete"
    assert b"sleep" in jobs.output
    assert fg.status == "complete" and fg.ended - fg.started > 0.1
    assert resumed.ended - resumed.started > 1.4
    if kind == "fish":  # fish 3.6's fg says 0, however the job ended
        assert (resumed.status, cancelled.status) == ("complete", "complete")
    else:
        assert (resumed.status, resumed.returncode) == ("failed", 5)
        assert (cancelled.status, cancelled.returncode) == ("cancelled", 130)


MULTILINE = {
    "bash": [
        (["cat <<EOF", "line one", "EOF"], "cat <<EOF\nline one\nEOF", b"line one\r\n"),
        (
            ["for i in 1 2; do", '  echo "n$i"', "done"],
            'for i in 1 2; do   echo "n$i"; done',
            b"n1\r\nn2\r\n",
        ),
    ],
    "zsh": [
        (["cat <<EOF", "line one", "EOF"], "cat <<EOF\nline one\nEOF", b"line one\r\n"),
        (
            ["for i in 1 2; do", '  echo "n$i"', "done"],
            'for i in 1 2; do\n  echo "n$i"\ndone',
            b"n1\r\nn2\r\n",
        ),
    ],
    "fish": [
        (
            ["begin", '  echo "line"" one"', "end"],
            'begin\n  echo "line"" one"\nend',
            b"line one\r\n",
        ),
        (
            ["for i in 1 2", '  echo "n$i"', "end"],
            'for i in 1 2\n  echo "n$i"\nend',
            b"n1\r\nn2\r\n",
        ),
    ],
}


def test_heredoc_and_multiline_commands(world, shells, kind):
    sh = world.session(kind)
    shells.append(sh)
    for lines, _, output in MULTILINE[kind]:
        for line in lines[:-1]:
            sh.child.sendline(line)
        sh.run(lines[-1], re.escape(output.split(b"\r\n")[-2]))
    assert sh.exit() == 0

    tasks = world.tasks()
    assert len(tasks) == 3
    for task, (_, command, output) in zip(tasks, MULTILINE[kind]):
        assert task.command.rstrip("\n") == command
        assert task.output == output


HISTORY = {"bash": "history", "zsh": "fc -l 1", "fish": "history"}


def test_history_shows_what_was_typed(world, shells, kind):
    sh = world.session(kind)
    shells.append(sh)
    sh.run('echo "hist""one"', "histone")
    sh.run("true")
    text = sh.run(HISTORY[kind])
    assert sh.exit() == 0
    assert b'echo "hist""one"' in text
    assert b"__qme" not in text and b"6973" not in text
    history_task = world.tasks()[2]
    assert history_task.command == HISTORY[kind]


# -- prompts and full-screen programs ---------------------------------------------------

FANCY = {
    # starship-like: PROMPT_COMMAND (array) builds a two-line coloured PS1 from $?, and
    # the user has a PS0 of their own.
    "bash": (
        '__sp() { local s=$?; PS1="\\[\\e[1;34m\\]\\w\\[\\e[0m\\] [s=$s]\\n'
        '\\[\\e[35m\\]QP>\\[\\e[0m\\] "; }\n'
        "PROMPT_COMMAND=(__sp)\nPS0='[run]'\n",
        rb"\[s=(\d+)\]\S*\r*\n\S*QP>\S* ",
    ),
    "zsh": (
        "setopt PROMPT_SUBST\nprecmd() { __s=$?; }\n"
        "PROMPT=$'%F{blue}%~%f [s=${__s}]\\n%F{magenta}QP>%f '\n"
        "RPROMPT='%F{yellow}[r=%?]%f'\n",
        rb"\[s=(\d+)\]\S*\r*\n\S*QP>\S* ",
    ),
    "fish": (
        "function fish_prompt; set -l s $status; set_color blue; printf '%s' $PWD\n"
        "    set_color normal; printf ' [s=%s]\\n' $s; set_color magenta; printf 'QP>'\n"
        "    set_color normal; printf ' '; end\n"
        "function fish_right_prompt; printf '[r=%s]' $status; end\n"
        "set -g fish_greeting\n",
        rb"\[s=(\d+)\]\S*\r*\n\S*QP>\S* ",
    ),
}


def test_multiline_colour_and_right_prompts(world, shells, kind):
    rc, prompt = FANCY[kind]
    world.write_rc(kind, rc, base=False)
    argv = [sys.executable, "-m", "qme", "session", "--shell", require_program(kind)]
    sh = Shell(argv, world.env, world.home, prompt=re.compile(prompt))
    shells.append(sh)
    assert sh.child.match.group(1) == b"0"
    sh.run("sh -c 'exit 4'")
    assert sh.child.match.group(1) == b"4"  # the prompt still sees the command's status
    if kind != "bash":
        assert b"[r=4]" in sh.shown[-300:] or wait_for(
            lambda: sh.child.expect([pexpect.TIMEOUT, rb"\[r=4\]"], timeout=1) == 1
        )
    sh.run('echo "pro""mpt"', "prompt")
    assert sh.child.match.group(1) == b"0"
    assert sh.exit() == 0

    four, echo, _ = world.tasks()
    assert four.returncode == 4
    assert echo.output == b"prompt\r\n"  # not the prompt, PS0, RPROMPT, nor their colours


def test_full_screen_programs_work_and_are_not_recorded(world, shells, kind):
    require_program("vim")
    require_program("less")
    (world.home / "notes.txt").write_text("".join(f"note {i}\n" for i in range(100)))
    sh = world.session(kind)
    shells.append(sh)
    sh.child.sendline("vim -u NONE -i NONE -N -n ~/notes.txt")
    sh.child.expect("note 5")
    sh.child.send(":q\r")
    sh.wait()
    sh.child.sendline("less ~/notes.txt")
    sh.child.expect("note 5")
    sh.child.send("q")
    sh.wait()
    sh.child.setwinsize(30, 120)
    sh.run("stty size", "30 120")
    assert sh.exit() == 0
    assert commands(world.tasks()) == ["stty size", "exit"]


# -- what is not recorded ---------------------------------------------------------------


def test_leading_space_is_not_recorded(world, shells, kind):
    sh = world.session(kind)
    shells.append(sh)
    sh.run(' echo "hid""den"', "hidden")
    sh.run('echo "vis""ible"', "visible")
    assert sh.exit() == 0
    assert commands(world.tasks()) == ['echo "vis""ible"', "exit"]


def test_ignore_list_comes_from_qme_ignore(world, shells, kind):
    sh = world.session(kind, env={"QME_IGNORE": "printf, echo"})
    shells.append(sh)
    sh.run('echo "ig""nored"', "ignored")
    sh.run("/usr/bin/printf 'p%s\\n' 1", "p1")
    sh.run("cat ~/lib.sh", "from-lib")
    assert sh.exit() == 0
    assert commands(world.tasks()) == ["cat ~/lib.sh", "exit"]


SECRETS = {
    "bash": [f"export GITHUB_TOKEN={GITHUB_TOKEN}"],
    "zsh": [f"export GITHUB_TOKEN={GITHUB_TOKEN}"],
    "fish": [f"set -gx GITHUB_TOKEN {GITHUB_TOKEN}"],
}
CURL = "curl -s --connect-timeout 1 -u user:pass https://127.0.0.1:9/ || true"


@pytest.mark.parametrize("secrets_filter", ["on", "off"])
def test_secrets_filter(world, shells, kind, secrets_filter):
    sh = world.session(kind, env={"QME_SECRETS_FILTER": secrets_filter})
    shells.append(sh)
    for line in [*SECRETS[kind], CURL]:
        sh.run(line)
    sh.run('echo "$GITHUB_TOKEN" | cut -c1-4', "ghp_")
    assert sh.exit() == 0
    recorded = commands(world.tasks())
    if secrets_filter == "on":
        assert recorded == ['echo "$GITHUB_TOKEN" | cut -c1-4', "exit"]
    else:  # recorded, but what they carry is redacted before it is stored
        redacted = [
            line.replace(GITHUB_TOKEN, "[redacted]").replace("user:pass", "user:[redacted]")
            for line in [*SECRETS[kind], CURL]
        ]
        assert recorded == [*redacted, 'echo "$GITHUB_TOKEN" | cut -c1-4', "exit"]


def test_qme_off_on_and_status(world, shells, kind):
    sh = world.session(kind)
    shells.append(sh)
    sid = sh.session_id()
    sh.run('echo "o""ne"', "one")
    sh.run("qme off", r"qme: recording paused \('qme on' resumes\)")
    sh.run('echo "t""wo"', "two")
    sh.run("qme status", rf"qme: paused \(session {sid}\)".encode())
    sh.run("qme status --json", rf'{{"recording": false, "session": "{sid}"}}'.encode())
    sh.run("qme on", "qme: recording this shell's commands")
    sh.run("qme status --json", rf'{{"recording": true, "session": "{sid}"}}'.encode())
    sh.run('echo "th""ree"', "three")
    sh.run("qme run echo run-by-qme", "run-by-qme")
    assert sh.exit() == 0

    assert commands(world.tasks(sid)) == ['echo "o""ne"', 'echo "th""ree"', "exit"]
    # `qme run` records its own task, once, outside the session's tasks
    assert [t.command for t in world.tasks() if t.session != sid] == ["echo run-by-qme"]


HISTORY_RULES = {
    "bash": "HISTCONTROL=ignoreboth\nHISTIGNORE='ls *'\n",
    "zsh": "setopt HIST_IGNORE_DUPS HIST_IGNORE_SPACE\n",
    "fish": "",  # fish keeps lines with a leading space out of its history
}


def test_every_command_recorded_whatever_the_history_settings(world, shells, kind):
    """Repeats are recorded (history settings rule only the history, as before);
    a leading space is qme's own rule: not recorded, whatever the shell."""
    sh = world.session(kind, rc=HISTORY_RULES[kind])
    shells.append(sh)
    for _ in range(3):  # bash: the second goes out of the history, the third likewise
        sh.run('echo "d""up"', "dup")
    sh.run(' echo "sp""ace"', "space")
    sh.run("ls / >/dev/null")
    sh.run('echo "ne""xt"', "next")
    history = sh.run(HISTORY[kind])
    if kind == "bash":
        assert b"[ignoreboth][ls *]" in sh.run('echo "[$HISTCONTROL][$HISTIGNORE]"')
    assert sh.exit() == 0
    recorded = ['echo "d""up"'] * 3 + ["ls / >/dev/null", 'echo "ne""xt"']
    assert commands(world.tasks())[:5] == recorded
    assert world.tasks()[1].output == b"dup\r\n"
    assert history.count(b'echo "d""up"') == 1
    assert b'sp""ace' not in history
    assert (b"ls / >" in history) == (kind != "bash")


def test_bash_hooks_leave_the_shell_as_it_was(world, shells):
    """The hooks run in the shell itself after each command: its glob setting and
    the user's BASH_REMATCH stay; a line typed with the history off (`set +o
    history`: qme cannot know it) is not recorded, and the next ones are."""
    require_program("bash")
    sh = world.session("bash")
    shells.append(sh)
    sh.run("[[ abc =~ a(b)c ]]")
    sh.run('echo "m=${BASH_REMATCH[1]} f=$-"', "m=b f=")
    sh.run("set +o history")
    sh.run('echo "un""seen"', "unseen")
    sh.run("set -o history")
    sh.run('echo "se""en"', "seen")
    assert sh.exit() == 0
    got = commands(world.tasks())
    assert got[:3] == ["[[ abc =~ a(b)c ]]", 'echo "m=${BASH_REMATCH[1]} f=$-"', "set +o history"]
    assert got[3:5] == ['echo "se""en"', "exit"]
    assert b"f" not in world.tasks()[1].output.split(b"f=")[1]


BASH_SETTINGS = {
    # set -u with neither PROMPT_COMMAND nor PS0 set: the hooks must not trip on them
    "nounset": "set -u\n",
    "prompt-command-string": "PROMPT_COMMAND='__n=$((${__n:-0} + 1))'\nPS0='[ps0]'\n",
    "prompt-command-array": "PROMPT_COMMAND=('__n=$((${__n:-0} + 1))')\nPS0='[ps0]'\n",
}


@pytest.mark.parametrize("setting", list(BASH_SETTINGS))
def test_bash_hooks_keep_user_settings(world, shells, setting):
    """The user's own PROMPT_COMMAND (string or array) and PS0 go on working, and
    what PS0 prints is not recorded as the command's output."""
    require_program("bash")
    sh = world.session("bash", rc=BASH_SETTINGS[setting])
    shells.append(sh)
    if setting == "nounset":
        sh.run('echo "n=1"')
        sh.run('echo "n=2"')
    else:
        sh.run('echo "n=$__n"', "n=1")
        sh.run('echo "n=$__n"', "n=2")
    assert sh.exit() == 0
    assert b"unbound variable" not in sh.shown
    tasks = world.tasks()
    assert [t.output for t in tasks[:2]] == [b"n=1\r\n", b"n=2\r\n"]


NESTED = [("zsh", "bash"), ("bash", "fish")]


@pytest.mark.parametrize(("outer", "inner"), NESTED, ids=[f"{o}-{i}" for o, i in NESTED])
def test_a_shell_started_inside_is_one_task(world, shells, outer, inner):
    require_program(outer)
    require_program(inner)
    hook = HOOKS / f"qme.{inner}"
    load = f"source {hook}\n"
    (world.home / RC_FILE[inner]).write_text(BASE_RC[inner].replace(PROMPT, "IN> ") + load)
    sh = world.session(outer)
    shells.append(sh)
    sh.child.sendline(inner)
    sh.child.expect_exact("IN> ")
    sh.child.sendline('echo "in""ner"')
    sh.child.expect("inner")
    sh.child.expect_exact("IN> ")
    sh.run("exit")
    sh.run('echo "out""er"', "outer")
    assert sh.exit() == 0

    tasks = world.tasks()
    assert commands(tasks) == [inner, 'echo "out""er"', "exit"]
    assert b"inner" in tasks[0].output and MARK not in tasks[0].output


# -- a broken store ----------------------------------------------------------------------


def break_store(world: World, how: str) -> None:
    db = world.qme_home / "qme.db"
    if how == "replaced":
        garbage = world.qme_home / "garbage"
        garbage.write_bytes(b"this is not a database\n" * 100)
        os.replace(garbage, db)
    elif how == "overwritten":
        with open(db, "r+b") as handle:
            handle.write(b"this is not a database\n" * 100)
    elif how == "home-is-a-file":
        shutil.rmtree(world.qme_home)
        world.qme_home.write_text("not a folder\n")


BREAKS = ["replaced", "overwritten", "home-is-a-file"]


@pytest.mark.parametrize("how", BREAKS)
def test_broken_store_warns_once_and_the_shell_works_on(world, shells, kind, how):
    sh = world.session(kind)
    shells.append(sh)
    sh.run('echo "be""fore"', "before")
    wait_for(lambda: len(world.tasks()) == 1, what="the first task to be stored")
    break_store(world, how)
    for number in range(3):
        sh.run(f'echo "af""ter{number}"', f"after{number}")
    assert sh.exit() == 0
    warnings = re.findall(rb"qme: warning: [^\r\n]*", sh.shown)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(b"qme: warning: recording stopped: ")


def test_unusable_qme_home_stops_the_session_before_the_shell(world):
    require_program("bash")
    world.qme_home.parent.mkdir(parents=True, exist_ok=True)
    world.qme_home.write_text("not a folder\n")
    sh = Shell(
        [sys.executable, "-m", "qme", "session", "--shell", require_program("bash")],
        world.env,
        world.home,
        wait=False,
    )
    sh.child.expect("qme: error: ")
    sh.child.expect(pexpect.EOF)
    sh.child.close()
    assert sh.child.exitstatus == 1


# -- outside a session ---------------------------------------------------------------------

PLAIN = {
    "bash": ["--norc", "-i"],
    "zsh": ["-f", "-i"],
    "fish": ["--no-config", "-i"],
}
# Typed at a shell's first prompt: the echo of the line must not look like the prompt.
SET_PROMPT = {
    "bash": "PS1='Q''P> '",
    "zsh": "PROMPT='Q''P> '",
    "fish": "function fish_prompt; printf 'Q''P> '; end",
}
LOAD = {
    "bash": 'eval "$(qme init bash)"',
    "zsh": 'eval "$(qme init zsh)"',
    "fish": "qme init fish | source",
}
STATE = {  # what the hooks could change in the shell, on one line after "STATE:"
    "bash": 'echo "ST""ATE:[$PS0][${PROMPT_COMMAND[*]-}][$(trap -p | wc -l)]'
    '[$(declare -f qme __qme_switch | wc -l)]"',
    "zsh": 'echo "ST""ATE:[$precmd_functions][$preexec_functions][${+functions[qme]}]"',
    "fish": "set -l f (functions -n | string match -e qme); "
    "set -l h (functions --handlers-type generic | string match -e qme); "
    'echo "ST""ATE:[$f][$h]"',
}


def state(sh: Shell, kind: str) -> bytes:
    return re.search(rb"STATE:([^\r\n]*)", sh.run(STATE[kind])).group(1)


def assert_prints_nothing(shown: bytes) -> None:
    """What a line showed, past its echo, is only terminal control (no text)."""
    text = re.sub(rb"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][0-9A-B]|[=>])", b"", shown)
    text = text.replace(b"\x08", b"").replace(b"\r", b"")
    for word in (b"qme:", b"rror", b"arning", b"not found", b"Unknown"):
        assert word not in text, shown


def plain_shell(world: World, kind: str, path: str | None = None) -> Shell:
    env = dict(world.env)
    if path is not None:
        env["PATH"] = path
    sh = Shell([require_program(kind), *PLAIN[kind]], env, world.home, wait=False)
    sh.run(SET_PROMPT[kind])
    return sh


def test_loading_the_hooks_outside_a_session(world, shells, kind):
    sh = plain_shell(world, kind)
    shells.append(sh)
    before_load = state(sh, kind)
    assert_prints_nothing(sh.run(LOAD[kind]))
    sh.run("qme status", r"qme: not recording: this shell is not in a qme session")
    loaded = state(sh, kind)
    sh.run(LOAD[kind])
    assert state(sh, kind) == loaded  # loading twice changes nothing
    assert loaded != before_load  # the qme function is there
    assert sh.exit() == 0
    assert MARK not in sh.shown
    assert world.tasks() == []


def test_hooks_without_qme_on_path(world, shells, kind):
    sh = plain_shell(world, kind, path="/usr/bin:/bin")
    shells.append(sh)
    assert_prints_nothing(sh.run(f"source {HOOKS / ('qme.' + kind)}"))
    sh.run("qme status", "not recording")
    sh.run("qme on")  # not found: an error, and nothing more
    sh.run('echo "st""ill"', "still")
    assert sh.exit() in (0, 127)  # fish and bash exit with the last status


def test_session_works_without_qme_on_path(world, shells, kind):
    sh = world.session(kind, env={"PATH": "/usr/bin:/bin"})
    shells.append(sh)
    sh.run("qme off", "recording paused")
    sh.run('echo "o""ff"', "off")
    sh.run("qme on", "recording this shell")
    sh.run('echo "o""n"', r"\bon\r\n")
    assert sh.exit() == 0
    assert commands(world.tasks()) == ['echo "o""n"', "exit"]


def test_qme_on_starts_a_nested_session_and_exit_returns(world, shells, kind):
    if kind == "zsh":  # started by name, as a login shell is: argv[0] is "-zsh"
        argv = ["bash", "-c", "exec -a -zsh zsh -f -i"]
    else:
        argv = [require_program(kind), *PLAIN[kind]]
    world.write_rc(kind)
    sh = Shell(argv, world.env, world.home, wait=False)
    shells.append(sh)
    sh.run(SET_PROMPT[kind])
    sh.run(LOAD[kind])
    sh.child.sendline("qme on")
    sh.wait()  # the session's shell, with the prompt of the rc file
    sid = sh.session_id()
    sh.run('echo "ne""sted"', "nested")
    sh.run("exit")  # back in the outer shell
    sh.run("qme status", "not recording")
    assert sh.exit() == 0
    assert commands(world.tasks(sid)) == ['echo "ne""sted"', "exit"]


def test_qme_on_without_the_hooks_starts_a_session(world, shells):
    require_program("bash")
    world.write_rc("bash")
    env = {**world.env, "SHELL": require_program("bash")}
    sh = Shell(["bash", "--norc", "-i"], env, world.home, wait=False)
    shells.append(sh)
    sh.run(SET_PROMPT["bash"])
    sh.run("qme on")  # the program: starts $SHELL in a session
    sid = sh.session_id()
    sh.run('echo "bi""nary"', "binary")
    sh.run("exit")
    sh.run("qme status; echo rc=$?", "not recording", "rc=0")
    sh.run("qme off; echo rc=$?", "not recording", "rc=1")
    assert sh.exit() == 0
    assert commands(world.tasks(sid)) == ['echo "bi""nary"', "exit"]


AUTO = {
    "bash": 'eval "$(qme init bash --auto)"\n',
    "zsh": 'eval "$(qme init zsh --auto)"\n',
    "fish": "qme init fish --auto | source\n",
}


def test_init_auto_records_every_new_shell(world, shells, kind, request):
    require_program(kind)
    sh = world.plain(kind, rc=AUTO[kind])
    shells.append(sh)
    recording = re.search(STATUS_RE, sh.run("qme status"))
    assert recording, "no session started"
    sid = recording.group(1).decode()
    sh.run('echo "au""to"', "auto")
    assert sh.exit() == 0  # the session's exit ends the outer shell too
    assert commands(world.tasks(sid)) == ['echo "au""to"', "exit"]


def test_init_auto_without_qme_on_path_starts_the_shell_as_usual(world, shells, kind):
    require_program(kind)
    sh = world.plain(kind, rc=AUTO[kind], env={"PATH": "/usr/bin:/bin"})
    shells.append(sh)
    sh.run("qme status", "not found|Unknown command")  # the hooks are not loaded
    sh.run('echo "us""ual"', "usual")
    assert sh.exit() == 0
    assert not world.qme_home.exists()


# -- the files ---------------------------------------------------------------------------


def test_hook_files_parse(kind):
    hook = str(HOOKS / f"qme.{kind}")
    check = {
        "bash": [require_program("bash"), "-n", hook],
        "zsh": [require_program("zsh"), "-n", hook],
        "fish": [require_program("fish"), "--no-execute", hook],
    }[kind]
    result = subprocess.run(check, capture_output=True, text=True, timeout=10)
    assert result.returncode == 0 and not result.stderr, result.stderr


def test_shellcheck_passes_on_the_bash_hooks():
    shellcheck = require_program("shellcheck")
    result = subprocess.run(
        [shellcheck, "--shell=bash", str(HOOKS / "qme.bash")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    auto = subprocess.run(
        [sys.executable, "-m", "qme", "init", "bash", "--auto"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result = subprocess.run(
        [shellcheck, "--shell=bash", "-"], input=auto, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("shell", KINDS)
def test_init_prints_the_hook_file(qme, shell):
    text = (HOOKS / f"qme.{shell}").read_text()
    assert (ROOT / "shell" / f"qme.{shell}").read_text() == text  # the symlinks
    printed = qme("init", shell, "--no-completion")
    assert printed.returncode == 0 and printed.stdout.decode() == text
    assert qme("init", shell).stdout.decode().startswith(text)  # then the tab completion
    auto = qme("init", shell, "--auto")
    assert auto.stdout.decode().startswith(text)
    assert "qme session --shell" in auto.stdout.decode()[len(text) :]


def test_session_refuses_other_shells(qme):
    result = qme("session", "--shell", "/bin/sh")
    assert result.returncode == 1
    assert b"qme records bash, zsh and fish sessions, not sh" in result.stderr
