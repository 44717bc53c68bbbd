"""Small assertions and look-ups shared by the test modules."""

from __future__ import annotations

import os
import shutil
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


def require_program(name: str) -> str:
    """The program's path; see unavailable() for when it is missing."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed")
    return path
