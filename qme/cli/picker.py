"""Interactive pickers: choose one task, several tasks, or any one value on the terminal.

Tasks are chosen in the full-screen search over the whole history (qme/cli/finder.py);
other values (an executor's action) in a questionary list. Commands that need a task
and were given none open a picker when stdin and stdout are terminals (see
`interactive`); otherwise they act on the last task, as QueueMe did. questionary and
prompt_toolkit are imported only when a picker is shown, so `qme run` and every
non-interactive use stay free of them.

Leaving a picker (Ctrl-C or Escape) raises `Cancelled`, a KeyboardInterrupt: the CLI exits
with status 130 and nothing has changed.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TypeVar

    from qme.api import Queue
    from qme.cli.env import Environment
    from qme.task import Task

    T = TypeVar("T")

# How long a lone Escape waits to be sure it does not start a key's sequence (an arrow
# key is ESC [ A): prompt_toolkit waits 0.5 s, which makes Escape feel sluggish; 0.1 s
# is Vim's ttimeoutlen in defaults.vim.
ESCAPE_DELAY = 0.1
ONE_HELP = "(↑/↓ to move, type to filter, Enter to choose, Esc to cancel)"


class Cancelled(KeyboardInterrupt):
    """The user left a picker (Ctrl-C or Escape) without choosing: like Ctrl-C
    anywhere else, the CLI exits with 130."""


def interactive(env: Environment) -> bool:
    """Whether a picker can be shown: stdin and stdout are both terminals."""
    return env.stdin_isatty and env.stdout_isatty


def pick_one(choices: Sequence[tuple[str, T]], prompt: str) -> T:
    """The value of one of (title, value) choices; the first is preselected, and
    typing filters the titles (case-insensitive substring)."""
    import questionary

    question = questionary.select(
        prompt,
        [questionary.Choice(title, value=i) for i, (title, _) in enumerate(choices)],
        use_search_filter=True,
        use_jk_keys=False,  # j and k are letters to filter by
        instruction=ONE_HELP,
    )
    _refuse_enter_without_match(question)
    return choices[_ask(question)][1]


def pick_task(
    queue: Queue,
    *,
    multiple: bool = False,
    prompt: str | None = None,
    executors: list[str] | None = None,
) -> Task | list[Task]:
    """One of the queue's tasks, or with multiple=True a list of them (marked with
    Tab), chosen in the full-screen search over the whole history (qme/cli/finder.py:
    newest first, the newest preselected; typing searches every task). Raises
    Cancelled when the user leaves it."""
    from qme.cli.finder import Finder
    from qme.errors import QmeError

    if not queue.list(limit=1):
        raise QmeError("there are no tasks yet")
    title = prompt or ("Which tasks?" if multiple else "Which task?")
    chosen = Finder(queue, title=title, multiple=multiple, executors=executors).run()
    if chosen is None:
        raise Cancelled
    return chosen


def given_or_picked(queue: Queue, args, prompt: str) -> str | None:
    """args.id; or, when none is given on a terminal and not --last, the id of a
    task picked from the whole history (None means the last task)."""
    if args.id is None and not args.last and interactive(args.env):
        return pick_task(queue, prompt=prompt).id
    return args.id


def _ask(question) -> Any:
    """Run a questionary question; Ctrl-C or Escape raise Cancelled."""
    application = question.application
    application.ttimeoutlen = ESCAPE_DELAY

    @application.key_bindings.add("escape", eager=True)  # questionary binds only Ctrl-C
    def _cancel(event):
        event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    try:
        return question.unsafe_ask()
    except KeyboardInterrupt:
        raise Cancelled from None


def _refuse_enter_without_match(question) -> None:
    """With a filter that matches nothing, questionary shows (and Enter picks) the
    unfiltered list: a typo would choose the newest task. Enter then does nothing."""
    from questionary.prompts.common import InquirerControl

    control = next(
        c for c in question.application.layout.find_all_controls() if isinstance(c, InquirerControl)
    )
    bindings = question.application.key_bindings

    @bindings.add("enter", eager=True, filter=_no_match(control))
    def _ignore(event):
        pass


def _no_match(control):
    from prompt_toolkit.filters import Condition

    @Condition
    def no_match() -> bool:
        needle = (control.search_filter or "").lower()
        return bool(needle) and not any(needle in c.title.lower() for c in control.choices)

    return no_match
