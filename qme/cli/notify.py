"""qme notify: test the notification channels; see what the watcher follows."""

from __future__ import annotations

from qme.cli.env import ERROR, OK

HELP = """\
A task that ran longer than notify_after seconds (default 10) notifies when it
ends: in the terminal it ran in, at the apprise URLs of notify_urls, and in an
open dashboard. 'qme notify test' sends a test message through the terminal and
every URL, and says what each did. 'qme notify status' says whether the watcher
(which follows Slurm jobs and detached containers to their end) runs, and what it
follows. See docs/notifications.md.
"""


def add_parser(subparsers, name):
    import argparse

    parser = subparsers.add_parser(
        "notify",
        help="test notifications; the watcher's state",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "what", choices=["test", "status"], help="test: send a test message; status: the watcher"
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    queue = make_queue(args)
    if args.what == "status":
        state = queue.watching()
        running = f"running (pid {state['pid']})" if state["pid"] else "not running"
        args.env.out(f"watcher: {running}")
        for task_id in state["tasks"]:
            args.env.out(f"  follows {task_id}")
        return OK
    done = queue.notify_test()
    for channel, said in done.items():
        args.env.out(f"{channel}: {said}")
    return ERROR if any(said.startswith("not sent") for said in done.values()) else OK
