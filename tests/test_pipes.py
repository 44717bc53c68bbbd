"""`qme run` with pipes and files: the command gets pipes (or inherits stdin), the bytes
are copied through unchanged and recorded, and qme adds nothing of its own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import last_task, start_run, wait_for

ROOT = Path(__file__).resolve().parent.parent
QME = [sys.executable, "-m", "qme"]
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
    monkeypatch.chdir(tmp_path)


def all_tasks(qme_home):
    from qme import Queue

    queue = Queue(config_dir=qme_home)
    try:
        return [queue.get(t.id) for t in queue.list(limit=None)]
    finally:
        queue.close()


def sh(line: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """A shell pipeline; `QME` in it runs this tree's qme."""
    qme = " ".join(QME)
    return subprocess.run(
        ["bash", "-c", line.replace("QME", qme)],
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def python_cmd(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# -- pass-through -----------------------------------------------------------------------


def test_ls_through_a_pipe_counts_what_ls_counts(qme_home, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(17):
        (folder / f"file {i}").touch()
    plain = sh(f"ls '{folder}' | wc -l")
    wrapped = sh(f"QME run ls '{folder}' | wc -l")
    assert wrapped.returncode == 0, wrapped.stderr
    assert int(wrapped.stdout) == int(plain.stdout) == 17
    assert wrapped.stderr == b""
    assert last_task(qme_home).output.count(b"\n") == 17


def test_command_sees_pipes_not_terminals(qme, qme_home):
    result = qme(
        "run",
        "sh",
        "-c",
        "[ -t 0 ] || echo in-not-tty; [ -t 1 ] || echo out-not-tty; [ -t 2 ] || echo err-not-tty",
    )
    assert result.returncode == 0
    assert result.stdout == b"in-not-tty\nout-not-tty\nerr-not-tty\n"
    task = last_task(qme_home)
    assert (task.term_cols, task.term_rows) == (None, None)


def test_stdin_from_a_file(qme, qme_home, tmp_path):
    data = tmp_path / "unsorted"
    data.write_bytes(b"pear\napple\nfig\n")
    with data.open("rb") as stdin:
        result = subprocess.run([*QME, "run", "sort"], stdin=stdin, capture_output=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout == b"apple\nfig\npear\n"
    assert last_task(qme_home).output == b"apple\nfig\npear\n"


@pytest.mark.parametrize("closed", [(0,), (1,), (2,), (0, 1, 2)])
def test_closed_stdio_reads_and_writes_as_dev_null(qme_home, closed):
    redirections = " ".join(f"{fd}>&-" for fd in closed)
    result = sh(f"QME run sh -c 'echo out; echo err >&2; cat; exit 3' {redirections}")
    assert result.returncode == 3
    assert b"Traceback" not in result.stderr
    assert result.stdout == (b"" if 1 in closed else b"out\n")
    assert result.stderr == (b"" if 2 in closed else b"err\n")
    [task] = all_tasks(qme_home)
    assert (task.output, task.error, task.returncode) == (b"out\n", b"err\n", 3)


def test_stdin_through_a_pipe_reaches_the_command(qme):
    result = qme("run", "tr", "a-z", "A-Z", input=b"shout\n")
    assert (result.returncode, result.stdout) == (0, b"SHOUT\n")


def test_a_quoted_shell_line(qme, qme_home):
    result = qme("run", "printf 'a b\\nc d\\n' | tr a-z A-Z | grep -v C")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"A B\n"
    task = last_task(qme_home)
    assert task.command == "printf 'a b\\nc d\\n' | tr a-z A-Z | grep -v C"
    assert task.argv[1:] == ["-c", task.command]
    assert task.output == b"A B\n"


def test_options_after_the_command_are_the_commands(qme, qme_home):
    show = "import sys; print(sys.argv[1:])"
    for prefix in (["--"], []):
        result = qme("run", *prefix, *python_cmd(show), "--help", "-v", "-m", "x")
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"['--help', '-v', '-m', 'x']\n"
        assert result.stderr == b""
    assert last_task(qme_home).argv[-4:] == ["--help", "-v", "-m", "x"]


def test_qme_options_before_the_command(qme, qme_home):
    result = qme("run", "-m", "a note", "-v", "echo", "hi")
    assert result.returncode == 0
    assert result.stdout == b"hi\n"  # nothing of qme's on stdout, even with -v
    task = last_task(qme_home)
    assert task.message == "a note"
    assert result.stderr.decode().strip() == f"[{task.id}][returncode: 0]"


def test_nothing_of_qmes_own_on_stdout_or_stderr(qme):
    result = qme("run", "true")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    result = qme("run", "sh", "-c", "echo to-out; echo to-err >&2")
    assert (result.stdout, result.stderr) == (b"to-out\n", b"to-err\n")


def test_stdout_and_stderr_recorded_apart(qme, qme_home):
    result = qme("run", "sh", "-c", "echo one; echo two >&2; echo three")
    assert result.returncode == 0
    task = last_task(qme_home)
    assert (task.output, task.error) == (b"one\nthree\n", b"two\n")
    assert (task.output_size, task.error_size) == (10, 4)


def test_yes_into_head_ends_promptly_with_sigpipe(qme_home):
    begin = time.monotonic()
    result = sh('QME run yes | head -1; echo "status=${PIPESTATUS[0]}"', timeout=20)
    assert time.monotonic() - begin < 10
    assert result.stdout == b"y\nstatus=141\n"  # as `yes | head -1` without qme
    assert result.stderr == b""
    task = last_task(qme_home)
    assert (task.returncode, task.signal) == (141, signal.SIGPIPE)
    assert task.status == "failed"  # killed by a signal, but not an interruption
    assert task.output.startswith(b"y\ny\n")


# -- bytes kept exactly -----------------------------------------------------------------

BINARY = bytes(range(256)) * 64 + b"\xff\xfe not utf-8 \xc3\x28 \x00\x1b[31m\r\n\r"


def test_binary_and_non_utf8_output_byte_for_byte(qme, qme_home):
    code = (
        "import sys; data = open(sys.argv[1], 'rb').read(); "
        "sys.stdout.buffer.write(data); sys.stderr.buffer.write(data[::-1])"
    )
    blob = Path("blob.bin")
    blob.write_bytes(BINARY)
    result = qme("run", *python_cmd(code), str(blob))
    assert result.returncode == 0
    assert result.stdout == BINARY
    assert result.stderr == BINARY[::-1]
    assert qme("get", "--output").stdout == BINARY
    assert qme("get", "--error").stdout == BINARY[::-1]
    task = last_task(qme_home)
    assert (task.output, task.error) == (BINARY, BINARY[::-1])


def test_last_line_without_newline_is_kept(qme, qme_home):
    result = qme("run", "printf", "first\\nno newline at the end")
    assert result.stdout == b"first\nno newline at the end"
    assert qme("get", "--output").stdout == b"first\nno newline at the end"


def test_empty_output(qme, qme_home):
    result = qme("run", "true")
    assert result.returncode == 0
    task = last_task(qme_home)
    assert (task.output, task.error, task.output_size) == (b"", b"", 0)
    assert task.status == "complete"


# -- exit codes and failures to start ---------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 2, 42, 255])
def test_exit_code_passed_on(qme, qme_home, code):
    result = qme("run", "sh", "-c", f"exit {code}")
    assert result.returncode == code
    task = last_task(qme_home)
    assert task.returncode == code
    assert task.status == ("complete" if code == 0 else "failed")


def test_no_such_command(qme, qme_home):
    result = qme("run", "nosuchcmd-qme-test", "arg")
    assert result.returncode == 127
    assert result.stdout == b""
    assert b"nosuchcmd-qme-test" in result.stderr
    assert b"not found" in result.stderr
    assert result.stderr.count(b"\n") == 1
    task = last_task(qme_home)
    assert (task.status, task.returncode) == ("failed", 127)
    assert b"nosuchcmd-qme-test" in task.error and b"not found" in task.error


def test_not_executable(qme, qme_home, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    result = qme("run", str(script))
    assert result.returncode == 126
    assert b"never" not in result.stdout
    assert b"ermission denied" in result.stderr
    assert last_task(qme_home).status == "failed"


def test_runs_in_a_deleted_working_directory(qme_home, tmp_path):
    # Without qme the command runs (the shell warns); with qme it must run too.
    gone = tmp_path / "gone"
    gone.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
            "os.execv(sys.executable, [sys.executable, '-m', 'qme', 'run', 'sh', '-c', "
            "'echo ran; exit 3'])",
            str(gone),
        ],
        capture_output=True,
        timeout=30,
    )
    assert b"Traceback" not in result.stderr
    assert result.stdout == b"ran\n", result.stderr
    assert result.returncode == 3


def test_killed_by_a_signal_gives_128_plus_n(qme, qme_home):
    result = qme("run", "sh", "-c", "kill -KILL $$")
    assert result.returncode == 128 + signal.SIGKILL
    task = last_task(qme_home)
    assert (task.returncode, task.signal, task.status) == (137, signal.SIGKILL, "cancelled")


def test_sigterm_to_qme_is_passed_on(qme_home, tmp_path):
    ready = tmp_path / "ready"
    script = f"trap 'echo got-term; exit 7' TERM; touch {ready}; while :; do sleep 0.05; done"
    proc = start_run("sh", "-c", script)
    try:
        deadline = time.monotonic() + 15
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 7
    assert out == b"got-term\n"
    task = last_task(qme_home)
    assert (task.returncode, task.status) == (7, "failed")


# -- the output cap ---------------------------------------------------------------------

LINE = "{:08d} the quick brown fox jumps over the lazy dog\n"


def numbered(count: int) -> bytes:
    return "".join(LINE.format(i) for i in range(count)).encode()


def test_small_cap_keeps_head_marker_and_tail(qme, qme_home, tmp_path):
    data = numbered(40_000)  # 2 MB
    source = tmp_path / "data.txt"
    source.write_bytes(data)
    result = qme("run", "cat", str(source), env={"QME_MAX_OUTPUT": "64K"})
    assert result.returncode == 0
    assert result.stdout == data  # the terminal (here: pipe) gets everything
    stored = last_task(qme_home).output
    half = 32 * 1024
    cut = len(data) - 2 * half
    marker = b"\r\n[qme: %d bytes not kept]\r\n" % cut
    assert stored == data[:half] + marker + data[-half:]
    task = last_task(qme_home)
    assert task.output_size == len(data)
    assert qme("get", "--output").stdout == stored


def test_output_just_under_the_cap_is_kept_whole(qme, qme_home):
    data = numbered(1000)[: 64 * 1024]
    Path("exact.txt").write_bytes(data)
    qme("run", "cat", "exact.txt", env={"QME_MAX_OUTPUT": "64K"})
    assert last_task(qme_home).output == data


def test_cap_of_zero_keeps_everything(qme, qme_home):
    data = numbered(30_000)
    Path("big.txt").write_bytes(data)
    qme("run", "cat", "big.txt", env={"QME_MAX_OUTPUT": "0"})
    assert last_task(qme_home).output == data


# Runs qme from a fresh, small Python and writes qme's peak RSS (KiB) to argv[1]. Not
# measured from pytest itself: on exec, Linux counts the pre-exec image of the forked
# parent (pytest's, larger than qme's) into the child's ru_maxrss.
_RSS_WRAPPER = """
import os, resource, subprocess, sys
status = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(status)
"""


def _peak_rss_of_qme(argv: list[str], env: dict, stdout) -> tuple[int, int]:
    """Run qme and return (exit status, peak RSS in bytes).

    That is the largest of qme and the command (`head`, tiny), so qme's own.
    """
    report = Path("peak-rss")
    status = subprocess.call(
        [sys.executable, "-c", _RSS_WRAPPER, str(report), *argv],
        env=env,
        stdout=stdout,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    return status, int(report.read_text()) * 1024


def _gibibyte_through_qme(env: dict) -> int:
    """`qme run head -c 1G /dev/zero | wc -c`: check the count, return qme's peak RSS."""
    size = 1 << 30
    counter = subprocess.Popen(["wc", "-c"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    status, peak = _peak_rss_of_qme(
        [*QME, "run", "head", "-c", str(size), "/dev/zero"], env, counter.stdin
    )
    counter.stdin.close()
    counted = int(counter.stdout.read())
    counter.wait()
    assert status == 0
    assert counted == size
    return peak


@pytest.mark.slow
def test_a_gibibyte_passes_through_in_flat_memory(qme_home):
    # A small cap: what is measured is the copying and capturing, not the store.
    peak = _gibibyte_through_qme({**os.environ, "QME_MAX_OUTPUT": "64K"})
    assert peak <= 32 * MiB, f"qme's peak RSS was {peak / MiB:.1f} MiB"
    task = last_task(qme_home)
    assert task.output_size == 1 << 30
    marker = b"\r\n[qme: %d bytes not kept]\r\n" % ((1 << 30) - 64 * 1024)
    assert task.output == b"\0" * (32 * 1024) + marker + b"\0" * (32 * 1024)


@pytest.mark.slow
def test_a_gibibyte_with_the_default_cap_stays_within_32_mib(qme_home):
    peak = _gibibyte_through_qme(dict(os.environ))
    task = last_task(qme_home)
    half = MiB // 2  # default cap: 1M, half head, half tail
    marker = b"\r\n[qme: %d bytes not kept]\r\n" % ((1 << 30) - 2 * half)
    assert task.output_size == 1 << 30
    assert task.output == b"\0" * half + marker + b"\0" * half
    assert peak <= 32 * MiB, f"qme's peak RSS was {peak / MiB:.1f} MiB"


# -- many at once -----------------------------------------------------------------------


@pytest.mark.slow
def test_fifty_in_parallel_lose_nothing(qme_home):
    procs = [
        subprocess.Popen(
            [*QME, "run", "sh", "-c", f"echo parallel-{i}; echo err-{i} >&2; exit {i % 3}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        for i in range(50)
    ]
    results = [(p, *p.communicate(timeout=120)) for p in procs]
    for i, (proc, out, err) in enumerate(results):
        assert out == f"parallel-{i}\n".encode()
        assert err == f"err-{i}\n".encode(), err  # no warning, no "database is locked"
        assert proc.returncode == i % 3
    tasks = all_tasks(qme_home)
    assert len(tasks) == 50
    by_output = {t.output: t for t in tasks}
    for i in range(50):
        task = by_output[f"parallel-{i}\n".encode()]
        assert task.error == f"err-{i}\n".encode()
        assert task.returncode == i % 3
        assert task.status == ("complete" if i % 3 == 0 else "failed")


def test_a_reader_that_does_not_read_still_lets_the_task_show(qme, qme_home, tmp_path):
    """qme blocked writing to a full pipe (`qme run cmd | less`, less waiting for
    a key) still starts its writer, so the task shows as running."""
    go = tmp_path / "go"
    reader = f"while [ ! -e {go} ]; do sleep 0.05; done; cat > /dev/null"
    proc = subprocess.Popen(
        ["bash", "-c", f"{' '.join(QME)} run seq 1000000 | {{ {reader}; }}"],
        stdin=subprocess.DEVNULL,
    )
    try:
        task = wait_for(lambda: all_tasks(qme_home), what="the task")[0]
        assert (task.command, task.status) == ("seq 1000000", "running")
        go.touch()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert last_task(qme_home).status == "complete"


def test_output_is_streamed_while_the_command_runs(qme, qme_home, tmp_path):
    go = tmp_path / "go"
    proc = start_run("sh", "-c", f"echo early; while [ ! -e {go} ]; do sleep 0.05; done; echo late")
    try:
        assert proc.stdout.readline() == b"early\n"  # not held back by qme
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = qme("get", "--output")
            if got.returncode == 0 and got.stdout == b"early\n":
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the running task's output never showed 'early'")
        listing = qme("ls").stdout.decode()
        assert re.search(r"\brunning\b", listing), listing
        go.touch()
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert out == b"late\n" and err == b""
    task = last_task(qme_home)
    assert (task.status, task.output) == ("complete", b"early\nlate\n")
