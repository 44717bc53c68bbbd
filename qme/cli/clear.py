"""qme clear: delete a task, an executor's tasks, or all, after confirmation."""

from __future__ import annotations

from qme.cli.env import ERROR, OK
from qme.errors import QmeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.task import Task

SHOWN_IDS = 5  # a confirmation names at most this many tasks


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "clear",
        help="delete tasks (asks first)",
        description="Delete one task (ID or unique prefix), every task of an EXECUTOR, "
        "the --last task, or --all. Without any of these, on a terminal, pick the tasks "
        "from the recent ones. Asks for confirmation unless --force; 'qme clear --force' "
        "with no target deletes everything (as in QueueMe).",
    )
    parser.add_argument("target", nargs="?", metavar="ID|EXECUTOR")
    parser.add_argument("--last", action="store_true", help="delete the last task")
    parser.add_argument("--all", action="store_true", help="delete every task")
    parser.add_argument("-f", "--force", action="store_true", help="do not ask")
    parser.add_argument("--json", action="store_true", help='print {"deleted": N} on stdout')
    return parser


def confirm(question: str) -> bool | None:
    """Ask on the terminal: True for yes, False for no, None with no terminal."""
    try:
        with open("/dev/tty", "r+b", buffering=0) as tty:
            tty.write(f"{question} [y/N] ".encode())
            return tty.readline().strip().lower() in (b"y", b"yes")
    except OSError:
        return None


def agreed(args, question: str, doing: str, done: str) -> bool:
    """Whether to go on: --force, or a yes on the terminal (a no says 'Nothing
    {done}.'); with no terminal to ask on, a one-line error."""
    if args.force:
        return True
    answer = confirm(question)
    if answer is None:
        raise QmeError(f"not {doing}: no terminal to confirm on (use --force)")
    if not answer:
        args.env.err(f"Nothing {done}.")
    return answer


def describe(tasks: list[Task]) -> str:
    from qme.cli.render import safe

    if len(tasks) == 1:
        return f"task {tasks[0].id} ({safe(tasks[0].command)})"
    ids = ", ".join(task.short_id for task in tasks[:SHOWN_IDS])
    return f"{len(tasks)} tasks ({ids}{', …' if len(tasks) > SHOWN_IDS else ''})"


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.picker import interactive

    given = [bool(args.target), args.last, args.all]
    if sum(given) > 1:
        raise QmeError("give one of a target, --last or --all")
    picking = not any(given) and not args.force and interactive(args.env)
    if not (any(given) or args.force or picking):
        raise QmeError("say what to clear: a task id, an executor name, --last or --all")
    queue = make_queue(args)
    if picking:
        from qme.cli.picker import pick_task

        tasks = pick_task(queue, multiple=True, prompt="Delete which tasks?")
        what, targets = describe(tasks), [task.id for task in tasks]
    elif args.last:
        task = queue.get(streams=False)
        what, targets = describe([task]), [task.id]
    elif args.target is None:
        what, targets = "every task", [None]
    elif args.target in queue.executor_names():
        what, targets = f"every {args.target} task", [args.target]
    else:
        task = queue.get(queue.resolve(args.target), streams=False)
        what, targets = describe([task]), [task.id]
    if not agreed(args, f"Delete {what}?", "deleting", "deleted"):
        return ERROR
    count = sum(queue.clear(target) for target in targets)
    if args.json:
        from qme.cli.render import print_json

        print_json(args.env, {"deleted": count})
    else:
        args.env.err(f"Deleted {count} task{'s' if count != 1 else ''}.")
    return OK
