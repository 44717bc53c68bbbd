"""Shared fixtures: every test gets its own QME_HOME in tmp_path, never the real home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def sql_databases():
    """Drop the schemas and databases the SQL-store tests made (tests/sqlservers.py)."""
    yield
    import sqlservers

    sqlservers.drop_all()


@pytest.fixture(autouse=True)
def private_umask():
    """Folders and files a test makes are private, as qme's own are: a home made
    readable by others is tightened by qme, with a line that would be in the way
    (tests/test_privacy.py makes such homes on purpose)."""
    old = os.umask(0o077)
    yield
    os.umask(old)


@pytest.fixture(autouse=True)
def qme_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "qme-home"
    monkeypatch.setenv("QME_HOME", str(home))
    for name in (
        "QME_DATABASE",
        "QME_DATABASE_STRING",
        "QME_LOG_LEVEL",
        "QME_MAX_OUTPUT",
        "QME_SHELL",
        "NO_COLOR",
        "FORCE_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def queue(qme_home):
    from qme import Queue

    q = Queue(config_dir=qme_home)
    yield q
    q.close()


@pytest.fixture
def qme(qme_home):
    """Run the real `qme` program in a subprocess (pipes, no terminal)."""

    def run(*args: str, input: bytes | None = None, cwd=None, env=None, timeout=60):
        return subprocess.run(
            [sys.executable, "-m", "qme", *args],
            input=input,
            capture_output=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            timeout=timeout,
        )

    return run
