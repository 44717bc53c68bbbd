"""The writer child's side (see handoff.py): read the parent's frames, choose and
run the executor's hooks, write through a StoreWriter (which spools what the
store will not take), then let readers go on and deliver older spool files.

Failures are told to the parent on the report pipe while it runs; the child also
keeps the user's stderr until the store has taken the task's first batch, so that
a failure the parent did not read before it exited (a command quicker than the
store's verdict) is still told, once, by the child itself.

On a full disk, where even the spool has no room, the child keeps what it could
not write and, once it has let readers and the user's stderr go, waits for room
(up to SPACE_WAIT_SECONDS) to put it in the spool and deliver it.
"""

from __future__ import annotations

import ast
import fcntl
import os
import select
import struct
import sys
import termios

from qme import console, executors, pending, private, redact
from qme.errors import ConfigError
from qme.recorder.hooks import ExecutorHooks
from qme.recorder.notifier import Notifier
from qme.recorder.wire import SPOOLING, SYNCED, TOOK_FIRST, frames
from qme.store import identity, open_store, spool
from qme.store.writer import StoreWriter
from qme.task import Task

PARENT_EXIT_SECONDS = 2  # how long to wait for the parent to exit, to see what it read
SPACE_WAIT_SECONDS = 3600  # how long a record a full disk held back waits for room


def serve(
    settings, data: int, reports: int, stderr: int | None, lock, lock_name, terminal=None
) -> None:
    """terminal: the qme.notify.Terminal the command ran in (None: none), for its
    notification (recorder/notifier.py), sent once the record is written."""
    console.set_level(settings.log_level_if_readable() or "WARNING")
    if stderr is not None and not console.shows("WARNING"):
        os.close(stderr)
        stderr = None
    reporter = Reporter(reports, stderr)
    store_id = identity(settings)
    writer = StoreWriter(
        lambda: open_store(settings),
        settings.home,
        reporter.event,
        store_id=store_id,
        space_wait=SPACE_WAIT_SECONDS,
        redactor=redact.for_settings(settings),  # here, never on qme run's own path
    )
    private.tighten_home_and_say(settings.home, console.warn)  # an older qme's home
    tasks = ChildTasks(settings)
    notifier = Notifier(settings, terminal)
    if readable(settings):  # else opening the store says why, once
        for line in tasks.executors.setting_problems():  # qme run runs anyway: one line each
            console.warn(line)
    try:
        for op, parent_id, payload in frames(data):
            if op == "close":
                break
            if op == "add":
                writer.add(tasks.add(parent_id, payload))
            elif op == "resume":  # another writer child began this task, then died
                writer.resume(tasks.add(parent_id, payload))
            elif op == "update":
                task = tasks.update(parent_id, payload)
                writer.update(task)
                if task.finished:  # readers wait for this (see qme/pending.py), and the
                    writer.sync()  # parent may wait to hear that the record is safe: told
                    reporter.synced()  # here, a failure of the final update reaches the user
                    pending.unlock(lock)
                if task.ended is not None:  # the command has ended: notify, or watch its job
                    if not task.finished:
                        writer.sync()  # the watcher reads it from the store
                    notifier.ended(task)
            else:
                writer.append(tasks.feed(parent_id, op, payload), op, payload)
    finally:
        writer.close()
        reporter.synced()  # for a parent still waiting: everything is written now
        pending.release(lock, settings.home, lock_name)
        reporter.finish()
        notifier.close()  # after the parent and the user's stderr are let go
    waited = bool(writer.held)
    if waited and not writer.wait_for_space():
        return  # no room for an hour: the record is lost (said when the disk filled)
    if (writer.error is None or waited) and spool.pending(settings.home):
        with open_store(settings) as store:  # a store that still fails: readers deliver later
            spool.deliver(settings.home, store, store_id, unmarked=False)


def readable(settings) -> bool:
    """Whether config.ini can be read (or is absent)."""
    try:
        settings.file_values  # noqa: B018 - read it
    except ConfigError:
        return False
    return True


class ChildTasks:
    """The parent's tasks as stored: the executor is chosen here when the parent
    left it open (its id is then the uuid alone), prepared, and finished."""

    def __init__(self, settings):
        self.executors = executors.Registry(settings)
        self.known: dict[str, tuple[Task, ExecutorHooks | None]] = {}

    def add(self, parent_id: str, payload: bytes) -> Task:
        task = Task(**ast.literal_eval(payload.decode()))
        hooks = None
        try:
            executor = self.executors.for_task(task)
            hooks = ExecutorHooks(executor)
            if not task.executor:
                task.assign_executor(executor.name)
            hooks.prepare(task)
        except Exception:  # noqa: BLE001 - a broken executor must not lose the record
            hooks = None
        if not task.executor:
            task.assign_executor(executors.DEFAULT)
        self.known[parent_id] = (task, hooks)
        return task

    def feed(self, parent_id: str, stream: str, data: bytes) -> str:
        task, hooks = self.known[parent_id]
        if hooks:
            hooks.feed(stream, data)
        return task.id

    def update(self, parent_id: str, payload: bytes) -> Task:
        task, hooks = self.known[parent_id]
        fresh = Task(**ast.literal_eval(payload.decode()))
        fresh.id, fresh.executor = task.id, task.executor
        fresh.data = {**task.data, **fresh.data}  # what prepare() added
        if fresh.finished:
            del self.known[parent_id]
            if hooks:
                try:
                    hooks.finish(fresh)
                except Exception:  # noqa: BLE001
                    pass
        return fresh


class Reporter:
    """Tells the user, once, that the store failed: through the parent while it
    runs, else on the user's stderr (kept only until the store took a batch)."""

    def __init__(self, reports: int, stderr: int | None):
        self.reports, self.stderr = reports, stderr
        self.told: bytes | None = None
        self.sent = False  # the last failure went into the report pipe
        os.set_blocking(reports, False)
        if stderr is not None:  # qme's own warnings (a broken executor plugin) too
            sys.stderr = open(os.dup(stderr), "w", buffering=1, errors="replace")  # noqa: SIM115

    def event(self, kind: str, message: str | None) -> None:
        """Called from the writer's thread."""
        if kind == "written":
            if self.stderr is not None and self.told is None:
                self._tell_parent(TOOK_FIRST)
            self._let_go_of_stderr()
            return
        self.told = f"{message}\n".encode(errors="backslashreplace")
        kept = SPOOLING.encode() if kind == "spooling" else b""
        try:
            os.write(self.reports, kept + self.told)
            self.sent = True
        except OSError:  # the parent has exited
            self.sent = False

    def synced(self) -> None:
        """The output so far is in the store (see ChildWriter.close)."""
        if self.told is None:
            self._tell_parent(SYNCED)

    def _tell_parent(self, marker: bytes) -> None:
        """Only before any failure: _read_by_parent counts on failures coming last."""
        try:
            os.write(self.reports, marker)
        except OSError:
            pass

    def finish(self) -> None:
        """The parent is leaving: if it did not read the failure, say it here."""
        unread = self.told and not (self.sent and self._read_by_parent())
        if unread and self.stderr is not None:
            try:
                os.write(self.stderr, b"qme: warning: " + self.told)
            except OSError:
                pass
        self._let_go_of_stderr()

    def _read_by_parent(self) -> bool:
        poller = select.poll()
        poller.register(self.reports, 0)  # only POLLERR: the parent has exited
        poller.poll(PARENT_EXIT_SECONDS * 1000)
        try:
            unread = fcntl.ioctl(self.reports, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return False
        return struct.unpack("i", unread)[0] == 0

    def _let_go_of_stderr(self) -> None:
        if self.stderr is not None:
            os.close(self.stderr)
            self.stderr = None
            sys.stderr.close()
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
