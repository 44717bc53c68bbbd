"""Small assertions and look-ups shared by the test modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

ON_CI = os.environ.get("CI") == "true"


def ok(result) -> str:
    """A `qme` run that succeeded: its stdout."""
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def one_error_line(result, code=1) -> str:
    """A failure is one `qme: error:` line on stderr, never a traceback."""
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("qme: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def last_task(qme_home):
    """The last task in the store at qme_home, read through the API."""
    from qme import Queue

    queue = Queue(config_dir=qme_home)
    try:
        return queue.get()
    finally:
        queue.close()


def wait_for(predicate, timeout: float = 15, what: str = "condition"):
    """Poll predicate until it returns something true; fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def unavailable(reason: str):
    """Skip a test whose component is missing, but fail it under CI, where
    scripts/test.sh installs (and starts) every component the tests need."""
    if ON_CI:
        pytest.fail(f"{reason} (scripts/test.sh provides it under CI)")
    pytest.skip(reason)


def require_module(name: str, why: str):
    """The imported module; see unavailable() for when it is missing (scripts/test.sh
    installs the test extra, so under CI it must be there)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(f"{name} is not installed ({why})")


def require_program(name: str) -> str:
    """The program's path; see unavailable() for when it is missing."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed")
    return path


def start_run(*command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`qme run COMMAND` in the background, stdout and stderr piped, no stdin."""
    return subprocess.Popen(
        [sys.executable, "-m", "qme", "run", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )


class HeldRun:
    """`qme run` of a command that prints 'first', waits until released, prints
    'second' and exits 3: for breaking the store in the middle of a run."""

    def __init__(self, tmp_path, env: dict[str, str]):
        self.go = tmp_path / "go"
        script = f"echo first; while [ ! -e {self.go} ]; do sleep 0.02; done; echo second; exit 3"
        self.proc = start_run("sh", "-c", script, env=env)

    def release(self) -> bytes:
        """Let the command finish; its stderr (qme's warnings), once it exited 3."""
        self.go.touch()
        out, err = self.proc.communicate(timeout=60)
        assert (self.proc.returncode, out) == (3, b"first\nsecond\n"), err
        return err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()


class LockedDatabase:
    """Another process holding a SQLite database in an exclusive transaction,
    until release()."""

    def __init__(self, path):
        code = (
            "import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdout.readline() == b"locked\n"

    def release(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
