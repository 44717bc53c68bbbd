"""What the command line does for QueueMe 0.0.14's users: its listing format, and
a one-line hint when a home holds QueueMe tasks the configured store does not show."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.api import Queue
    from qme.task import Task


def listing(env, tasks: list[Task]) -> None:
    """QueueMe's `qme ls`: `N  <taskid>\\t<command>`, numbered from 1."""
    from qme.cli.render import safe

    for number, task in enumerate(tasks, start=1):
        env.out(f"{str(number).ljust(2)} {task.id}\t{safe(task.command)}")


def hint(env, queue: Queue) -> None:
    """One line on stderr when QueueMe stores in this home are not shown."""
    unread = queue.queueme_unread()
    if unread:
        env.err(
            f"qme: {' and '.join(unread)} hold QueueMe 0.0.14 tasks that this store does "
            "not show: 'qme import --from-queueme' copies them in"
        )
