"""Where the store is, and that reading it creates nothing: a read-only command
never makes a folder or a file (a store that does not exist reads as empty); the
sqlite URL forms mean what SQLAlchemy means by them; what qme writes in QME_HOME
is readable by its owner only."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from qme.config import Settings
from qme.store import describe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _this_tree(monkeypatch):
    """The qme run in a subprocess is this tree's, whatever is installed."""
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))


@pytest.mark.parametrize(
    "database, where",
    [
        ("sqlite", "HOME/qme.db"),
        ("sqlite://name.db", "HOME/name.db"),
        ("sqlite:///relative.db", "HOME/relative.db"),
        ("sqlite:///sub/dir.db", "HOME/sub/dir.db"),
        ("sqlite:////abs/path.db", "/abs/path.db"),
        ("filesystem", "HOME/database"),
    ],
)
def test_sqlite_urls_read_as_sqlalchemy_reads_them(tmp_path, database, where):
    """Three slashes: relative (to QME_HOME, so that a setting names one store
    wherever a command runs); four: absolute."""
    settings = Settings(str(tmp_path), overrides={"database": database})
    assert describe(settings)[1] == where.replace("HOME", str(tmp_path))


@pytest.mark.parametrize("command", [["ls"], ["ls", "--json"], ["search", "x"], ["sync", "--list"]])
def test_reads_create_no_store_and_no_folder(qme, qme_home, tmp_path, command):
    missing = tmp_path / "nonexistent" / "dir"
    for database in (f"sqlite:///{missing}/x.db", "sqlite:///relative.db", "filesystem"):
        result = qme("--database", database, *command, cwd=tmp_path)
        nothing_found = 1 if command[0] == "search" else 0  # as grep says it
        assert result.returncode == nothing_found, result.stderr
        assert b"error" not in result.stderr and b"Traceback" not in result.stderr
    assert not missing.parent.exists()
    assert not qme_home.exists()  # not even QME_HOME
    assert not (tmp_path / "relative.db").exists()


def test_a_missing_store_reads_as_empty_then_as_written(qme, qme_home):
    assert json.loads(qme("ls", "--json").stdout or b"[]") == []
    assert qme("run", "sh", "-c", "sleep 0.1; echo hi").returncode == 0
    [task] = json.loads(qme("ls", "--json").stdout)
    assert task["command"] == "sh -c 'sleep 0.1; echo hi'"


def test_a_reader_sees_a_store_created_after_it_opened(qme, qme_home):
    from qme import Queue

    queue = Queue(config_dir=qme_home)
    try:
        assert queue.list() == []
        assert qme("run", "true").returncode == 0
        assert [t.command for t in queue.list()] == ["true"]
    finally:
        queue.close()


@pytest.mark.parametrize("database", ["sqlite", "filesystem"])
def test_what_qme_writes_in_its_home_is_private(qme, qme_home, database):
    """QME_HOME 0700 and its files 0600, with the usual umask of 022."""
    old = os.umask(0o022)
    try:
        result = qme("--database", database, "run", "sh", "-c", "sleep 0.1; echo hi")
        assert result.returncode == 0, result.stderr
        assert qme("ls").returncode == 0  # waits for the writer
    finally:
        os.umask(old)
    paths = [qme_home, *qme_home.rglob("*")]
    assert len(paths) > 3
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_a_reader_waits_for_a_store_another_qme_is_making(qme_home):
    """The file exists, empty, while its maker is still inside its first
    transaction: the reader waits for it, as any writer would, and then reads
    the made store. (SQLite answers a switch to WAL there with 'database is
    locked' at once, without waiting; a `qme ls` typed then failed.)"""
    import sqlite3
    import threading

    from qme.store.base import TaskQuery
    from qme.store.sqlite import SqliteStore

    qme_home.mkdir(mode=0o700)
    path = qme_home / "qme.db"
    maker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    maker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, maker.execute, ["COMMIT"]).start()
    try:
        store = SqliteStore(path, create=False)
    finally:
        maker.close()
    assert store.list(TaskQuery()) == []
    store.close()
