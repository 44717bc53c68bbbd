"""Live updates: one poller tells every connected page what changed in the store.

Pages connect over a websocket (see qme/web/live.py) and get JSON messages:

    {"type": "tasks", "tasks": [TASK, …]}      new tasks and tasks whose record changed
    {"type": "deleted", "ids": [ID, …]}
    {"type": "notify", "id": ID, "title": …, "body": …, "url": …, "good": …}  a task that
        ended and notifies (Queue.notification: notify_after, notify_cancelled); the
        page shows it as a browser notification
    {"type": "output", "id": ID, "stream": "output"|"error", "offset": N, "data": BASE64}

A page that shows one task says `{"follow": ID, "offsets": {"output": N, "error": M}}`
(the bytes it already has) and is then sent what is appended after those offsets.

The poller asks the store when it announces a change (PostgreSQL's LISTEN/NOTIFY,
through Queue.listen()), otherwise when its data version changed (checked every
TICK_SECONDS; a query on SQLite's change counter or on folder times), and in any
case when the period (QME_SOCKET_UPDATE_SECONDS) has passed.
Written with the standard library's threads and queues: in the server they are
greenlets (gevent's monkey patching), in tests plain threads.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time

from qme.api import Queue
from qme.errors import NoSuchTask, QmeError
from qme.task import STREAMS, Task

log = logging.getLogger("qme.web")

TICK_SECONDS = 0.1
# Tasks written by another host whose clock is a little behind still count as new.
SLACK_SECONDS = 10.0
# Messages waiting for one page before it is dropped as too slow to keep up (its
# page reconnects and catches up); a page with BACKLOG waiting gets no output
# until it has read them, so that one slow browser never holds much memory.
QUEUE_LIMIT = 256
BACKLOG = 4
CHUNK_BYTES = 256 * 1024


def summary(task: Task) -> dict:
    """A task as the API and the live messages show it: the record without streams."""
    return {**task.to_dict(streams=False), "short_id": task.short_id}


def _offset(value) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


class Subscriber:
    """One connected page: messages waiting to be sent to it, and what it follows."""

    def __init__(self, limit: int = QUEUE_LIMIT):
        self.limit = limit
        self.messages: queue.Queue[str | None] = queue.Queue(limit + 1)  # + the end mark
        self.following: dict[str, dict[str, int]] = {}  # task id -> stream -> bytes sent
        self.closed = False

    @property
    def backlogged(self) -> bool:
        return self.messages.qsize() >= BACKLOG

    def put(self, text: str) -> None:
        if self.closed:
            return
        if self.messages.qsize() >= self.limit:
            log.info("dropping a websocket client that does not keep up")
            self.close()
            return
        self.messages.put_nowait(text)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.messages.put_nowait(None)

    def __iter__(self):
        while True:
            text = self.messages.get()
            if text is None:
                return
            yield text


class Hub:
    def __init__(self, queue: Queue, period: float = 1.0, tick: float = TICK_SECONDS):
        self.queue = queue
        self.period = period
        self.tick = min(tick, period)
        self.subscribers: set[Subscriber] = set()
        self.lock = threading.Lock()
        self._told: dict[str, dict] = {}  # id -> the summary last sent, for recent tasks
        self._active: set[str] = set()  # running or pending at the last poll
        self._polled_at: float | None = None
        self._more = False  # some output was held back: poll again soon
        self._stopping = threading.Event()

    # -- the poller ---------------------------------------------------------------------

    def start(self) -> None:
        self.poll()  # learn the current state; nobody is connected yet
        threading.Thread(target=self._run, name="qme-hub", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        with self.lock:
            for subscriber in self.subscribers:
                subscriber.close()

    def _run(self) -> None:
        listener = self._listen()
        version = self.queue.data_version() if listener is None else None
        last = time.monotonic()
        while not self._stopping.is_set():
            try:
                if listener is not None:
                    try:
                        changed = listener.wait(self.tick if self._more else self.period)
                    except Exception as exc:  # noqa: BLE001 - the connection is gone: poll
                        log.warning("live updates fall back to polling: %s", exc)
                        listener.close()
                        listener = None
                        continue
                else:
                    self._stopping.wait(self.tick)
                    now_version = self.queue.data_version()
                    changed, version = now_version != version, now_version
                if changed or self._more or time.monotonic() - last >= self.period:
                    last = time.monotonic()
                    self.poll()
            except QmeError as exc:
                log.warning("live update failed: %s", exc)
            except Exception:  # noqa: BLE001 - keep the dashboard live; the log says why
                log.exception("live update failed")
        if listener is not None:
            listener.close()

    def _listen(self):
        try:
            return self.queue.listen()
        except QmeError as exc:
            log.warning("live updates by polling: %s", exc)
            return None

    def poll(self) -> None:
        """Tell subscribers about tasks that are new or changed since the last poll."""
        with self.lock:
            now = time.time()
            since = (now if self._polled_at is None else self._polled_at) - SLACK_SECONDS
            tasks = {t.id: t for t in self.queue.recent(since)}
            deleted = []
            for task_id in self._active - tasks.keys():  # ended (or lost) since
                try:
                    tasks[task_id] = self.queue.get(task_id, streams=False)
                except NoSuchTask:
                    deleted.append(task_id)
            current = {task_id: summary(task) for task_id, task in tasks.items()}
            changed = [s for task_id, s in current.items() if self._told.get(task_id) != s]
            endings = self._endings(tasks, since)
            self._told = current
            self._active = {i for i, t in tasks.items() if not t.finished}
            self._polled_at = now
            self._more = False
            if changed:
                self._broadcast({"type": "tasks", "tasks": changed})
            if deleted:
                self._broadcast({"type": "deleted", "ids": deleted})
            for note in endings:
                self._broadcast({"type": "notify", **note})
            for subscriber in self.subscribers:
                for task_id in subscriber.following.keys() & tasks.keys():
                    self._send_output(subscriber, task_id)

    def _endings(self, tasks: dict[str, Task], since: float) -> list[dict]:
        """The notifications of tasks seen to end since the last poll (running then,
        or new and ended already): Queue.notification says which notify, and how."""
        notes = []
        for task_id, task in tasks.items():
            ended_now = task_id in self._active or task_id not in self._told
            if task.finished and ended_now and (task.ended or 0) >= since:
                note = self.queue.notification(task)
                if note is not None:
                    notes.append(note)
        return notes

    # -- pages --------------------------------------------------------------------------

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber()
        with self.lock:
            self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self.lock:
            self.subscribers.discard(subscriber)
        subscriber.close()

    def follow(self, subscriber: Subscriber, task_id: str, offsets: dict) -> None:
        """Send a task's record, then its output after offsets, now and as it grows."""
        with self.lock:
            try:
                task = self.queue.get(task_id, streams=False)
            except QmeError:
                subscriber.put(_dumps({"type": "deleted", "ids": [task_id]}))
                return
            subscriber.following[task.id] = {s: _offset(offsets.get(s)) for s in STREAMS}
            subscriber.put(_dumps({"type": "tasks", "tasks": [summary(task)]}))
            self._send_output(subscriber, task.id)

    def annotated(self, task: Task) -> None:
        """Tell every page at once about a task whose note or tags the dashboard
        changed (a change to an old task is not among what poll() looks at)."""
        with self.lock:
            self._broadcast({"type": "tasks", "tasks": [summary(task)]})

    def deleted(self, task_ids: list[str]) -> None:
        """Tell every page at once about tasks the dashboard itself deleted."""
        with self.lock:
            for task_id in task_ids:
                self._told.pop(task_id, None)
                self._active.discard(task_id)
            self._broadcast({"type": "deleted", "ids": task_ids})

    def _broadcast(self, message: dict) -> None:
        text = _dumps(message)  # once for every page
        for subscriber in self.subscribers:
            subscriber.put(text)

    def _send_output(self, subscriber: Subscriber, task_id: str) -> None:
        offsets = subscriber.following[task_id]
        for stream in STREAMS:
            if subscriber.backlogged:
                self._more = True
                return
            try:
                data = self.queue.read(task_id, stream, offsets[stream])
            except NoSuchTask:
                return
            while data and not subscriber.backlogged:
                piece, data = data[:CHUNK_BYTES], data[CHUNK_BYTES:]
                message = {"type": "output", "id": task_id, "stream": stream}
                message.update(offset=offsets[stream], data=base64.b64encode(piece).decode())
                subscriber.put(_dumps(message))
                offsets[stream] += len(piece)
            self._more = self._more or bool(data)
