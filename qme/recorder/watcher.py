"""The watcher: one small process per user and home that follows the tasks whose
recorder has ended while their job goes on (a Slurm job submitted with sbatch, a
detached container), until each ends; then it saves the task as its executor
refreshes it (for Slurm: its state, exit code and archived accounting) and sends
its notification. It exits when it has nothing left to follow.

- Which tasks: one file per task in `$QME_HOME/watch/`, written by the writer
  child when it hands a task over (follow()); the watcher deletes it once the
  task has ended and its executor has nothing more to add (accounting lags a
  little behind a job's end).
- One at a time: the running watcher holds a lock on `$QME_HOME/watch/.lock`;
  start() starts one only when nobody holds it, and a watcher started twice
  sees the lock taken and exits.
- How often: every `watch_interval` seconds (30 or more: a user's watcher never
  asks a scheduler more often than that), one refresh for all the tasks it
  follows (the Slurm executor asks for all jobs in one sacct or squeue call).
- Surviving a logout: it runs in a session of its own (setsid) with no terminal,
  ignores SIGHUP, and writes to `$QME_HOME/watcher.log`: closing the
  terminal or logging out of an ssh session leaves it running. Where systemd-logind
  kills a user's processes at logout (KillUserProcesses=yes), see
  docs/notifications.md (`loginctl enable-linger`).
- The terminal: if the shell the job was submitted from still has its terminal
  and sits at its prompt when the job ends, the notification is written there
  too (see qme.notify.Terminal); otherwise only the URLs and the dashboard say it.

Run by start() as `python -m qme.recorder.watcher HOME [OVERRIDES]`.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

from qme import console, notify, private

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.config import Settings
    from qme.task import Task

FOLDER = "watch"
LOCK = ".lock"
LOG = "watcher.log"  # in $QME_HOME
LOG_LIMIT = 1 << 20  # bytes of log kept: a longer log is emptied when a watcher starts
# The suite's knob (never a setting): the interval in seconds, below the floor.
TEST_INTERVAL = "QME_TEST_WATCH_INTERVAL"


def folder(home: str) -> str:
    return os.path.join(home, FOLDER)


def follow(settings: Settings, task: Task, terminal: notify.Terminal | None = None) -> None:
    """Hand task to the watcher (and start one if none runs). terminal: the one
    the task's command ran in, told too if it is still open when the job ends."""
    where = folder(settings.home)
    private.make_dir(where)
    record: dict = {"since": time.time()}
    if terminal is not None and terminal.path:
        record.update(tty=terminal.path, leader=terminal.leader)
    private.write_file(os.path.join(where, task.id), json.dumps(record).encode())
    start(settings)


def watched(home: str) -> list[str]:
    """The ids of the tasks the watcher follows."""
    try:
        names = os.listdir(folder(home))
    except FileNotFoundError:
        return []
    return sorted(n for n in names if not n.startswith(".") and not n.endswith(".tmp"))


def _lock(home: str) -> int | None:
    """The watcher's lock, taken (None: another watcher holds it)."""
    private.make_dir(folder(home))
    fd = private.open_file(os.path.join(folder(home), LOCK), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for `qme notify status`
    return fd


def pid(home: str) -> int | None:
    """The running watcher's process id, or None when none runs."""
    if not running(home):
        return None
    try:
        with open(os.path.join(folder(home), LOCK), encoding="ascii") as handle:
            return int(handle.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def running(home: str) -> bool:
    """Whether a watcher runs for this home."""
    fd = _lock(home)
    if fd is None:
        return True
    os.close(fd)
    return False


def start(settings: Settings) -> int | None:
    """Start a watcher for settings' home unless one runs; its pid, or None."""
    if running(settings.home):
        return None
    log_path = os.path.join(settings.home, LOG)
    try:
        if os.path.getsize(log_path) > LOG_LIMIT:
            os.truncate(log_path, 0)
    except OSError:
        pass
    log = private.open_file(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "qme.recorder.watcher", settings.home]
            + ([json.dumps(settings.overrides)] if settings.overrides else []),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            start_new_session=True,  # no terminal: a hang-up never reaches it
            close_fds=True,
        )
    finally:
        os.close(log)
    return child.pid


def interval(settings: Settings) -> float:
    """Seconds between two rounds: watch_interval (never under its floor, 30 s);
    the suite alone goes lower, through QME_TEST_WATCH_INTERVAL."""
    if os.environ.get(TEST_INTERVAL):
        return float(os.environ[TEST_INTERVAL])
    return settings.value("watch_interval")


class Watcher:
    """One watcher's rounds (see the module's docstring)."""

    def __init__(self, settings: Settings):
        from qme.executors import Registry

        self.settings = settings
        self.registry = Registry(settings)
        self.stopping = False
        self.rounds = 0

    def run(self) -> int:
        lock = _lock(self.settings.home)
        if lock is None:
            return 0  # another watcher follows them
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._stop)
        every = interval(self.settings)
        console.info(f"watcher {os.getpid()} started: a round every {every:g} s")
        try:
            while not self.stopping:
                ids = watched(self.settings.home)
                if not ids:
                    os.close(lock)  # then look again: a task handed over meanwhile
                    lock = None  # found the lock taken and started no watcher
                    if not watched(self.settings.home):
                        break
                    lock = _lock(self.settings.home)
                    if lock is None:
                        break
                    continue
                try:
                    self.round(ids)
                except Exception as exc:  # noqa: BLE001 - a store or scheduler that fails now
                    console.warn(f"watcher round failed: {type(exc).__name__}: {exc}")
                self._sleep(every)
        finally:
            if lock is not None:
                os.close(lock)
        console.info(f"watcher {os.getpid()} ends: nothing left to follow")
        return 0

    def round(self, ids: list[str]) -> None:
        """Refresh every followed task at once, save what changed, notify what ended."""
        from qme.errors import NoSuchTask
        from qme.store import open_store

        self.rounds += 1
        with open_store(self.settings) as store:
            tasks = []
            for task_id in ids:
                try:
                    tasks.append(store.get(task_id, streams=False))
                except NoSuchTask:  # deleted meanwhile
                    self.forget(task_id)
            changed = self.registry.refresh(tasks)
            for task in changed:
                store.update(task)
        for task in tasks:
            if not task.finished:
                continue
            record = self._record(task.id)
            if not record.get("told"):
                if notify.due(task, self.settings):
                    self.tell(task, record)
                record["told"] = time.time()
                private.write_file(self._path(task.id), json.dumps(record).encode())
            if task not in changed:  # ended, and its executor has nothing more to add
                self.forget(task.id)

    def tell(self, task: Task, record: dict) -> None:
        terminal = _terminal(record)
        try:
            done = notify.send(notify.for_task(task, self.settings), self.settings, terminal)
        finally:
            if terminal is not None:
                terminal.close()
        console.info(f"task {task.id} ended ({task.status}): {done}")

    def forget(self, task_id: str) -> None:
        try:
            os.unlink(self._path(task_id))
        except FileNotFoundError:
            pass

    def _path(self, task_id: str) -> str:
        return os.path.join(folder(self.settings.home), task_id)

    def _record(self, task_id: str) -> dict:
        try:
            with open(self._path(task_id), encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def _stop(self, *_) -> None:
        self.stopping = True

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.5, deadline - time.monotonic()))


def _terminal(record: dict) -> notify.Terminal | None:
    """The terminal the task was started from, if its shell still has it open."""
    if not record.get("tty") or not record.get("leader"):
        return None
    return notify.Terminal.reopen(record["tty"], record["leader"])


def main(argv: list[str]) -> int:
    from qme.config import Settings

    overrides = json.loads(argv[1]) if len(argv) > 1 else {}
    settings = Settings.load(argv[0], **overrides)
    console.set_level(settings.log_level_if_readable() or "WARNING")
    return Watcher(settings).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
