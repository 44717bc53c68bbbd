"""qme export / import: a whole history moves between stores without loss."""

from __future__ import annotations

import io
import json
import sys
import time

import pytest
import sqlservers
from helpers import ok, one_error_line

from qme import Queue, transfer
from qme.task import Task, new_uuid4

STORES = ["sqlite", "filesystem", *sqlservers.KINDS]
BINARY = bytes(range(256)) * 3 + b"\r\n\x1b[31mred\x1b[0m no newline"


def sample_tasks() -> list[Task]:
    """Tasks with everything a store keeps: odd bytes, every status, executor data."""
    now = time.time()
    base = dict(executor="shell", cwd="/tmp/ü dir", user="ada", host="box", argv=["x"])
    first = f"shell-{new_uuid4()}"
    return [
        Task(
            id=first,
            command="echo héllo",
            started=now - 30.123456,
            status="complete",
            ended=now - 29.5,
            returncode=0,
            output="héllo ✓\n".encode(),
            error=b"",
            message="a note",
            max_rss=12345678,
            cpu_user=0.25,
            term_cols=80,
            term_rows=24,
            output_size=9,
            **base,
        ),
        Task(
            id=f"shell-{new_uuid4()}",
            command="cat /dev/urandom | head",
            started=now - 20,
            status="failed",
            ended=now - 19,
            returncode=130,
            signal=2,
            output=BINARY,
            error=b"\xff\xfe not utf-8\n",
            output_size=len(BINARY) + 10,
            rerun_of=first,
            session="s-1",
            data={"nested": {"list": [1, 2.5, None, "é"]}},
            **base,
        ),
        Task(
            id=f"slurm-{new_uuid4()}",
            **{**base, "executor": "slurm"},
            command="sbatch j.sh",
            started=now - 10,
            status="pending",
            data={"job_id": "42"},
            output=b"Submitted\n",
            error=b"",
        ),
        Task(
            id=f"shell-{new_uuid4()}",
            command="sleep 100",
            started=now,
            pid=4242,
            recorder="boot:4242:1",
            output=b"",
            error=b"",
            **base,
        ),
    ]


def queue_on(home, database: str) -> Queue:
    """A queue on a fresh store of that kind (a server's own database per home)."""
    return Queue(config_dir=home, database=sqlservers.database(database, home))


@pytest.fixture
def samples() -> list[Task]:
    return sample_tasks()


def filled(home, database: str, tasks: list[Task]) -> Queue:
    queue = queue_on(home, database)
    transfer.import_tasks(queue.store, tasks)
    return queue


def exported(queue: Queue, **options) -> str:
    out = io.StringIO()
    queue.export(out, **options)
    return out.getvalue()


def task_lines(export: str) -> list[str]:
    return export.splitlines()[1:]


@pytest.mark.parametrize(
    ("source", "target"),
    sorted({*((kind, "sqlite") for kind in STORES), *(("sqlite", kind) for kind in STORES)}),
)
def test_round_trip_keeps_every_byte(samples, tmp_path, source, target):
    origin = filled(tmp_path / "a", source, samples)
    first = exported(origin)
    copy = queue_on(tmp_path / "b", target)
    assert copy.import_from(io.StringIO(first)) == (4, 0)

    assert task_lines(exported(copy)) == task_lines(first)
    for task in samples:
        assert copy.store.get(task.id) == task
    # Imported output is searchable like recorded output.
    assert [hit.task.id for hit in copy.search("héllo")] == [samples[0].id]
    assert [hit.task.id for hit in copy.search("red")] == [samples[1].id]


@pytest.mark.parametrize("database", STORES)
def test_search_is_newest_first_after_importing_older_tasks(samples, tmp_path, database):
    queue = queue_on(tmp_path, database)
    newest, older = samples[3], samples[0]
    transfer.import_tasks(queue.store, [newest.copy(command="sleep 100 héllo")])
    transfer.import_tasks(queue.store, [older])
    assert [hit.task.id for hit in queue.search("héllo")] == [newest.id, older.id]


def test_json_document_and_json_lines_import_alike(samples, tmp_path):
    origin = filled(tmp_path / "a", "sqlite", samples)
    document = io.StringIO()
    assert origin.export(document, as_json=True) == 4
    parsed = json.loads(document.getvalue())
    assert parsed["format"] == "qme-export" and len(parsed["tasks"]) == 4

    copy = queue_on(tmp_path / "b", "sqlite")
    assert copy.import_from(io.StringIO(document.getvalue())) == (4, 0)
    assert task_lines(exported(copy)) == task_lines(exported(origin))


def test_an_empty_store_exports_a_valid_empty_history(tmp_path):
    empty = queue_on(tmp_path / "a", "sqlite")
    for as_json in (False, True):
        copy = queue_on(tmp_path / f"b{as_json}", "sqlite")
        assert copy.import_from(io.StringIO(exported(empty, as_json=as_json))) == (0, 0)


def test_importing_again_skips_or_replaces(samples, tmp_path):
    origin = filled(tmp_path / "a", "sqlite", samples)
    export = exported(origin)
    copy = queue_on(tmp_path / "b", "filesystem")
    copy.import_from(io.StringIO(export))
    changed = samples[0]
    copy.store.annotate(changed.id, message="edited")  # update() leaves the note as it is

    assert copy.import_from(io.StringIO(export)) == (0, 4)
    assert copy.store.get(changed.id).message == "edited"
    assert copy.import_from(io.StringIO(export), replace=True) == (4, 0)
    assert copy.store.get(changed.id).message == "a note"
    assert len(copy.list()) == 4


def test_export_filters_and_pages(samples, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "PAGE", 3)  # several pages from four tasks
    origin = filled(tmp_path / "a", "sqlite", samples)
    ids = [json.loads(line)["id"] for line in task_lines(exported(origin))]
    assert ids == [t.id for t in samples]  # oldest first, none twice

    only_slurm = task_lines(exported(origin, executor="slurm"))
    assert [json.loads(line)["executor"] for line in only_slurm] == ["slurm"]
    recent = task_lines(exported(origin, since=time.time() - 15))
    assert len(recent) == 2


def test_cli_moves_a_history_through_a_pipe(qme, qme_home):
    ok(qme("run", "-m", "first", "--", sys.executable, "-c", "print('piped along')"))
    binary = qme("run", "--", sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'\\xff')")
    assert binary.stdout == b"\xff"
    export = qme("--database", "sqlite", "export")
    assert "exported 2 tasks" in export.stderr.decode()
    done = qme("--database", "filesystem", "import", input=export.stdout)
    assert "imported 2 tasks" in ok(done) + done.stderr.decode()

    again = ok(qme("--database", "filesystem", "export", "--json"))
    assert [t["id"] for t in json.loads(again)["tasks"]] == [
        json.loads(line)["id"] for line in task_lines(export.stdout.decode())
    ]
    found = ok(qme("--database", "filesystem", "search", "piped"))
    assert "piped along" in found


def test_export_to_a_file_and_import_from_it(qme, qme_home, tmp_path):
    ok(qme("run", "true"))
    path = tmp_path / "history.jsonl"
    ok(qme("export", str(path)))
    other = {"QME_HOME": str(tmp_path / "other")}
    done = qme("import", str(path), env=other)
    assert "imported 1 task" in done.stderr.decode()
    skipped = qme("import", str(path), env=other)
    assert "1 task already there, skipped" in skipped.stderr.decode()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "it is empty"),
        (b"not json\n", "line 1 is not JSON"),
        (b'{"format": "other"}\n', "does not start with a 'qme-export' header"),
        (b'{"format": "qme-export", "version": 99}\n', "format version 99"),
        (b'{"format": "qme-export", "version": 1}\n{"id": "x"}\n', "task 2 of the export"),
        (b'{"format": "qme-export", "version": 1}\n[1]\n', "task 2 of the export"),
        (b'{"format": "qme-export", "version": 1, "tasks": 3}', "'tasks' is not a list"),
    ],
)
def test_bad_exports_are_one_error_line(qme, content, says):
    line = one_error_line(qme("import", input=content))
    assert says in line
    assert "imported" not in ok(qme("ls"))


def test_missing_file_and_unknown_executor_are_one_error_line(qme, tmp_path):
    assert "cannot open" in one_error_line(qme("import", str(tmp_path / "nope.jsonl")))
    assert "nosuch" in one_error_line(qme("export", "--executor", "nosuch"))
