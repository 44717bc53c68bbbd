"""`qme run` on a real terminal: pexpect gives qme a pty, as a user's terminal would.

Every test drives the real program (`python -m qme run …`) and reads the record
back from the real SQLite store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import last_task, require_program, unavailable, wait_for

try:
    import pexpect
except ImportError:  # reported by the _env fixture: a failure under CI
    pexpect = None

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 15


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    if pexpect is None:
        unavailable("pexpect is not installed (pip install -e '.[test]')")
    # The spawned qme must import this tree whatever its cwd; programs that draw
    # on the screen need a terminal type (CI has none).
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("LS_COLORS", raising=False)
    monkeypatch.chdir(tmp_path)


def spawn_qme(*cmd: str, rows: int = 24, cols: int = 80, **kwargs):
    """`qme run CMD…` on a fresh pty of the given size."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qme", "run", *cmd],
        env=dict(os.environ),
        dimensions=(rows, cols),
        timeout=TIMEOUT,
        **kwargs,
    )
    return child


def finish(child) -> int:
    """Wait for qme to exit; return its exit status (128+N for signal N)."""
    child.expect(pexpect.EOF)
    child.close()
    if child.signalstatus is not None:
        return 128 + child.signalstatus
    return child.exitstatus


def _task_or_none(qme_home):
    from qme.errors import QmeError

    try:
        return last_task(qme_home)
    except QmeError:
        return None


def interactive_bash():
    """An interactive bash without rc files, with a prompt that is easy to expect."""
    env = {**os.environ, "PS1": "PROMPT> ", "PS2": "", "HISTFILE": "/dev/null"}
    shell = pexpect.spawn(
        "bash",
        ["--norc", "--noprofile", "-i"],
        env=env,
        dimensions=(24, 80),
        timeout=TIMEOUT,
        echo=False,
    )
    shell.expect_exact("PROMPT> ")
    return shell


def shell_run(shell, line: str) -> str:
    """Run one line in the interactive bash; return what it printed."""
    shell.sendline(line)
    shell.expect_exact("PROMPT> ")
    return shell.before.decode(errors="replace")


QME = f"{sys.executable} -m qme run"


# -- the command sees a terminal --------------------------------------------------------


def test_command_sees_a_terminal_on_stdin_stdout_and_stderr(qme_home):
    child = spawn_qme("sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo ALL-TTY")
    child.expect_exact("ALL-TTY")
    assert finish(child) == 0
    task = last_task(qme_home)
    assert task.status == "complete"
    assert b"ALL-TTY" in task.output


def test_stdout_and_stderr_are_separate_terminals(qme_home):
    # Two different ptys: stdout's and stderr's device names differ, both are ttys.
    child = spawn_qme("sh", "-c", "tty; readlink /proc/self/fd/2")
    assert finish(child) == 0
    out = last_task(qme_home).output.decode().split()
    assert len(out) == 2 and all(name.startswith("/dev/pts/") for name in out), out
    assert out[0] != out[1]


def test_ls_color_auto_emits_colours(qme_home, tmp_path):
    (tmp_path / "somedir").mkdir()
    (tmp_path / "script.sh").write_text("#!/bin/sh\n")
    (tmp_path / "script.sh").chmod(0o755)
    child = spawn_qme("ls", "--color=auto", str(tmp_path))
    child.expect_exact("somedir")
    assert finish(child) == 0
    output = last_task(qme_home).output
    assert b"\x1b[" in output, output  # colour escapes: ls saw a terminal
    assert b"somedir" in output


def test_grep_color_auto_emits_colours(qme_home, tmp_path):
    (tmp_path / "words").write_text("alpha\nneedle here\nomega\n")
    child = spawn_qme("grep", "--color=auto", "needle", str(tmp_path / "words"))
    assert finish(child) == 0
    output = last_task(qme_home).output
    assert b"\x1b[" in output and b"needle" in output, output
    assert b"alpha" not in output


def test_a_prompt_can_be_answered(qme_home):
    child = spawn_qme("bash", "-c", 'read -p "name? " x; echo "hi $x"')
    child.expect_exact("name? ")
    child.sendline("Ada")
    child.expect_exact("hi Ada")
    assert finish(child) == 0
    task = last_task(qme_home)
    assert b"hi Ada" in task.output
    assert b"name? " in task.error  # bash writes read's prompt on stderr
    assert task.status == "complete"


def test_typed_input_reaches_the_command_and_eof_ends_it(qme_home):
    child = spawn_qme("sh", "-c", "echo ready; exec cat")
    child.expect_exact("ready")
    child.sendline("typed line")
    child.expect_exact("typed line")  # the echo of the pty …
    child.expect_exact("typed line")  # … and cat's copy
    child.sendeof()
    assert finish(child) == 0
    assert last_task(qme_home).output.count(b"typed line") == 2


def test_a_command_that_closes_its_terminal_runs_on_to_its_own_end(qme_home):
    # qme must not hang up the command's pty once its output has ended: that would
    # kill it with SIGHUP before it exits (as `cat` after Ctrl-D, sometimes).
    child = spawn_qme("sh", "-c", "echo bye; exec <&- >&- 2>&-; sleep 0.5; exit 7")
    child.expect_exact("bye")
    assert finish(child) == 7
    task = last_task(qme_home)
    assert (task.status, task.returncode, task.signal) == ("failed", 7, None)


def test_typeahead_before_qme_is_ready_is_not_lost(qme_home):
    # Keys typed while qme starts up (before it puts the terminal in raw mode)
    # must reach the command, as they would without qme.
    child = spawn_qme("sh", "-c", 'read line; echo "got:$line"')
    child.sendline("early")
    child.expect_exact("got:early")
    assert finish(child) == 0
    assert b"got:early" in last_task(qme_home).output


# -- Ctrl-C, Ctrl-Z, exit codes ---------------------------------------------------------


def test_ctrl_c_interrupts_the_command_fast_and_records_cancelled(qme_home):
    # "started" is printed by qme's copy loop, so the terminal is raw by then.
    child = spawn_qme("sh", "-c", "echo started; exec sleep 30")
    child.expect_exact("started")
    begin = time.monotonic()
    child.sendintr()
    assert finish(child) == 130
    assert time.monotonic() - begin < 5
    task = last_task(qme_home)
    assert task.status == "cancelled"
    assert task.returncode == 130
    assert task.signal == signal.SIGINT


def test_exit_code_is_passed_on(qme_home):
    child = spawn_qme("sh", "-c", "exit 3")
    assert finish(child) == 3
    task = last_task(qme_home)
    assert (task.returncode, task.status) == (3, "failed")


def test_exit_130_counts_as_cancelled(qme_home):
    child = spawn_qme("sh", "-c", "exit 130")
    assert finish(child) == 130
    assert last_task(qme_home).status == "cancelled"


def test_death_by_signal_gives_128_plus_n(qme_home):
    child = spawn_qme("sh", "-c", "kill -TERM $$")
    assert finish(child) == 128 + signal.SIGTERM
    task = last_task(qme_home)
    assert (task.returncode, task.signal, task.status) == (143, signal.SIGTERM, "cancelled")


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "normal"])
def test_terminal_modes_are_restored(qme_home, how):
    shell = interactive_bash()
    before = shell_run(shell, "stty -g").strip()
    assert before.count(":") > 10, before
    if how == "normal":
        out = shell_run(shell, f"{QME} sh -c 'echo done-normally'; echo rc=$?")
        assert "done-normally" in out and "rc=0" in out
    else:
        shell.sendline(f"{QME} sh -c 'echo started $$; exec sleep 30'; echo rc=$?")
        shell.expect(r"started (\d+)")
        if how == "ctrl-c":
            shell.sendintr()
        else:  # the recorder itself is told to stop, as by `kill` or a closing window
            qme_pid = int(
                subprocess.check_output(["ps", "-o", "ppid=", "-p", shell.match.group(1).decode()])
            )
            os.kill(qme_pid, signal.SIGTERM)
        shell.expect(r"rc=(\d+)")
        assert int(shell.match.group(1)) in (130, 143)
        shell.expect_exact("PROMPT> ")
    after = shell_run(shell, "stty -g").strip()
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    assert after == before
    assert last_task(qme_home).status in ("complete", "cancelled")


def test_ctrl_z_suspends_and_fg_resumes(qme_home, tmp_path):
    go = tmp_path / "go"
    shell = interactive_bash()
    shell.sendline(
        f"{QME} sh -c 'echo started; while [ ! -e {go} ]; do sleep 0.05; done; echo finished'"
    )
    shell.expect_exact("started")
    wait_for(lambda: _task_or_none(qme_home), what="the task to be recorded")
    shell.sendcontrol("z")
    shell.expect("Stopped")
    shell.expect_exact("PROMPT> ")
    # qme and the command are stopped: the task is still running, not lost.
    task = last_task(qme_home)
    assert task.status == "running"
    jobs = shell_run(shell, "jobs")
    assert "Stopped" in jobs and "qme run" in jobs
    go.touch()
    time.sleep(0.3)  # were it not stopped, the command would finish now
    assert last_task(qme_home).status == "running"
    shell.sendline("fg")
    shell.expect_exact("finished")
    shell.expect_exact("PROMPT> ")
    assert "rc=0" in shell_run(shell, "echo rc=$?")
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    task = last_task(qme_home)
    assert task.status == "complete" and task.returncode == 0
    assert b"started" in task.output and b"finished" in task.output


def test_a_command_stopped_at_once_shows_as_running_while_stopped(qme_home):
    """qme stops with it before its writer child's usual start: it starts it first."""
    shell = interactive_bash()
    shell.sendline(f"{QME} sh -c 'kill -TSTP $$; echo resumed'")
    shell.expect("Stopped")
    shell.expect_exact("PROMPT> ")
    task = wait_for(lambda: _task_or_none(qme_home), what="the task to be recorded")
    assert task.status == "running"
    shell.sendline("fg")
    shell.expect_exact("resumed")
    shell.expect_exact("PROMPT> ")
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    assert last_task(qme_home).status == "complete"


# -- window size ------------------------------------------------------------------------


def test_window_size_is_passed_on(qme_home):
    child = spawn_qme("sh", "-c", "stty size; stty size <&2", rows=33, cols=101)
    assert finish(child) == 0
    task = last_task(qme_home)
    assert task.output.split() == [b"33", b"101", b"33", b"101"], task.output
    assert (task.term_rows, task.term_cols) == (33, 101)


def test_resize_reaches_the_command(qme_home):
    script = (
        'trap "stty size; stty size <&2; exit 0" WINCH; echo ready; '
        "i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; exit 1"
    )
    child = spawn_qme("bash", "-c", script, rows=24, cols=80)
    child.expect_exact("ready")
    child.setwinsize(40, 120)
    child.expect_exact("40 120")
    child.expect_exact("40 120")  # stderr's pty was resized too
    assert finish(child) == 0


# -- recording on ptys ------------------------------------------------------------------


def test_stdout_and_stderr_are_recorded_apart(qme_home):
    child = spawn_qme("sh", "-c", "echo out; echo err >&2")
    child.expect_exact("out")
    child.expect_exact("err")
    assert finish(child) == 0
    task = last_task(qme_home)
    assert task.output == b"out\r\n"
    assert task.error == b"err\r\n"


def test_qme_prints_nothing_of_its_own_on_a_terminal(qme_home):
    child = spawn_qme("printf", "exactly-this")
    child.expect(pexpect.EOF)
    assert child.before == b"exactly-this"
    child.close()
    assert child.exitstatus == 0


def test_running_task_is_visible_with_its_output_so_far(qme, qme_home, tmp_path):
    go = tmp_path / "go"
    child = spawn_qme(
        "sh", "-c", f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second"
    )
    child.expect_exact("first")

    def output_so_far():
        result = qme("get", "--output")
        return result.returncode == 0 and b"first" in result.stdout

    wait_for(output_so_far, what="'first' in the running task's output")
    listing = qme("ls")
    assert listing.returncode == 0
    assert "running" in listing.stdout.decode()
    assert last_task(qme_home).status == "running"
    go.touch()
    child.expect_exact("second")
    assert finish(child) == 0
    task = last_task(qme_home)
    assert task.status == "complete"
    assert task.output == b"first\r\nsecond\r\n"


# -- mixed: some streams a terminal, some not -------------------------------------------


def test_stdin_terminal_stdout_pipe(qme_home):
    line = (
        f"{QME} sh -c 'test -t 0 && echo in-tty; test -t 1 || echo out-pipe; "
        "test -t 2 && echo err-tty >&2' | cat"
    )
    child = pexpect.spawn("bash", ["-c", line], env=dict(os.environ), timeout=TIMEOUT)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    task = last_task(qme_home)
    assert task.output == b"in-tty\nout-pipe\n"  # a pipe: no \r added
    assert task.error == b"err-tty\r\n"


def test_stdin_pipe_stdout_terminal(qme_home):
    line = f"printf 'piped\\n' | {QME} sh -c 'test -t 0 || echo in-pipe; test -t 1 && cat'"
    child = pexpect.spawn("bash", ["-c", line], env=dict(os.environ), timeout=TIMEOUT)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert last_task(qme_home).output == b"in-pipe\r\npiped\r\n"


# -- full-screen programs ---------------------------------------------------------------


def test_less_pages_a_file_and_quits(qme_home, tmp_path):
    require_program("less")
    text = tmp_path / "long.txt"
    text.write_text("".join(f"line number {i}\n" for i in range(1, 201)))
    child = spawn_qme("less", str(text), rows=20, cols=60)
    child.expect_exact("line number 19")
    child.send(" ")  # next page
    child.expect_exact("line number 38")
    child.send("q")
    assert finish(child) == 0
    task = last_task(qme_home)
    assert task.status == "complete"
    assert b"line number 38" in task.output
    assert b"line number 200" not in task.output


def test_vim_edits_a_file(qme_home, tmp_path):
    require_program("vim")
    target = tmp_path / "edited.txt"
    child = spawn_qme("vim", "-u", "NONE", "-i", "NONE", "-N", "-n", str(target))
    child.expect_exact("edited.txt")
    child.send("ihello from vim")
    child.send("\x1b")  # Esc must reach vim as a key
    child.send(":wq\r")
    assert finish(child) == 0
    assert target.read_text() == "hello from vim\n"
    task = last_task(qme_home)
    assert task.status == "complete"
    assert b"\x1b[" in task.output  # vim drew on the screen


def test_pager_reading_keys_from_stderrs_terminal(qme_home):
    # less reads keys from the terminal of its stderr (ttyname(2)), here through a
    # pipe on stdin as under `git log` or `man`.
    require_program("less")
    child = spawn_qme("sh", "-c", "seq -f 'row %g' 1 300 | less", rows=20, cols=60)
    child.expect_exact("row 19")
    child.send(" ")
    child.expect_exact("row 38")
    child.send("G")  # to the end
    child.expect_exact("row 300")
    child.send("q")
    assert finish(child) == 0
    assert last_task(qme_home).status == "complete"


@pytest.mark.parametrize("program", ["vim", "less"])
def test_ctrl_z_in_a_full_screen_program(qme_home, tmp_path, program):
    # vim and less handle Ctrl-Z themselves (restore the screen, then stop).
    require_program(program)
    target = tmp_path / "file.txt"
    target.write_text("".join(f"text line {i}\n" for i in range(1, 100)))
    argv = ["vim", "-u", "NONE", "-i", "NONE", "-N", "-n"] if program == "vim" else ["less"]
    shell = interactive_bash()
    shell.sendline(f"{QME} {' '.join(argv)} {target}")
    shell.expect_exact("text line 5")
    wait_for(lambda: _task_or_none(qme_home), what="the task to be recorded")
    shell.sendcontrol("z")
    shell.expect("Stopped")
    shell.expect_exact("PROMPT> ")
    assert last_task(qme_home).status == "running"
    shell.sendline("fg")
    shell.expect_exact("text line 5")  # redrawn
    shell.send(":q\r" if program == "vim" else "q")
    shell.expect_exact("PROMPT> ")
    assert "rc=0" in shell_run(shell, "echo rc=$?")
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    assert last_task(qme_home).status == "complete"


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[3]) == sid:
                members.append(int(entry))
    return members


def test_no_process_of_the_commands_session_outlives_it(qme_home):
    # The command leads a session of its own; qme's helpers in it must leave too.
    child = spawn_qme("sh", "-c", "echo session=$$; sleep 0.3")
    child.expect(r"session=(\d+)")
    sid = int(child.match.group(1))
    assert sid in _session_members(sid)
    assert finish(child) == 0
    wait_for(lambda: not _session_members(sid), timeout=5, what="the session to empty")


# -- the keyboard when stdin is not the terminal, and background jobs -------------------


def test_pager_on_piped_input_still_reads_the_keyboard(qme_home, tmp_path):
    require_program("less")
    text = tmp_path / "long.txt"
    text.write_text("".join(f"line number {i}\n" for i in range(1, 201)))
    shell = interactive_bash()
    shell.sendline(f"cat {text} | {QME} less")
    shell.expect_exact("line number 19")
    shell.send(" ")  # keys come from /dev/tty, as less itself does
    shell.expect_exact("line number 38")
    shell.send("q")
    shell.expect_exact("PROMPT> ")
    assert "rc=0" in shell_run(shell, "echo rc=$?")
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    assert last_task(qme_home).status == "complete"


def test_a_background_job_runs_on_without_being_stopped(qme_home, tmp_path):
    done = tmp_path / "done"
    shell = interactive_bash()
    # Without care, qme would touch the terminal from the background and be stopped
    # by SIGTTOU/SIGTTIN, holding the command back.
    shell.sendline(f"{QME} sh -c 'sleep 0.5; echo background-done; touch {done}' &")
    shell.expect_exact("PROMPT> ")
    wait_for(done.exists, what="the background command to finish")
    shell.expect_exact("background-done")
    jobs = shell_run(shell, "sleep 0.5; jobs -l")
    assert "Stopped" not in jobs
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    task = last_task(qme_home)
    assert task.status == "complete" and b"background-done" in task.output


# -- a lost write is a lost record ------------------------------------------------------

# Writes to its stderr, closes it (its pty then answers qme's reads with EIO), and
# writes again through the terminal's name, as a program that reopens its terminal
# does: the pty is back.
REOPENS_ITS_TERMINAL = """
import os, time
name = os.ttyname(2)
os.write(2, b"before the close\\n")
os.close(2)
time.sleep(0.4)
fd = os.open(name, os.O_WRONLY | os.O_NOCTTY)
os.write(fd, b"after it\\n")
os.close(fd)
time.sleep(1.5)
"""


def test_a_pty_that_answered_eio_is_still_read(qme_home):
    """EIO from a pty is not its end (issue 16, item 13): Linux may answer it before
    the last bytes written are readable, and a program may open its terminal
    again. What comes after is shown while the command runs and recorded."""
    child = spawn_qme(sys.executable, "-c", REOPENS_ITS_TERMINAL)
    child.expect_exact("before the close")
    started = time.monotonic()
    child.expect_exact("after it")
    assert time.monotonic() - started < 1.2  # shown as it came, not at the end
    assert finish(child) == 0
    task = last_task(qme_home)
    assert task.error == b"before the close\r\nafter it\r\n"


STRESS_RUNS = 30


@pytest.mark.slow
@pytest.mark.parametrize("how", ["run", "picked-rerun"])
def test_a_failing_ls_keeps_its_whole_error_under_load(qme_home, tmp_path, how):
    """GNU ls writes its error in four pieces ('ls: ', 'cannot access …', ': No such
    …', newline); a rerun once kept only the first (issue 16): Linux answered EIO
    before the rest was readable (see test_a_pty_that_answered_eio_is_still_read).
    Every record, made by `qme run` or by a rerun picked on a terminal, keeps all
    of it, with the CPUs busy."""
    from collections import Counter

    from qme import Queue

    missing = tmp_path / "no-such-dir"
    expected = f"ls: cannot access '{missing}': No such file or directory\r\n".encode()
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        assert finish(spawn_qme("ls", str(missing))) == 2
        for _ in range(STRESS_RUNS):
            if how == "run":
                child = spawn_qme("ls", str(missing))
            else:
                child = pexpect.spawn(
                    sys.executable,
                    ["-m", "qme", "rerun"],
                    env=dict(os.environ),
                    dimensions=(24, 100),
                    timeout=TIMEOUT,
                )
                child.expect("Rerun which task")
                child.send("\r")
            assert finish(child) == 2
    finally:
        for process in busy:
            process.kill()
            process.wait()
    with Queue(config_dir=qme_home) as queue:
        tasks = [queue.get(task.id) for task in queue.list()]
    errors = Counter(task.error for task in tasks)
    # What qme counted (error_size, timing) against what the store has, to tell
    # a read the pump missed from a write the writer lost.
    odd = [
        (t.error, t.error_size, t.timing, t.status, t.returncode)
        for t in tasks
        if t.error != expected
    ]
    assert errors == {expected: STRESS_RUNS + 1}, odd


CLOSES = 10


@pytest.mark.parametrize("how", ["run", "rerun"])
def test_a_terminal_closed_as_the_command_ends_keeps_the_record(qme_home, tmp_path, how):
    """The terminal is closed the moment the output shows (pexpect's close: SIGHUP,
    SIGCONT, SIGINT, then SIGKILL 0.1 s apart), as a user closing a tab would: the
    signals wait until the record is handed over, so every task is there, with
    what ls wrote. Before, 19 of 30 `qme run` and 17 of 30 `qme rerun` records
    were lost."""
    from qme import Queue

    missing = tmp_path / "no-such-dir"
    expected = f"ls: cannot access '{missing}': No such file or directory\r\n".encode()
    assert finish(spawn_qme("ls", str(missing))) == 2
    with Queue(config_dir=qme_home) as queue:
        first = queue.list()[0].id
    for _ in range(CLOSES):
        args = ["run", "ls", str(missing)] if how == "run" else ["rerun", first]
        child = pexpect.spawn(
            sys.executable, ["-m", "qme", *args], env=dict(os.environ), timeout=TIMEOUT
        )
        child.expect_exact("ls: ")
        child.close(force=True)

    def recorded():
        with Queue(config_dir=qme_home) as queue:
            tasks = [t for t in queue.list() if t.finished]
            return tasks if len(tasks) == CLOSES + 1 else None

    tasks = wait_for(recorded, what=f"{CLOSES + 1} finished tasks")
    with Queue(config_dir=qme_home) as queue:
        for task in tasks:
            error = queue.read(task.id, "error")
            # ls's whole message, or its start when the closed terminal's SIGHUP
            # (which qme passes on) ended ls between its pieces ('ls: ', 'cannot …')
            assert error and expected.startswith(error), (task.status, task.returncode)
