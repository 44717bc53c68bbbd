"""The store contract, run unchanged against every backend."""

from __future__ import annotations

import functools
import time

import pytest
import sqlservers

from qme.errors import NoSuchTask
from qme.store.base import TaskQuery
from qme.store.filesystem import FilesystemStore
from qme.store.sqlite import SqliteStore
from qme.task import Task, new_uuid4

BACKENDS = {
    "sqlite": lambda tmp: SqliteStore(tmp / "qme.db"),
    "filesystem": lambda tmp: FilesystemStore(tmp / "database"),
    **{kind: functools.partial(sqlservers.store, kind) for kind in sqlservers.KINDS},
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request, tmp_path):
    s = BACKENDS[request.param](tmp_path)
    yield s
    s.close()


def make_task(command="echo hello", executor="shell", started=None, **fields) -> Task:
    return Task(
        id=f"{executor}-{new_uuid4()}",
        executor=executor,
        command=command,
        argv=command.split(),
        cwd=fields.pop("cwd", "/tmp"),
        user=fields.pop("user", "ada"),
        host=fields.pop("host", "box"),
        started=started if started is not None else time.time(),
        **fields,
    )


def test_output_timing_round_trips(store):
    """When the output came (Task.timing, qme/recorder/capture.py) is kept with the
    task, read back by get(), list() and search(), and None where none was kept."""
    timing = {"output": [[0, 0], [6, 300], [12, 1250]], "error": [[0, 310]]}
    task = make_task(command="echo timed", timing=timing)
    store.add(task)
    store.append(task.id, "output", b"first\nsecond\nthird\n")
    task.status, task.returncode, task.ended = "complete", 0, task.started + 1.5
    store.update(task)
    plain = make_task(command="echo untimed", started=task.started + 1)
    store.add(plain)
    assert store.get(task.id).timing == timing
    assert store.get(plain.id).timing is None
    listed = {t.id: t.timing for t in store.list(TaskQuery())}
    assert listed == {task.id: timing, plain.id: None}
    assert [hit.task.timing for hit in store.search(["timed"], executor=None, limit=5, rank=False)]
    assert store.search(["timed"], executor=None, limit=5, rank=False)[0].task.timing == timing


def test_task_round_trips_with_streams_byte_for_byte(store):
    task = make_task(message="first try", data={"jobid": "42"})
    store.add(task)
    binary = bytes(range(256)) + b"\xff\xfe not utf-8 \x1b[31mred\x1b[0m"
    store.append(task.id, "output", b"line one\r\n")
    store.append(task.id, "output", binary)
    store.append(task.id, "error", b"no newline at the end")
    task.status, task.returncode, task.ended = "complete", 0, task.started + 1.25
    store.update(task)

    got = store.get(task.id)
    assert got.output == b"line one\r\n" + binary
    assert got.error == b"no newline at the end"
    assert (got.status, got.returncode, got.message, got.data) == (
        "complete",
        0,
        "first try",
        {"jobid": "42"},
    )
    assert got.duration == pytest.approx(1.25)
    assert got.argv == ["echo", "hello"]


# What Python makes of bytes that are not UTF-8 (surrogateescape), a backslash that
# must not be mistaken for an escape, a NUL (PostgreSQL's text refuses it), the
# marker of escaped text itself, and a lone surrogate that was never a byte.
ODD_TEXTS = ["arg\udcff", "d\udc80\u00e9\\x41 \\", "nul\x00here", "\ufdd0first", "half\ud800"]


def test_text_that_is_not_unicode_round_trips(store):
    """Bytes that are not UTF-8 in argv, cwd, message, user, host and the command
    come back exactly as they went in, and the record can be found by them."""
    odd = ODD_TEXTS
    task = make_task(
        "echo $'arg\\xff' \udcfe",
        cwd="/tmp/dir\udcfe",
        message=" ".join(odd),
        user="ada\udcff",
        host="box\udcfe",
        data={"path": odd[0]},
    )
    task.argv = ["echo", *odd]
    store.add(task)
    store.append(task.id, "output", b"arg\xff\n")
    task.status, task.returncode, task.ended = "complete", 0, task.started + 1
    store.update(task)
    got = store.get(task.id)
    for field in ("command", "argv", "cwd", "message", "user", "host", "data"):
        assert getattr(got, field) == getattr(task, field), field
    assert got.output == b"arg\xff\n"
    for odd_field in ("cwd", "user", "host"):
        found = store.list(TaskQuery(**{odd_field: getattr(task, odd_field)}))
        assert [t.id for t in found] == [task.id], odd_field
    [hit] = store.search(["echo"], executor=None, limit=5, rank=False)
    assert hit.task.id == task.id and hit.task.cwd == task.cwd
    plain = make_task("echo plain", cwd="/tmp/\ufdd0")
    store.add(plain)
    assert store.get(plain.id).cwd == "/tmp/\ufdd0"


def test_running_task_is_visible_with_output_so_far(store):
    task = make_task("make all")
    store.add(task)
    store.append(task.id, "output", b"compiling...\n")
    got = store.get(task.id)
    assert got.status == "running"
    assert got.output == b"compiling...\n"


def test_get_without_streams_and_unknown_id(store):
    task = make_task()
    store.add(task)
    assert store.get(task.id, streams=False).output is None
    with pytest.raises(NoSuchTask):
        store.get("shell-00000000-0000-4000-8000-000000000000")


def test_match_by_id_prefix_and_uuid_prefix(store):
    tasks = [make_task() for _ in range(3)]
    for t in tasks:
        store.add(t)
    target = tasks[1]
    assert store.match(target.uuid[:8], 5) == [target.id]
    assert store.match(target.id[:14], 5) == [target.id]
    assert sorted(store.match("shell-", 5)) == sorted(t.id for t in tasks)
    assert store.match("nothing", 5) == []


def test_list_orders_filters_and_limits(store):
    now = time.time()
    old = make_task("old", started=now - 3600, cwd="/a", status="failed")
    mid = make_task("mid", started=now - 60, cwd="/b", status="complete")
    new = make_task("new", started=now, cwd="/a", status="complete", executor="slurm")
    for t in (mid, new, old):
        store.add(t)

    def commands(**kw):
        newest_first = kw.pop("newest_first", True)
        return [t.command for t in store.list(TaskQuery(**kw), newest_first=newest_first)]

    assert commands() == ["new", "mid", "old"]
    assert commands(newest_first=False) == ["old", "mid", "new"]
    assert commands(limit=2) == ["new", "mid"]
    assert commands(status="complete") == ["new", "mid"]
    assert commands(cwd="/a") == ["new", "old"]
    assert commands(executor="slurm") == ["new"]
    assert commands(since=now - 120) == ["new", "mid"]
    assert commands(until=now - 120) == ["old"]
    assert all(t.output is None for t in store.list(TaskQuery()))


def test_list_filters_host_and_user(store):
    now = time.time()
    here = make_task("here", started=now - 2, host="login1", user="ada")
    there = make_task("there", started=now - 1, host="login2", user="ada")
    other = make_task("other", started=now, host="login1", user="grace")
    for t in (here, there, other):
        store.add(t)

    def commands(**kw):
        return [t.command for t in store.list(TaskQuery(**kw))]

    assert commands(host="login1") == ["other", "here"]
    assert commands(user="ada") == ["there", "here"]
    assert commands(host="login1", user="ada") == ["here"]
    assert commands(host="login3") == []
    assert store.count(TaskQuery(user="grace")) == 1


def finished(store, command, output=b"", error=b"", message=None, started=None) -> Task:
    task = make_task(command, message=message, started=started)
    store.add(task)
    if output:
        store.append(task.id, "output", output)
    if error:
        store.append(task.id, "error", error)
    task.status = "complete"
    store.update(task)
    return task


def test_search_command_message_and_streams_case_insensitive(store):
    now = time.time()
    moto = finished(store, "echo Hello Moto", b"Hello Moto\n", started=now - 2)
    another = finished(store, "echo Hello Another Moto", b"x\n", started=now - 1)
    noted = finished(store, "true", message="the Deployment of friday", started=now)
    colored = finished(
        store, "ls", b"plain\n\x1b[1;31mDANGER\x1b[0m zone\nafter\n", started=now + 1
    )
    err = finished(store, "cc", error=b"warning: unused variable\n", started=now + 2)

    def ids(*words, **kw):
        return [
            h.task.id for h in store.search(list(words), executor=None, limit=10, rank=False, **kw)
        ]

    assert ids("moto") == [another.id, moto.id]  # newest first
    assert ids("MOTO", "another") == [another.id]  # every word must match
    assert ids("deploy*") == [noted.id]  # a word's start, with '*'
    assert ids("deploy") == []  # otherwise whole words only
    assert ids("deployment") == [noted.id]
    assert ids("danger") == [colored.id]  # escape codes do not hide words
    assert ids("unused") == [err.id]
    assert ids("absent") == []

    hit = store.search(["danger"], executor=None, limit=10, rank=False)[0]
    assert hit.field == "output"
    assert hit.line.replace("\x02", "").replace("\x03", "") == "DANGER zone"
    assert "\x02DANGER\x03" in hit.line


def test_search_rank_and_executor_filter(store):
    finished(store, "a", b"needle\n")
    many = finished(store, "b", b"needle needle needle needle\nneedle\n")
    finished(store, "c", b"hay\n")
    ranked = store.search(["needle"], executor=None, limit=10, rank=True)
    assert len(ranked) == 2 and ranked[0].task.id == many.id
    assert store.search(["needle"], executor="slurm", limit=10, rank=False) == []


def test_delete_and_clear(store):
    a, b = finished(store, "a", b"gone\n"), finished(store, "b")
    c = make_task("c", executor="slurm")
    store.add(c)
    assert store.delete([a.id, "shell-00000000-0000-4000-8000-000000000000"]) == 1
    with pytest.raises(NoSuchTask):
        store.get(a.id)
    assert store.search(["gone"], executor=None, limit=5, rank=False) == []
    assert store.clear("slurm") == 1
    assert [t.id for t in store.list(TaskQuery())] == [b.id]
    assert store.clear() == 1
    assert store.list(TaskQuery()) == []


@pytest.fixture(params=sorted(BACKENDS))
def writer_and_reader(request, tmp_path):
    """Two store objects on the same data, as two processes would have."""
    make = BACKENDS[request.param]
    writer, reader = make(tmp_path), make(tmp_path)
    yield writer, reader
    writer.close()
    reader.close()


def test_two_store_objects_see_each_others_writes(writer_and_reader):
    writer, reader = writer_and_reader
    task = make_task()
    writer.add(task)
    writer.append(task.id, "output", b"live\n")
    assert reader.get(task.id).output == b"live\n"


# -- paging, counting and live polling (the dashboard) ------------------------------------


def test_list_pages_with_offset_and_count_with_a_cap(store):
    now = time.time()
    tasks = [make_task(f"task {i}", started=now + i, status="complete") for i in range(7)]
    tasks[2].status = "failed"
    for t in tasks:
        store.add(t)

    def commands(**kw):
        return [t.command for t in store.list(TaskQuery(**kw))]

    assert commands(limit=3, offset=0) == ["task 6", "task 5", "task 4"]
    assert commands(limit=3, offset=3) == ["task 3", "task 2", "task 1"]
    assert commands(limit=3, offset=6) == ["task 0"]
    assert commands(offset=5) == ["task 1", "task 0"]
    assert commands(limit=3, offset=9) == []
    assert commands(status="complete", limit=2, offset=1) == ["task 5", "task 4"]
    oldest_first = store.list(TaskQuery(limit=2, offset=1), newest_first=False)
    assert [t.command for t in oldest_first] == ["task 1", "task 2"]
    assert store.count(TaskQuery()) == 7
    assert store.count(TaskQuery(status="failed")) == 1
    assert store.count(TaskQuery(limit=4)) == 4  # counting stops at the cap
    assert store.count(TaskQuery(executor="slurm")) == 0


def test_search_filters_status_and_pages(store):
    now = time.time()
    for i in range(5):
        finished(store, f"echo needle {i}", started=now + i)
    failed = make_task("needle failing", started=now + 10, status="failed")
    store.add(failed)
    store.update(failed)

    def commands(**kw):
        hits = store.search(["needle"], executor=None, limit=2, rank=False, **kw)
        return [h.task.command for h in hits]

    assert commands() == ["needle failing", "echo needle 4"]
    assert commands(offset=2) == ["echo needle 3", "echo needle 2"]
    assert commands(offset=5) == ["echo needle 0"]
    assert commands(status="failed") == ["needle failing"]
    assert commands(status="complete", offset=3) == ["echo needle 1", "echo needle 0"]
    assert store.search_count(["needle"], limit=100) == 6
    assert store.search_count(["needle"], limit=4) == 4  # counting stops at the cap
    assert store.search_count(["needle"], limit=100, status="failed") == 1
    assert store.search_count(["hay"], limit=100) == 0


def test_recent_gives_new_and_running_tasks(store):
    now = time.time()
    old_done = make_task("old done", started=now - 600, status="complete")
    old_running = make_task("old running", started=now - 600)
    old_pending = make_task("old pending", started=now - 900, status="pending")
    new_done = make_task("new done", started=now - 1, status="complete")
    for t in (old_done, old_running, old_pending, new_done):
        store.add(t)
    got = store.recent(now - 60)
    assert [t.command for t in got] == ["old pending", "old running", "new done"]
    assert all(t.output is None for t in got)
    for task in (old_running, old_pending):
        task.status = "complete"
        store.update(task)
    assert [t.command for t in store.recent(now - 60)] == ["new done"]


def test_read_from_an_offset_across_chunks(store):
    task = make_task()
    store.add(task)
    for piece in (b"abc", b"defg", b"", b"hij"):
        if piece:
            store.append(task.id, "output", piece)
    store.append(task.id, "error", b"oops")
    assert store.read(task.id, "output") == b"abcdefghij"
    assert [store.read(task.id, "output", n) for n in (2, 3, 6, 9, 10, 50)] == [
        b"cdefghij",
        b"defghij",
        b"ghij",
        b"j",
        b"",
        b"",
    ]
    assert store.read(task.id, "error", 1) == b"ops"
    with pytest.raises(NoSuchTask):
        store.read("shell-00000000-0000-4000-8000-000000000000", "output")


def test_data_version_changes_with_another_writer(writer_and_reader):
    writer, reader = writer_and_reader
    before = reader.data_version()
    assert before is not None  # both stores can tell cheaply
    assert reader.data_version() == before
    task = make_task()
    time.sleep(0.02)  # files: folder times change at the kernel's clock tick
    writer.add(task)
    after_add = reader.data_version()
    assert after_add != before
    time.sleep(0.02)
    writer.append(task.id, "output", b"more")
    assert reader.data_version() != after_add


def test_listing_sees_files_changed_by_another_writer(writer_and_reader):
    # The filesystem store re-reads only changed files when it lists again.
    writer, reader = writer_and_reader
    task = make_task()
    writer.add(task)
    assert [t.status for t in reader.list(TaskQuery())] == ["running"]
    task.status = "complete"
    writer.update(task)
    assert [t.status for t in reader.list(TaskQuery())] == ["complete"]
    assert [t.status for t in reader.recent(0)] == ["complete"]
    writer.delete([task.id])
    assert reader.list(TaskQuery()) == []


def test_redact_scrubs_commands_output_and_the_search_index(store):
    from qme.redact import Redactor

    secret = "ghp_" + "Z9" * 18
    task = make_task(f"deploy --token {secret}", message=f"uses {secret}")
    store.add(task)
    store.append(task.id, "output", b"fine line\n" + secret.encode() + b" printed\n")
    store.append(task.id, "error", b"nothing here\n")
    task.returncode, task.status, task.ended = 0, "complete", time.time()
    store.update(task)
    other = make_task("echo harmless")
    store.add(other)
    assert [h.task.id for h in store.search([secret.lower()], executor=None, limit=5, rank=False)]
    assert store.redact(Redactor()) == 1
    got = store.get(task.id)
    assert secret not in got.command and "[redacted]" in got.command
    assert secret not in " ".join(got.argv) and secret not in got.message
    assert got.output == b"fine line\n[redacted] printed\n"
    assert got.error == b"nothing here\n"
    assert store.search([secret.lower()], executor=None, limit=5, rank=False) == []
    assert [h.task.id for h in store.search(["printed"], executor=None, limit=5, rank=False)] == [
        task.id
    ]
    assert store.redact(Redactor()) == 0  # nothing left
    assert store.redact(Redactor(["harmless"], builtin=False)) == 1
    assert store.get(other.id).command == "echo [redacted]"


def test_stats_count_the_same_in_every_store(store):
    """The statistics page's numbers (per day, per host, most-run, slowest) are the
    plain count over the tasks, whatever the store: commands and hosts that differ
    only in case or after their first 1024 bytes are counted apart, text that is
    not UTF-8 comes back as it went in, tasks before the window are left out."""
    from qme.store.stats import stats_of

    now = float(int(time.time()))
    long = "echo " + "x" * 1100
    made = []
    for days_ago, seconds, command, host, status in [
        (0, 2.5, "make test", "box", "failed"),
        (0, 0.5, "make test", "box", "complete"),
        (0, 1.0, "Make Test", "Box", "complete"),
        (1, 4.0, "make test", "gpu1", "failed"),
        (1, None, "sleep 30", "gpu1", "running"),
        (2, 0.25, long + "a", "box", "complete"),
        (2, 0.75, long + "b", "box", "complete"),
        (2, 8.0, "echo $'\\xff' \udcfe", "box\udcfe", "complete"),
        (40, 1.0, "too old", "box", "failed"),
    ]:
        started = now - days_ago * 86400 - 1.5
        task = make_task(command, started=started, host=host, status=status)
        if seconds is not None:
            task.ended = started + seconds
        store.add(task)
        made.append(task)
    since = now - 30 * 86400
    for host in (None, "box", "gpu1", "nowhere"):
        expected = stats_of(made, since, host)
        got = store.stats(since, host)
        assert (got.days, got.hosts, got.most_run) == (
            expected.days,
            expected.hosts,
            expected.most_run,
        ), host
        assert got.slowest == expected.slowest, host
    everything = store.stats(since)
    assert (everything.tasks, everything.failed) == (8, 2)
    assert everything.hosts[0] == ("box", 4, 1)
    assert ("make test", 3, 2) in everything.most_run and ("Make Test", 1, 0) in everything.most_run
    assert everything.slowest[0] == ("echo $'\\xff' \udcfe", 1, 8.0, 8.0)
