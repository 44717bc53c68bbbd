"""What happens when a recorder has ended its command: a task that has ended
notifies (when qme/notify.py says it is due), one whose job goes on without it (a
Slurm job, a detached container) is handed to the watcher (watcher.py).

Notifications are sent from a thread of their own, so that neither the writer
child's next frames (a `qme on` session goes on) nor its final save wait for a
slow webhook; close() waits for them before the child exits.
"""

from __future__ import annotations

import threading

from qme import console, notify
from qme.recorder import watcher

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.config import Settings
    from qme.notify import Terminal
    from qme.task import Task

SEND_SECONDS = 120  # how long close() waits for notifications still being sent


class Notifier:
    """Sends the notifications of tasks that end, one thread per notification."""

    def __init__(self, settings: Settings, terminal: Terminal | None = None):
        self.settings, self.terminal = settings, terminal
        self.threads: list[threading.Thread] = []

    def ended(self, task: Task) -> None:
        """The recorder has ended task's command (its final update)."""
        if task.ended is None:  # stopped (Ctrl-Z), or not ended yet
            return
        if not task.finished:  # its job goes on: the watcher follows it
            try:
                watcher.follow(self.settings, task, self.terminal)
            except OSError as exc:
                console.warn(f"cannot watch task {task.short_id} to its end: {exc}")
            return
        if notify.due(task, self.settings):
            self.send(task)

    def send(self, task: Task) -> None:
        note = notify.for_task(task, self.settings)
        session = bool(task.session)
        thread = threading.Thread(
            target=self._send, args=(note, session), name="qme-notify", daemon=True
        )
        thread.start()
        self.threads.append(thread)

    def _send(self, note: notify.Message, session: bool) -> None:
        done = notify.send(note, self.settings, self.terminal, session=session)
        for channel, said in done.items():
            if said.startswith("not sent"):
                console.debug(f"notification of task {note.task_id} by {channel}: {said}")

    def close(self, wait: float = SEND_SECONDS) -> None:
        for thread in self.threads:
            thread.join(wait)
        if self.terminal is not None:
            self.terminal.close()
