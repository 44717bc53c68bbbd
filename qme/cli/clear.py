"""qme clear: delete a task, an executor's tasks, or all, after confirmation."""

from __future__ import annotations

import sys

from qme.errors import QmeError


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "clear",
        help="delete tasks (asks first)",
        description="Delete one task (ID or unique prefix), every task of an EXECUTOR, or "
        "--all. Asks for confirmation unless --force; 'qme clear --force' with no target "
        "deletes everything.",
    )
    parser.add_argument("target", nargs="?", metavar="ID|EXECUTOR")
    parser.add_argument("--all", action="store_true", help="delete every task")
    parser.add_argument("-f", "--force", action="store_true", help="do not ask")
    return parser


def confirm(question: str) -> bool | None:
    """Ask on the terminal: True for yes, False for no, None with no terminal."""
    try:
        with open("/dev/tty", "r+b", buffering=0) as tty:
            tty.write(f"{question} [y/N] ".encode())
            return tty.readline().strip().lower() in (b"y", b"yes")
    except OSError:
        return None


def run(args) -> int:
    from qme import executors
    from qme.cli import make_queue

    if args.target and args.all:
        raise QmeError("give a target or --all, not both")
    if not args.target and not (args.all or args.force):
        raise QmeError("say what to clear: a task id, an executor name, or --all")
    queue = make_queue(args)
    if args.target is None:
        what, target = "every task", None
    elif args.target in executors.names():
        what, target = f"every {args.target} task", args.target
    else:
        target = queue.resolve(args.target)
        what = f"task {target} ({queue.get(target, streams=False).command})"
    if not args.force:
        answer = confirm(f"Delete {what}?")
        if answer is None:
            raise QmeError("not deleting: no terminal to confirm on (use --force)")
        if not answer:
            print("Nothing deleted.", file=sys.stderr)
            return 1
    count = queue.clear(target)
    print(f"Deleted {count} task{'s' if count != 1 else ''}.", file=sys.stderr)
    return 0
