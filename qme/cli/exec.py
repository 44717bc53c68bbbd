"""qme exec: run an executor's action on a task, or list an executor's actions."""

from __future__ import annotations

import argparse

from qme.cli.env import OK, USAGE
from qme.errors import QmeError

HELP = """\
Run ACTION of a task's executor on TASK (an id or unique prefix, or an executor
name for its last task; the last task when left out), or list an EXECUTOR's
actions. NAME=VALUE words are passed to the action.

  qme exec slurm                  # the slurm executor's actions
  qme exec status                 # the last task's job: state, exit code, node…
  qme exec 5b8a output            # the job's output file
  qme exec slurm follow           # the last Slurm job's output, as it is written
  qme exec 5b8a output index=3    # one element of a job array
  qme exec status --json
  qme exec                        # on a terminal: pick a task, then an action
  qme exec --last                 # on a terminal: pick an action for the last task
"""


class UsageError(QmeError):
    exit_code = USAGE


def add_parser(subparsers, name):
    parser = subparsers.add_parser(
        "exec",
        help="run an executor's action on a task (qme exec EXECUTOR lists them)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="qme exec [--json] [TASK] ACTION [NAME=VALUE …]\n       qme exec EXECUTOR",
    )
    parser.add_argument("words", nargs="*", metavar="WORD", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--last", action="store_true", help="the last task (with no ACTION: pick one)"
    )
    return parser


def run(args) -> int:
    from qme.cli import make_queue
    from qme.cli.render import print_json

    positional = [w for w in args.words if not _is_option(w)]
    options = dict(w.split("=", 1) for w in args.words if _is_option(w))
    queue = make_queue(args)
    known = queue.executor_names()
    env = args.env
    if len(positional) == 1 and not options and positional[0] in known:
        return _list_actions(env, queue, positional[0], args.json)
    from qme.cli.picker import interactive

    if len(positional) not in (1, 2) and (positional or options or not interactive(env)):
        raise UsageError(
            "say which action to run (qme exec [TASK] ACTION [NAME=VALUE …]) or which "
            "executor's actions to list (qme exec EXECUTOR)"
        )
    if positional or options:
        *target, name = positional
        task = _task(queue, target[0] if target else None, known)
    else:  # nothing given, on a terminal: pick
        task, name = _pick(queue, known, queue.get(streams=False) if args.last else None)
    actions = queue.actions(task.executor)
    found = actions.get(name)
    if found is None:
        raise _no_such_action(queue, task, name, actions, known)
    if found.streams and not args.json:
        options["write"] = lambda text: _write(env, text)
    result = queue.run_action(task, name, **options)
    if args.json:
        print_json(env, result)
    elif not found.streams:
        render(env, result)
    return OK


def _is_option(word: str) -> bool:
    key, equals, _ = word.partition("=")
    return bool(equals) and key.isidentifier()


def _task(queue, target: str | None, known: list[str]):
    if target in known:
        last = queue.list(target, limit=1)
        if not last:
            raise QmeError(f"there are no {target} tasks yet")
        return last[0]
    return queue.get(target, streams=False)


def _pick(queue, known: list[str], task=None):
    """(task, action name) chosen in pickers: a task whose executor has actions
    (unless given), searched in the whole history, then one of its executor's actions."""
    from qme.cli.picker import pick_one, pick_task

    if task is None:
        with_actions = [n for n in known if queue.actions(n)]
        if not any(queue.list(n, limit=1) for n in with_actions):
            raise QmeError("no task has actions yet (shell tasks have none)")
        task = pick_task(queue, prompt="Which task?", executors=with_actions)
    actions = queue.actions(task.executor)
    if not actions:
        raise QmeError(f"task {task.short_id} is a {task.executor} task, which has no actions")
    width = max(map(len, actions))
    choices = [(f"{name:<{width}}  {a.description}", name) for name, a in actions.items()]
    from qme.cli.render import safe

    return task, pick_one(choices, f"Which action on {task.short_id} ({safe(task.command)})?")


def _no_such_action(queue, task, name: str, actions: dict, known: list[str]) -> QmeError:
    offered = ", ".join(sorted(actions)) or "none"
    others = [other for other in known if other != task.executor and name in queue.actions(other)]
    hint = f"; for the last {others[0]} task: qme exec {others[0]} {name}" if others else ""
    return QmeError(
        f"task {task.short_id} is a {task.executor} task, whose executor has no action "
        f"'{name}' (its actions: {offered}){hint}"
    )


def _list_actions(env, queue, name: str, as_json: bool) -> int:
    from qme.cli.render import print_json, table

    actions = queue.actions(name)
    described = {k: v.description for k, v in actions.items()}
    if as_json:
        print_json(env, {"executor": name, "actions": described})
    elif actions:
        table(env, ["ACTION", "WHAT IT DOES"], [[k, v] for k, v in described.items()])
    else:
        env.out(f"the {name} executor has no actions")
    return OK


def _write(env, text: str) -> None:
    if env.stdout_isatty:  # a followed job's output: as render() shows text
        from qme.text import printable

        text = printable(text, "\t\n", colors=env.colors)
    env.stdout.write(text)
    env.stdout.flush()


def render(env, result) -> None:
    """An action's result, readably: text as it is, a mapping as 'key: value'
    lines (file contents under '==> name <==' headers), rows as a table."""
    from qme.cli.render import safe, table

    if result is None:
        return
    if isinstance(result, str):
        if env.stdout_isatty:  # a job's output: its colours, and nothing else a terminal obeys
            from qme.text import printable

            result = printable(result, "\t\n", colors=env.colors)
        env.stdout.write(result if result.endswith("\n") or not result else result + "\n")
    elif (
        isinstance(result, dict)
        and result
        and all(isinstance(v, str) and "\n" in v or v is None for v in result.values())
    ):
        for key, text in result.items():
            env.out(f"==> {safe(str(key))} <==")
            render(env, text if text is not None else "(not written yet)")
    elif isinstance(result, dict):
        scalars = {k: v for k, v in result.items() if not isinstance(v, (list, dict))}
        width = max((len(str(k)) for k in scalars), default=0)
        for key, value in scalars.items():
            shown = "" if value is None else safe(str(value))
            env.out(f"{safe(str(key)) + ':':<{width + 1}} {shown}")
        for key, value in result.items():
            if isinstance(value, (list, dict)):
                env.out(f"{safe(str(key))}:")
                render(env, value)
    elif isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        headers = list(dict.fromkeys(k for row in result for k in row))
        rows = [[str(row.get(h, "")) for h in headers] for row in result]
        table(env, [h.upper() for h in headers], rows)
    elif isinstance(result, list):
        for item in result:
            env.out(safe(str(item)))
    else:
        env.out(safe(str(result)))
