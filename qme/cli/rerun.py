"""qme rerun: run a task's command again as a new, linked task."""

from __future__ import annotations


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "rerun",
        help="run a task's command again (picked on a terminal, else the last task)",
        description="Run a task's command again in its original directory. The new task "
        "is linked to the old one (rerun_of); nothing is overwritten. Exits with the "
        "command's exit code. Without ID, on a terminal, pick the task from the recent "
        "ones; with --last, or when stdin or stdout is not a terminal, the last task.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("id", nargs="?", metavar="ID")
    which.add_argument("--last", action="store_true", help="the last task, without asking")
    parser.add_argument("-m", "--message", dest="run_message", help="annotate the new task")
    parser.add_argument("--here", action="store_true", help="run in the current directory instead")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the new task as one line of JSON on stdout, after the command's output",
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.picker import given_or_picked

    queue = make_queue(args)
    task_id = given_or_picked(queue, args, "Rerun which task?")
    task = queue.rerun(
        task_id, message=args.run_message or args.message, here=args.here, writer_process=True
    )
    if args.json:
        from qme.cli.run import print_record

        print_record(args.env, task)
    return task.returncode
