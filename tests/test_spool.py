"""The spool: what a failing store would not take waits in $QME_HOME/spool/ and is
delivered, byte for byte and exactly once, when the store works again.

Real failures of real SQLite files (a database locked by another process, a
database path that is a directory). The store under test is picked by
`open_test_store`, so that the same tests can run against a server store by
stopping and restarting the server where these lock or move the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from helpers import HeldRun, LockedDatabase, wait_for

from qme.errors import NoSuchTask
from qme.store import spool
from qme.store import writer as writer_module
from qme.store.sqlite import SqliteStore
from qme.store.writer import StoreWriter
from qme.task import COMPLETE, Task

BINARY = bytes(range(256)) * 3


def open_test_store(home, busy_timeout=0.2):
    return SqliteStore(home / "qme.db", busy_timeout=busy_timeout)


def new_task(number: int = 1) -> Task:
    return Task(
        id=f"shell-0000000{number}-0000-4000-8000-000000000000",
        executor="shell",
        command=f"cmd {number}",
        argv=["cmd", str(number)],
        cwd="/",
        user="u",
        host="h",
        started=1000.0 + number,
    )


def stored_output(store, task: Task) -> bytes | None:
    try:
        return store.read(task.id, "output")
    except NoSuchTask:
        return None


def finished(task: Task) -> Task:
    return task.copy(status=COMPLETE, ended=task.started + 1, returncode=0, output_size=7)


def test_a_store_failing_mid_task_spools_the_rest_and_delivery_completes_it(qme_home):
    task = new_task()
    open_test_store(qme_home).close()
    writer = StoreWriter(lambda: open_test_store(qme_home), str(qme_home))
    writer.add(task)
    writer.append(task.id, "output", b"before ")
    with open_test_store(qme_home) as reader:
        wait_for(lambda: stored_output(reader, task) == b"before ", what="the first write")
    lock = LockedDatabase(qme_home / "qme.db")
    try:
        writer.append(task.id, "output", BINARY)
        writer.append(task.id, "error", b"err")
        writer.update(finished(task))
        assert writer.close() is not None and "locked" in writer.error
        assert writer.message().startswith("could not write to the store (database is locked)")
    finally:
        lock.release()
    [path] = spool.pending(str(qme_home))
    assert spool.spooled_task(path).id == task.id
    with open_test_store(qme_home) as store:
        assert store.get(task.id).status == "running"  # the store has only the start
        assert spool.deliver(str(qme_home), store) == 1
        stored = store.get(task.id)
    assert (stored.output, stored.error) == (b"before " + BINARY, b"err")
    assert stored.status == COMPLETE and stored.returncode == 0
    assert spool.pending(str(qme_home)) == []


def test_output_for_a_slow_store_waits_in_bounded_memory(qme_home, monkeypatch):
    """A store locked for a while (under its busy timeout): output piles up to
    MAX_QUEUED, then append() waits; nothing is lost once the lock goes."""
    monkeypatch.setattr(writer_module, "MAX_QUEUED", 1 << 20)
    piece = bytes(range(256)) * 1024  # 256 KiB
    task = new_task()
    open_test_store(qme_home).close()
    writer = StoreWriter(lambda: open_test_store(qme_home, busy_timeout=60), str(qme_home))
    writer.add(task)
    lock = LockedDatabase(qme_home / "qme.db")
    fed = threading.Event()

    def feed():
        for _ in range(16):  # 4 MiB
            writer.append(task.id, "output", piece)
        fed.set()

    threading.Thread(target=feed, daemon=True).start()
    try:
        wait_for(lambda: writer.queued > 1 << 20, what="the queue to fill")
        assert not fed.wait(0.5)  # held up: 4 MiB do not fit
        assert writer.queued <= (1 << 20) + len(piece)
    finally:
        lock.release()
    assert fed.wait(30)
    writer.update(finished(task))
    assert writer.close() is None
    with open_test_store(qme_home) as store:
        assert store.read(task.id, "output") == piece * 16


def test_a_store_that_works_again_takes_the_next_tasks(qme_home, monkeypatch):
    """After a failure, tasks go to the spool; one started RETRY_SECONDS later
    tries the store again (a session goes on recording into it)."""
    monkeypatch.setattr(writer_module, "RETRY_SECONDS", 0.5)
    open_test_store(qme_home).close()
    writer = StoreWriter(lambda: open_test_store(qme_home), str(qme_home))
    first, second, third = (new_task(n) for n in (1, 2, 3))
    lock = LockedDatabase(qme_home / "qme.db")
    try:
        writer.add(first)
        writer.append(first.id, "output", b"one")
        writer.sync()
        assert writer.spooling and "locked" in writer.error
        writer.add(second)
        writer.update(finished(second))
        writer.sync()
    finally:
        lock.release()
    time.sleep(0.6)
    writer.add(third)
    writer.append(third.id, "output", b"three")
    writer.update(finished(third))
    writer.update(finished(first))  # begun in the spool: ends there
    assert writer.close() is None  # the store works again
    with open_test_store(qme_home) as store:
        assert [t.id for t in store.list(store_query())] == [third.id]
        assert store.read(third.id, "output") == b"three"
        assert spool.deliver(str(qme_home), store) == 2
        assert store.read(first.id, "output") == b"one"
        assert {t.status for t in store.list(store_query())} == {COMPLETE}


def test_a_store_that_never_opens_spools_whole_tasks(qme_home):
    (qme_home / "qme.db").mkdir(parents=True)
    writer = StoreWriter(lambda: open_test_store(qme_home), str(qme_home))
    tasks = [new_task(n) for n in (1, 2)]
    for task in tasks:
        writer.add(task)
        writer.append(task.id, "output", b"out %d\n" % tasks.index(task))
        writer.update(finished(task))
    assert "could not write to the store (cannot open the SQLite store" in writer.close()
    assert len(spool.pending(str(qme_home))) == 2
    (qme_home / "qme.db").rmdir()
    with open_test_store(qme_home) as store:
        assert spool.deliver(str(qme_home), store) == 2
        assert [store.get(t.id).output for t in tasks] == [b"out 0\n", b"out 1\n"]


def test_delivery_skips_what_the_store_already_has(qme_home):
    """An append the store made without saying so (a lost reply), or a delivery cut
    short, is not appended twice."""
    task = new_task()
    spooled = spool.SpoolFile(str(qme_home), task, {"output": 0, "error": 0})
    spooled.append("output", b"hello ")
    spooled.append("output", b"world")
    spooled.update(finished(task))
    spooled.close()
    with open_test_store(qme_home) as store:
        store.add(task)
        store.append(task.id, "output", b"hello wo")
        assert spool.deliver(str(qme_home), store) == 1
        assert store.get(task.id).output == b"hello world"


def test_a_file_still_being_written_is_not_delivered(qme_home):
    task = new_task()
    spooled = spool.SpoolFile(str(qme_home), task, None)
    spooled.append("output", b"so far")
    with open_test_store(qme_home) as store:
        assert spool.deliver(str(qme_home), store) == 0
        spooled.close()
        assert spool.deliver(str(qme_home), store) == 1
        assert store.get(task.id).output == b"so far"


@pytest.mark.slow
def test_many_deliverers_deliver_each_record_once(qme_home):
    (qme_home / "qme.db").mkdir(parents=True)
    writer = StoreWriter(lambda: open_test_store(qme_home), str(qme_home))
    for number in range(20):
        task = new_task(number)
        writer.add(task)
        writer.append(task.id, "output", b"%d\n" % number)
        writer.update(finished(task))
    writer.close()
    (qme_home / "qme.db").rmdir()
    procs = [
        subprocess.Popen([sys.executable, "-m", "qme", "sync"], stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    delivered = 0
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        delivered += int(err.split()[1])
    assert delivered == 20
    with open_test_store(qme_home) as store:
        outputs = sorted(store.get(t.id).output for t in store.list(store_query()))
    assert outputs == sorted(b"%d\n" % n for n in range(20))


def store_query():
    from qme.store.base import TaskQuery

    return TaskQuery()


def test_qme_run_whose_store_locks_mid_run_is_delivered_by_the_next_reader(qme_home, tmp_path):
    """The task is stored while the command runs; then the database is locked for
    longer than qme waits; the rest goes to the spool, and `qme ls` delivers it."""
    env = {**os.environ, "QME_BUSY_TIMEOUT": "0.5"}
    with HeldRun(tmp_path, env) as run:

        def first_stored():
            if not (qme_home / "qme.db").exists():
                return None
            with open_test_store(qme_home) as store:
                tasks = store.list(store_query())
                return tasks and store.read(tasks[0].id, "output") == b"first\n" and tasks[0]

        task = wait_for(first_stored, what="the task and its first line in the store")
        lock = LockedDatabase(qme_home / "qme.db")
        try:
            [warning] = run.release().decode().splitlines()  # told by qme run itself
            assert warning.startswith("qme: warning: could not write to the store"), warning
            wait_for(lambda: spool.pending(str(qme_home)), what="the spool file")
        finally:
            lock.release()
    listing = subprocess.run(
        [sys.executable, "-m", "qme", "ls", "--json"], capture_output=True, env=env, check=True
    )
    [shown] = json.loads(listing.stdout)
    assert (shown["id"], shown["status"], shown["returncode"]) == (task.id, "failed", 3)
    with open_test_store(qme_home) as store:
        assert store.read(task.id, "output") == b"first\nsecond\n"
    assert spool.pending(str(qme_home)) == []


def spool_for(home, database: str, number: int = 1) -> Task:
    """A finished record spooled for the store that `database` names, as a writer
    whose store would not open leaves it."""
    from qme.config import Settings
    from qme.store import identity

    settings = Settings(str(home), overrides={"database": database})
    task = new_task(number)
    spooled = spool.SpoolFile(str(home), task, None, identity(settings))
    spooled.append("output", b"spooled output\n")
    spooled.update(finished(task))
    spooled.close()
    return task


def test_a_record_is_delivered_only_to_the_store_it_was_spooled_for(qme, qme_home):
    """A one-off `qme --database filesystem ls` does not take a SQLite store's
    record; `qme sync --list` says which store it waits for; the SQLite store
    takes it on its next read."""
    task = spool_for(qme_home, "sqlite")
    assert qme("--database", "filesystem", "ls", "--json").stdout in (b"", b"[]\n")
    assert qme("--database", "filesystem", "sync").stderr.startswith(b"delivered 0 of 0")
    assert len(spool.pending(str(qme_home))) == 1
    listed = qme("sync", "--list").stdout.decode()
    assert listed == f"{task.id}\tsqlite:{qme_home / 'qme.db'}\tcmd 1\n"
    [shown] = json.loads(qme("ls", "--json").stdout)
    assert (shown["id"], shown["status"]) == (task.id, COMPLETE)
    assert qme("get", task.id, "--output").stdout == b"spooled output\n"
    assert not (qme_home / "database").exists()
    assert spool.pending(str(qme_home)) == []


def test_qme_sync_delivers_records_that_name_no_store(qme, qme_home):
    """Records spooled by an older qme say nothing of their store: readers leave
    them, an explicit `qme sync` delivers them to its store."""
    task = new_task()
    spooled = spool.SpoolFile(str(qme_home), task, None)  # no store named
    spooled.update(finished(task))
    spooled.close()
    assert qme("ls", "--json").stdout in (b"", b"[]\n")
    assert qme("sync", "--list").stdout.decode().split("\t")[1] == "any (qme sync)"
    synced = qme("sync")
    assert synced.stderr.decode().startswith("delivered 1 of 1 spooled record(s) to sqlite:")
    assert [t["id"] for t in json.loads(qme("ls", "--json").stdout)] == [task.id]


def test_an_empty_spool_file_is_removed_and_not_counted_as_delivered(qme, qme_home):
    """A writer that failed before its first record (a full disk) leaves nothing
    to deliver: `qme sync` must not say it delivered it."""
    (qme_home / "spool").mkdir(parents=True)
    (qme_home / "spool" / "shell-x.spool").write_bytes(b"")
    (qme_home / "spool" / "shell-y.spool").write_bytes(b'task 99\n{"id": ')  # torn
    synced = qme("sync")
    assert synced.returncode == 0
    assert synced.stderr.decode().startswith("delivered 0 of ")
    assert spool.pending(str(qme_home)) == []
    assert qme("ls", "--json").stdout in (b"", b"[]\n")


def test_a_failed_spool_write_leaves_whole_records(qme_home, monkeypatch):
    """A write cut short (no room) is cut back, so later records still read."""
    task = new_task()
    spooled = spool.SpoolFile(str(qme_home), task, None, "sqlite:x")
    spooled.append("output", b"one ")
    real_write = os.write
    monkeypatch.setattr(
        spool.os, "write", lambda fd, data: real_write(fd, bytes(data)[:5]) and _no_space()
    )
    with pytest.raises(OSError):
        spooled.append("output", b"two, which did not fit ")
    monkeypatch.setattr(spool.os, "write", real_write)
    spooled.append("output", b"three")
    spooled.update(finished(task))
    spooled.close()
    with open_test_store(qme_home) as store:
        assert spool.deliver(str(qme_home), store, "sqlite:x") == 1
        assert store.get(task.id).output == b"one three"


def _no_space():
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("spooled_first", [False, True], ids=["store", "spool"])
def test_a_writer_taking_over_adds_only_what_the_store_lacks(qme_home, spooled_first):
    """A writer that died wrote part of a task (to the store, or to the spool); the
    one that takes over gets the task and its output again from the start."""
    task = new_task()
    open_test_store(qme_home).close()
    first = StoreWriter(lambda: open_test_store(qme_home), str(qme_home), store_id="s")
    first.add(task)
    first.append(task.id, "output", b"hello ")
    first.append(task.id, "error", b"e1")
    first.sync()
    if spooled_first:  # the store went away for a while: the rest went to the spool
        lock = LockedDatabase(qme_home / "qme.db")
        first.append(task.id, "output", b"wor")
        first.sync()
        lock.release()
    first.close()  # as if killed: no final update
    second = StoreWriter(lambda: open_test_store(qme_home), str(qme_home), store_id="s")
    second.resume(task)
    second.append(task.id, "output", b"hello ")
    second.append(task.id, "error", b"e1e2")
    second.append(task.id, "output", b"world")
    second.update(finished(task))
    assert second.close() is None
    with open_test_store(qme_home) as store:
        spool.deliver(str(qme_home), store, "s")
        stored = store.get(task.id)
    assert (stored.output, stored.error, stored.status) == (b"hello world", b"e1e2", COMPLETE)
    assert spool.pending(str(qme_home)) == []


def test_a_filesystem_reader_never_writes_back_output_it_read_before_an_append(tmp_path):
    """A reader saving a task's status (found lost, a note) reads the file and
    writes it back; the writer's append in between must survive (issue 16, item
    13: a lost write is a lost record)."""
    from qme.store.filesystem import FilesystemStore

    writer, reader = FilesystemStore(tmp_path / "db"), FilesystemStore(tmp_path / "db")
    task = new_task()
    writer.add(task)
    writer.append(task.id, "error", b"ls: ")
    read_once = threading.Event()
    real_read = reader._read

    def slow_read(path):
        found = real_read(path)
        read_once.set()
        time.sleep(0.3)  # the writer appends meanwhile
        return found

    reader._read = slow_read
    saving = threading.Thread(target=reader.update, args=(task.copy(status="lost"),))
    saving.start()
    assert read_once.wait(10)
    writer.append(task.id, "error", b"cannot access 'x': No such file or directory\n")
    saving.join()
    writer.update(finished(task))
    assert FilesystemStore(tmp_path / "db").get(task.id).error == (
        b"ls: cannot access 'x': No such file or directory\n"
    )


DELIVERING = """
import os, sys
from qme.store import spool
from qme.store.sqlite import SqliteStore
home, stop = sys.argv[1], sys.argv[2]
with SqliteStore(home + "/qme.db", busy_timeout=5) as store:
    while not os.path.exists(stop) or spool.pending(home):
        spool.deliver(home, store, "sqlite:x")
"""

SPOOLING = """
import os, sys
from qme.store import spool
from qme.task import COMPLETE, Task
home, count = sys.argv[1], int(sys.argv[2])
os.nice(10)  # as qme's writer process: preempted often, between any two calls
for n in range(count):
    task = Task(id=f"shell-{n:08d}-0000-4000-8000-000000000000", executor="shell",
                command="cmd", argv=["cmd"], cwd="/", user="u", host="h", started=1000.0)
    spooled = spool.SpoolFile(home, task, None, "sqlite:x")
    spooled.append("output", b"out %d" % n)
    spooled.update(task.copy(status=COMPLETE, ended=1001.0, returncode=0))
    spooled.close()
"""


@pytest.mark.slow
def test_a_spool_file_being_begun_is_never_taken_for_an_empty_one(qme_home, tmp_path):
    """A reader delivers the spool (every `qme ls` does) while a writer, niced as
    qme's writer process is and with the CPUs busy, begins files: none is removed
    as empty before its writer has locked it, so every record arrives."""
    count = 1000
    stop = tmp_path / "stop"
    os.makedirs(spool.folder(str(qme_home)))
    open_test_store(qme_home).close()
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    reader = subprocess.Popen([sys.executable, "-c", DELIVERING, str(qme_home), str(stop)])
    try:
        subprocess.run(
            [sys.executable, "-c", SPOOLING, str(qme_home), str(count)], check=True, timeout=120
        )
        stop.touch()
        assert reader.wait(timeout=60) == 0
    finally:
        for process in [reader, *busy]:
            process.kill()
            process.wait()
    with open_test_store(qme_home) as store:
        ids = [f"shell-{n:08d}-0000-4000-8000-000000000000" for n in range(count)]
        outputs = [stored_output(store, new_task().copy(id=task_id)) for task_id in ids]
    assert outputs == [b"out %d" % n for n in range(count)]
    assert os.listdir(spool.folder(str(qme_home))) == []
