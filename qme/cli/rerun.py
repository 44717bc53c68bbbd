"""qme rerun: run a task's command again as a new, linked task."""

from __future__ import annotations


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "rerun",
        help="run a task's command again (the last task by default)",
        description="Run a task's command again in its original directory. The new task "
        "is linked to the old one (rerun_of); nothing is overwritten. Exits with the "
        "command's exit code.",
    )
    parser.add_argument("id", nargs="?", metavar="ID")
    parser.add_argument("-m", "--message", dest="run_message", help="annotate the new task")
    parser.add_argument("--here", action="store_true", help="run in the current directory instead")
    return parser


def run(args) -> int:
    from qme.cli import make_queue

    task = make_queue(args).rerun(args.id, message=args.run_message or args.message, here=args.here)
    return task.returncode
