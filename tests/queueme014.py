"""Real QueueMe 0.0.14, from PyPI (scripts/queueme.sh: the sdist pinned by version
and sha256, its own tests, and a venv of its own with QueueMe installed), and
QueueMe homes made by it."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

from helpers import unavailable

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / ".work" / "queueme"
SCRIPT = ROOT / "scripts" / "queueme.sh"


@functools.cache
def _prepare() -> str | None:
    """None when QueueMe 0.0.14 is ready under .work/queueme, else why not."""
    try:
        done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return "scripts/queueme.sh took more than 10 minutes"
    if done.returncode != 0:
        return f"scripts/queueme.sh failed: {done.stderr.strip()[-800:]}"
    return None


def prepared() -> Path:
    """.work/queueme, ready (skips the test, or fails it under CI=true, if not)."""
    problem = _prepare()
    if problem:
        unavailable(f"QueueMe 0.0.14 is not available: {problem}")
    return DIR


def queueme(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run QueueMe 0.0.14's own `qme` on home."""
    program = prepared() / "venv" / "bin" / "qme"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QME_")}
    done = subprocess.run(
        [str(program), "--config_dir", str(home), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def make_home(home: Path, database: str, cwd: Path) -> dict[str, dict]:
    """A QueueMe home with database (filesystem or sqlite) and four tasks, one
    failed, one with a message; returns QueueMe's own `get` of each, by command."""
    if database != "filesystem":
        queueme(home, "config", "--database", database)
    (cwd / "a-file").write_text("some content\n")
    for args in (
        ["run", "ls"],
        ["-m", "with a message", "run", "echo", "hello", "world"],
        ["run", "ls", "no-such-file"],
        ["run", "cat", "a-file"],
    ):
        queueme(home, *args, cwd=cwd)
    rows = queueme(home, "ls").stdout.splitlines()
    records = {}
    for row in rows:
        taskid = row.split()[1]
        record = json.loads(queueme(home, "get", taskid).stdout)
        records[record["command"]] = record
    assert len(records) == 4
    return records


def snapshot(home: Path) -> dict[str, object]:
    """What QueueMe kept in home: its files byte for byte, and its SQLite table's rows."""
    import sqlite3

    found: dict[str, object] = {}
    for path in sorted(home.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".ini"):
            found[str(path.relative_to(home))] = path.read_bytes()
    if (home / "qme.db").exists():
        db = sqlite3.connect(f"file:{home / 'qme.db'}?mode=ro", uri=True)
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'task'").fetchone():
            found["task table"] = db.execute("SELECT * FROM task ORDER BY taskid").fetchall()
        db.close()
    return found
