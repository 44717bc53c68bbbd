"""QueueMe 0.0.14's records: reading them as qme tasks, and writing a task back
in QueueMe's nested shape (`{"executor", "uid", "command", "data": {…}}`).

QueueMe kept a task as that nested record: one JSON file per task in its
filesystem store (`<home>/database/<executor>/<id>.json`, qme's own layout), or a
row of the `task` table (taskid, command, timestamp, executor_name, data) in its
SQLite file. `data` holds the working directory (`pwd`), `user`, a `timestamp`
(local time, written when the command had ended), `message`, `output` and
`error` as lists of lines, `returncode`, `pid`, `cmd` (argv) and `status`, plus
an executor's own keys (Slurm: `jobid`, `outputfile`, `errorfile`).

Reading is done with the standard library alone (no SQLAlchemy), and never
writes: a QueueMe SQLite file is opened read-only.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone

from qme.errors import StoreError
from qme.task import LOST, STREAMS, Task, status_of

QUEUEME_TABLE = "task"
QUEUEME_COLUMNS = {"taskid", "command", "timestamp", "executor_name", "data"}
# The keys of QueueMe's `data` that qme keeps in fields of its own; any other key
# is the executor's (a Slurm job's id and files) and stays in the task's data.
COMMON_KEYS = ("pwd", "user", "timestamp", "message", "returncode", "pid", "cmd", "status")
# Where QueueMe put its SQLite file when `databaseconnect` names none.
DEFAULT_SQLITE_FILE = "qme.db"


def is_record(record: object) -> bool:
    """Whether a decoded JSON file is a QueueMe task (qme's own records have an id)."""
    return isinstance(record, dict) and "uid" in record and "id" not in record


def to_task(record: dict, inserted: str | None = None) -> Task:
    """The qme task for a QueueMe record. inserted: the SQLite row's timestamp
    column (UTC, when the task was added, i.e. when it started); without it the
    start is the record's own timestamp, the time the command ended."""
    data = dict(record.get("data") or {})
    task_id = record["uid"]
    executor = record.get("executor") or task_id.split("-", 1)[0]
    argv = [str(word) for word in data.get("cmd") or []]
    command = record.get("command") or " ".join(argv)
    ended = _local_time(data.get("timestamp"))
    started = _utc_time(inserted) if inserted else ended
    if started is None:
        started = ended or 0.0
    returncode = data.get("returncode")
    if isinstance(returncode, int):
        status = status_of(returncode)
    else:  # QueueMe stopped before the command ended
        returncode, status = None, LOST
    streams = {name: _joined(data.get(name)) for name in STREAMS}
    return Task(
        id=task_id,
        executor=executor,
        command=command,
        argv=argv or command.split(),
        cwd=str(data.get("pwd") or ""),
        user=str(data.get("user") or ""),
        host="",  # QueueMe did not record it
        started=started,
        ended=max(ended, started) if ended is not None else None,
        status=status,
        pid=data.get("pid") if isinstance(data.get("pid"), int) else None,
        returncode=returncode,
        message=data.get("message"),
        output=streams["output"],
        error=streams["error"],
        output_size=len(streams["output"]),
        error_size=len(streams["error"]),
        data={k: v for k, v in data.items() if k not in (*COMMON_KEYS, *STREAMS)},
    )


def to_record(task: Task) -> dict:
    """The task as QueueMe 0.0.14's `task.load()` gave it: executor, uid, command,
    and data (what `task.export()` gave). Streams are lists of lines, as QueueMe's."""
    data: dict = {
        "pwd": task.cwd,
        "user": task.user,
        "timestamp": str(datetime.fromtimestamp(task.ended or task.started)),
    }
    if task.message:
        data["message"] = task.message
    data.update(
        {
            "output": _lines(task.output),
            "error": _lines(task.error),
            "returncode": task.returncode,
            "pid": task.pid,
            "cmd": list(task.argv),
            "status": "running" if not task.finished else "complete",
        }
    )
    data.update(task.data)
    return {"executor": task.executor, "uid": task.id, "command": task.command, "data": data}


def _lines(stream: bytes | None) -> list[str]:
    return (stream or b"").decode("utf-8", "replace").splitlines(keepends=True)


def _joined(value) -> bytes:
    """QueueMe's output: a list of lines (each with its newline), or a string."""
    if isinstance(value, list):
        value = "".join(str(line) for line in value)
    return str(value or "").encode("utf-8", "surrogateescape")


def _local_time(text) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def _utc_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


# -- a QueueMe home ---------------------------------------------------------------------


def sqlite_file(home: str) -> str:
    """The SQLite file QueueMe used in home: `databaseconnect` in its config.ini
    (a file name in home), else qme.db."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(os.path.join(home, "config.ini"), encoding="utf-8")
        name = parser.get("DEFAULT", "databaseconnect", fallback="").strip()
    except configparser.Error:
        name = ""
    return os.path.join(home, os.path.basename(name) or DEFAULT_SQLITE_FILE)


def has_table(db: sqlite3.Connection) -> bool:
    """Whether this SQLite database has QueueMe's `task` table."""
    columns = {row[1] for row in db.execute(f"PRAGMA table_info({QUEUEME_TABLE})")}
    return columns >= QUEUEME_COLUMNS


def rows(db: sqlite3.Connection) -> Iterator[Task]:
    """The tasks of QueueMe's `task` table, oldest first."""
    query = f"SELECT taskid, command, timestamp, executor_name, data FROM {QUEUEME_TABLE}"
    for taskid, command, inserted, executor, data in db.execute(query + " ORDER BY timestamp"):
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {}
        record = {"uid": taskid, "executor": executor, "command": command, "data": parsed}
        yield to_task(record, inserted=inserted)


def read_home(home: str) -> Iterator[Task]:
    """Every task QueueMe 0.0.14 kept in home: its filesystem store's files, then
    its SQLite file's `task` table; read only."""
    for path in sorted(filesystem_files(home)):
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from None
        if is_record(record):
            yield to_task(record)
    path = sqlite_file(home)
    if os.path.exists(path):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                if has_table(db):
                    yield from rows(db)
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read QueueMe's database {path}: {exc}") from None


def filesystem_files(home: str) -> list[str]:
    """The JSON files of QueueMe's filesystem store in home (QueueMe's and qme's own
    records alike: both keep `database/<executor>/<id>.json`)."""
    root = os.path.join(home, "database")
    try:
        folders = [os.path.join(root, name) for name in os.listdir(root)]
    except OSError:
        return []
    return [
        os.path.join(folder, name)
        for folder in folders
        if os.path.isdir(folder)
        for name in os.listdir(folder)
        if name.endswith(".json") and not name.startswith(".")
    ]


# -- stores a home holds that its configured store does not read ------------------------

IMPORTED_FILE = "queueme-imported.json"  # in qme's home: the QueueMe stores imported
LOOKED_AT = 50  # files of a folder read for a QueueMe record before it counts as qme's


def stores(home: str) -> list[str]:
    """QueueMe's stores in home that hold tasks: its filesystem folder, its SQLite file."""
    found = []
    folder = os.path.join(home, "database")
    for path in sorted(filesystem_files(home))[:LOOKED_AT]:
        try:
            with open(path, encoding="utf-8") as handle:
                head = handle.read(4096)
                if '"uid"' in head and is_record(json.loads(head + handle.read())):
                    found.append(folder)
                    break
        except (OSError, ValueError):
            continue
    path = sqlite_file(home)
    if os.path.exists(path):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                if has_table(db) and db.execute(f"SELECT 1 FROM {QUEUEME_TABLE}").fetchone():
                    found.append(path)
            finally:
                db.close()
        except sqlite3.Error:
            pass
    return found


def unread(home: str, kind: str, where: str) -> list[str]:
    """QueueMe's stores in home that the configured store (kind, where) does not show
    and that were not imported into it."""
    reads = {("filesystem", os.path.join(home, "database")), ("sqlite", sqlite_file(home))}
    shown = {path for k, path in reads if k == kind and os.path.abspath(where) == path}
    done = set(imported(home))
    return [path for path in stores(home) if path not in shown and path not in done]


def imported(home: str) -> list[str]:
    try:
        with open(os.path.join(home, IMPORTED_FILE), encoding="utf-8") as handle:
            return list(json.load(handle))
    except (OSError, ValueError, TypeError):
        return []


def mark_imported(home: str, paths: list[str]) -> None:
    from qme import private

    known = sorted({*imported(home), *paths})
    private.write_file(os.path.join(home, IMPORTED_FILE), json.dumps(known).encode())
