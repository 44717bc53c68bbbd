"""When the store fails, `qme run` still runs the command to the end with its own exit
code, and says so in one warning line on stderr (no traceback): the record waits in
the spool and is delivered once the store works again, or, when even the spool
cannot be written, is lost. A recorder that dies leaves its task `lost`.

Real failures only: a read-only home, a file where the home should be, a database
that is not SQLite, a database locked by another process, a full disk (a small
tmpfs), a broken config.ini, a SIGKILLed recorder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import LockedDatabase, start_run, unavailable, wait_for

ROOT = Path(__file__).resolve().parent.parent
QME = [sys.executable, "-m", "qme"]
IS_ROOT = os.geteuid() == 0
LOST = "qme: warning: this command was not recorded: "
SPOOLED = "qme: warning: could not write to the store ("
# The command every test runs: some output on both streams and an exit code of its own.
COMMAND = ["sh", "-c", "echo ran; echo oops >&2; exit 4"]


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
    monkeypatch.chdir(tmp_path)


def run_qme(*args: str, env: dict | None = None, prefix=(), python=None, timeout=60):
    argv = [*prefix, python or sys.executable, "-m", "qme", *args]
    return subprocess.run(
        argv,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def assert_ran_and_warned_once(result, *reasons: str, spooled: bool = True) -> str:
    """The command ran (its output, its exit code), and qme added exactly one
    warning line on stderr, saying the record is spooled (or lost); returns it."""
    stderr = result.stderr.decode(errors="replace")
    assert "Traceback" not in stderr, stderr
    assert result.returncode == 4, stderr
    assert result.stdout == b"ran\n"
    lines = stderr.splitlines()
    warnings = [line for line in lines if line.startswith("qme:")]
    assert len(warnings) == 1, stderr
    assert warnings[0].startswith(SPOOLED if spooled else LOST), stderr
    assert sorted(lines) == sorted(["oops", warnings[0]]), stderr
    for reason in reasons:
        assert reason in warnings[0], warnings[0]
    return warnings[0]


def require_root(what: str) -> None:
    if not IS_ROOT:
        unavailable(f"{what} needs root (CI runs as root)")


# -- where the store cannot be -----------------------------------------------------------


def test_home_is_a_regular_file(tmp_path):
    home = tmp_path / "not-a-directory"
    home.write_text("just a file\n")
    result = run_qme("run", *COMMAND, env={"QME_HOME": str(home)})
    assert_ran_and_warned_once(result, spooled=False)
    assert home.read_text() == "just a file\n"


def assert_delivered(qme_home) -> None:
    """The spooled record of COMMAND reaches the store that works again, whole."""
    listing = run_qme("ls", "--json")
    assert listing.returncode == 0, listing.stderr
    assert listing.stderr == b""
    (task,) = [t for t in json.loads(listing.stdout) if t["argv"] == COMMAND]
    assert (task["status"], task["returncode"]) == ("failed", 4)
    for stream, text in (("--output", b"ran\n"), ("--error", b"oops\n")):
        assert run_qme("get", task["id"], stream).stdout == text
    assert list((qme_home / "spool").iterdir()) == []


def test_database_path_is_a_directory(qme_home):
    (qme_home / "qme.db").mkdir(parents=True)
    result = run_qme("run", *COMMAND)
    assert_ran_and_warned_once(result, str(qme_home / "spool"))
    (qme_home / "qme.db").rmdir()
    assert_delivered(qme_home)


def _unprivileged(tmp_path: Path):
    """(argv prefix, python, PYTHONPATH) to run qme as nobody, or ([], None, None)
    when the tests already run unprivileged."""
    if not IS_ROOT:
        return [], None, None
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to run qme as an unprivileged user")
    prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    # A copy of the package that nobody can read, wherever the checkout is.
    source = tmp_path / "src"
    shutil.copytree(ROOT / "qme", source / "qme", ignore=shutil.ignore_patterns("__pycache__"))
    for path in (tmp_path, source):
        path.chmod(0o755)
    for python in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(
            [*prefix, python, "-c", "import sqlite3"], capture_output=True, cwd="/"
        )
        if probe.returncode == 0:
            return prefix, python, str(source)
    pytest.fail("no Python that the unprivileged user 'nobody' can run")


@pytest.mark.parametrize("existing_store", [False, True], ids=["fresh", "existing-store"])
def test_home_is_read_only(existing_store):
    # Outside pytest's tmp_path, whose parents only root may enter.
    base = Path(tempfile.mkdtemp(prefix="qme-ro-"))
    try:
        prefix, python, source = _unprivileged(base)
        home = base / "home"
        home.mkdir()
        env = {"QME_HOME": str(home)}
        if source:
            env["PYTHONPATH"] = source
        if existing_store:
            first = run_qme("run", "true", env=env)
            assert first.returncode == 0 and first.stderr == b""
            assert run_qme("ls", env=env).returncode == 0  # waits for its writer
        if IS_ROOT:
            for path in home.rglob("*"):
                os.chown(path, 65534, 65534)
            os.chown(home, 65534, 65534)
        before = sorted(p.name for p in home.iterdir())
        home.chmod(0o500)
        result = subprocess.run(
            [*prefix, python or sys.executable, "-m", "qme", "run", *COMMAND],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            cwd="/",
            env={**os.environ, **env},
        )
        assert_ran_and_warned_once(result, spooled=False)
        assert sorted(p.name for p in home.iterdir()) == before
    finally:
        (base / "home").chmod(0o700) if (base / "home").exists() else None
        shutil.rmtree(base, ignore_errors=True)


# -- a store that is there but unusable ---------------------------------------------------


def test_database_is_not_sqlite(qme_home):
    qme_home.mkdir()
    garbage = b"this is not a database\n" * 100 + bytes(range(256))
    (qme_home / "qme.db").write_bytes(garbage)
    result = run_qme("run", *COMMAND)
    assert_ran_and_warned_once(result, "not a database")
    assert (qme_home / "qme.db").read_bytes() == garbage  # left as it was


@pytest.mark.parametrize("how", ["QME_LOG_LEVEL", "--log_level"])
@pytest.mark.parametrize("command", [COMMAND, ["sh", "-c", "sleep 0.3; " + COMMAND[2]]])
def test_log_level_error_silences_the_warning(qme_home, how, command):
    """Quick commands are reported by the writer child, longer ones by qme run."""
    qme_home.mkdir()
    (qme_home / "qme.db").write_bytes(b"this is not a database\n" * 100)
    if how == "QME_LOG_LEVEL":
        result = run_qme("run", *command, env={"QME_LOG_LEVEL": "error"})
    else:
        result = run_qme("--log_level", "error", "run", *command)
    assert (result.returncode, result.stdout, result.stderr) == (4, b"ran\n", b"oops\n")
    assert run_qme("sync", "--list").stdout.count(b"\n") >= 1  # spooled all the same
    assert_ran_and_warned_once(run_qme("run", *command), "not a database")


def test_database_from_a_newer_qme(qme_home):
    qme_home.mkdir()
    db = sqlite3.connect(qme_home / "qme.db")
    db.execute("PRAGMA user_version = 999")
    db.close()
    result = run_qme("run", *COMMAND)
    assert_ran_and_warned_once(result, "newer")
    (qme_home / "qme.db").unlink()
    assert_delivered(qme_home)


@pytest.mark.slow
def test_database_locked_longer_than_the_busy_timeout(qme_home):
    # A store that works, then another process holds it for longer than qme waits.
    assert run_qme("run", "true").returncode == 0
    holder = LockedDatabase(qme_home / "qme.db")
    try:
        begin = time.monotonic()
        proc = start_run(*COMMAND, env={**os.environ, "QME_BUSY_TIMEOUT": "2"})
        first = proc.stdout.readline()
        shown_after = time.monotonic() - begin
        try:  # qme waits for the busy timeout (2 s here), then must end
            out, err = proc.communicate(timeout=40)
        finally:
            proc.kill()
    finally:
        holder.release()
    # The command's output is not held back by the store …
    assert first == b"ran\n"
    assert shown_after < 5, f"the command's output took {shown_after:.1f}s to show"
    result = subprocess.CompletedProcess(proc.args, proc.returncode, first + out, err)
    assert_ran_and_warned_once(result, "locked")
    assert_delivered(qme_home)  # the lock is gone


# -- a full disk --------------------------------------------------------------------------


# In a private mount namespace (unshare -m, as root): a small tmpfs as QME_HOME. The
# driver, run there, records a first command, fills the disk, runs COMMAND-like
# with output, reads, frees the space and waits for the record; it prints what it
# saw as JSON. The mount goes away with the namespace's last process.
DISK_FULL_DRIVER = r"""
import json, os, subprocess, sys, time
home = os.environ["QME_HOME"]
def qme(*args):
    done = subprocess.run([sys.executable, "-m", "qme", *args], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    return [done.returncode, done.stdout.decode("latin-1"), done.stderr.decode("latin-1")]
seen = {"first": qme("run", "true")}
qme("ls")  # waits for the first record
filler = os.open(os.path.join(home, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
for size in (1 << 16, 1 << 12, 1):
    try:
        while True:
            os.write(filler, b"x" * size)
    except OSError:
        pass
os.close(filler)
seen["run"] = qme("run", *sys.argv[1:])
seen["ls"] = qme("ls", "--json")
seen["search"] = qme("search", "true")
seen["get"] = qme("get", "--output")
os.unlink(os.path.join(home, "filler"))
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    listing = qme("ls", "--json")
    tasks = json.loads(listing[1] or "[]")
    if any(t["returncode"] == 4 for t in tasks):
        break
    time.sleep(0.2)
seen["after"] = listing
seen["output"] = qme("get", "--output")
seen["error"] = qme("get", "--error")
seen["spool"] = sorted(os.listdir(os.path.join(home, "spool")))
print(json.dumps(seen))
"""
# Output on both streams, more than fits in the spool's first write on a full disk.
BIG = "x" * 100_000
FULL_COMMAND = ["sh", "-c", f"echo ran; sleep 0.2; echo {BIG}; echo oops >&2; exit 4"]


def in_private_tmpfs(tmp_path, size: str, driver: str, *args: str, env=None) -> dict:
    """Run the driver (Python source) with a fresh tmpfs of that size as QME_HOME,
    in a mount namespace of its own; what it printed, as JSON."""
    require_root("a tmpfs in a private mount namespace")
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to mount a private tmpfs")
    home = tmp_path / "tiny"
    home.mkdir()
    (tmp_path / "driver.py").write_text(driver)
    script = f'mount -t tmpfs -o size={size},mode=0700 tmpfs "$1" && shift && exec "$@"'
    result = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            str(home),
            sys.executable,
            str(tmp_path / "driver.py"),
            *args,
        ],
        capture_output=True,
        timeout=300,
        env={**os.environ, "QME_HOME": str(home), **(env or {})},
    )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


@pytest.mark.parametrize("database", ["sqlite", "filesystem"])
def test_disk_full_keeps_the_record_until_there_is_room(tmp_path, database):
    """The command keeps its exit code and output, one line names the full disk,
    reads work on the full disk, and the record arrives whole once there is room."""
    seen = in_private_tmpfs(
        tmp_path, "2m", DISK_FULL_DRIVER, *FULL_COMMAND, env={"QME_DATABASE": database}
    )
    assert seen["first"] == [0, "", ""]
    code, out, err = seen["run"]
    assert (code, out) == (4, f"ran\n{BIG}\n"), err
    warnings = [line for line in err.splitlines() if line.startswith("qme:")]
    assert sorted(err.splitlines()) == sorted(["oops", *warnings]) and len(warnings) == 1, err
    assert "disk is full" in warnings[0] and "No space left" in warnings[0], warnings
    assert "rollback" not in warnings[0]
    for read in ("ls", "search", "get"):  # reads go on while the disk is full
        assert seen[read][0] == 0 and "Traceback" not in seen[read][2], (read, seen[read])
        assert "error" not in seen[read][2], (read, seen[read])
    [task] = [t for t in json.loads(seen["after"][1]) if t["command"] != "true"]
    assert (task["status"], task["returncode"]) == ("failed", 4), task
    assert seen["output"][1] == f"ran\n{BIG}\n"
    assert seen["error"][1] == "oops\n"
    assert seen["spool"] == []


# -- configuration -------------------------------------------------------------------------


def test_corrupt_config_warns_on_run_and_fails_elsewhere(qme_home):
    qme_home.mkdir()
    (qme_home / "config.ini").write_text("[DEFAULT\ngarbage = = =\n")
    result = run_qme("run", *COMMAND)
    assert_ran_and_warned_once(result, "config.ini")
    listing = run_qme("ls")
    assert listing.returncode == 1
    assert listing.stdout == b""
    lines = listing.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qme: error:"), lines
    assert "config.ini" in lines[0]


def test_bad_max_output_setting_still_runs(qme_home):
    result = run_qme("run", *COMMAND, env={"QME_MAX_OUTPUT": "lots"})
    assert result.returncode == 4 and result.stdout == b"ran\n"
    assert b"Traceback" not in result.stderr


def test_no_fds_left_for_the_writer_child_still_runs_the_command(qme_home):
    """qme run forks its writer child 50 ms into the command; with no file
    descriptor left for the child's pipes, the command runs on unrecorded."""
    import resource

    def few_fds():  # stdio, the command's two pipes, the pump's wake-up pipe, a lock
        resource.setrlimit(resource.RLIMIT_NOFILE, (9, 9))

    command = ["sh", "-c", "sleep 0.3; echo ran; exit 4"]  # sh's >&2 needs fd 10
    result = subprocess.run(
        [sys.executable, "-m", "qme", "run", *command],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        preexec_fn=few_fds,
    )
    assert (result.returncode, result.stdout) == (4, b"ran\n")
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("qme: warning: cannot start qme's writer process"), lines


# -- a recorder that dies ------------------------------------------------------------------


def test_killed_recorder_leaves_the_task_lost(qme_home):
    from qme import Queue

    proc = start_run("sleep", "30")
    sleeper = None
    try:
        queue = Queue(config_dir=qme_home)
        deadline = time.monotonic() + 15
        task = None
        while time.monotonic() < deadline:
            try:
                task = queue.get()
                break
            except Exception:  # noqa: BLE001 - not there yet
                time.sleep(0.05)
        assert task is not None, "the task never appeared"
        queue.close()
        assert task.status == "running"
        sleeper = task.pid
        assert Path(f"/proc/{sleeper}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
        proc.kill()  # SIGKILL the recorder, not the command
        proc.wait(timeout=10)
        assert Path(f"/proc/{sleeper}").exists()  # the command lives on, orphaned

        listing = run_qme("ls")
        assert listing.returncode == 0
        row = [line for line in listing.stdout.decode().splitlines() if "sleep 30" in line]
        assert len(row) == 1 and " lost " in f" {row[0]} ", listing.stdout
        shown = run_qme("get")
        assert json.loads(shown.stdout)["status"] == "lost"
        queue = Queue(config_dir=qme_home)
        assert queue.get(task.id).status == "lost"
        queue.close()
    finally:
        proc.kill()
        if sleeper is not None:
            try:
                cmdline = Path(f"/proc/{sleeper}/cmdline").read_bytes()
                if cmdline.startswith(b"sleep\0"):
                    os.kill(sleeper, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass


# -- a writer child that dies --------------------------------------------------------------


def children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


@pytest.mark.parametrize("database", ["sqlite", "filesystem"])
def test_a_killed_writer_child_loses_nothing(tmp_path, qme_home, database):
    """SIGKILL to the real writer child while the command runs: another takes over,
    the record is whole (its output before and after the kill, its exit code), and
    one warning says so."""
    go = tmp_path / "go"
    script = f"echo first; while [ ! -e {go} ]; do sleep 0.02; done; seq 1 50000; exit 3"
    env = {**os.environ, "QME_DATABASE": database}
    proc = start_run("sh", "-c", script, env=env)
    try:
        from qme import Queue

        def started():
            with Queue(config_dir=qme_home, database=database) as queue:
                try:
                    task = queue.get()
                except Exception:  # noqa: BLE001 - not there yet
                    return None
                return task if queue.read(task.id) == b"first\n" else None

        task = wait_for(started, what="the task and its first line in the store")
        [writer] = children(proc.pid) - {task.pid}
        os.kill(writer, signal.SIGKILL)
        go.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    expected = b"first\n" + b"".join(b"%d\n" % n for n in range(1, 50001))
    assert (proc.returncode, out) == (3, expected), err
    [warning] = err.decode().splitlines()
    assert warning == (
        f"qme: warning: qme's writer process {writer} was killed (signal 9); "
        "another took over the record: nothing was lost"
    )
    listing = run_qme("ls", "--json", env={"QME_DATABASE": database})
    [shown] = json.loads(listing.stdout)
    assert (shown["id"], shown["status"], shown["returncode"]) == (task.id, "failed", 3)
    got = run_qme("get", task.id, "--output", env={"QME_DATABASE": database})
    assert got.stdout == expected


def test_the_recorder_keeps_only_the_frames_of_tasks_not_yet_written(qme_home):
    """What a writer child that dies would need is kept until the child says the task
    is written, then let go: a session's proxy does not hold its whole output."""
    from qme import Queue
    from qme.config import Settings
    from qme.recorder.handoff import ChildWriter
    from qme.task import Task

    writer = ChildWriter(Settings.load(qme_home))
    writer.start()
    for number in range(3):
        task = Task.begin(f"echo {number}", ["echo", str(number)], executor="shell")
        writer.add(task)
        writer.append(task.id, "output", b"x" * 100_000)
        assert writer.sent_size > 100_000
        task.end(0)
        writer.update(task)
        wait_for(lambda: writer.error is None and not writer.unconfirmed, what="written")
        assert (writer.sent, writer.sent_size) == ({}, 0)
    assert writer.close() is None
    with Queue(config_dir=qme_home) as queue:
        assert [len(queue.get(t.id).output) for t in queue.list()] == [100_000] * 3
