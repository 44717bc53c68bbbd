"""The full-screen search over the whole history: Ctrl-R at the prompt (`qme history`,
bound by `qme init SHELL --ctrl-r`) and the pickers of rerun, get, clear and exec.

Typing searches every task of the store through its full-text index (commands,
notes and tags, output and error), newest first; the word being typed counts as
the start of a word. The selected task's output shows beside the list. Filters
(this directory, this session, this host, failed only) are toggled with Alt and
a letter, or cycled with Ctrl-R. `find()` is the one code path from a query to
its results: the screen and bench/picker.py both call it.

prompt_toolkit (a dependency of questionary) is imported only when the search is
shown; the terminal is /dev/tty, so that stdout stays free for the answer
(`qme history` prints the chosen command there, for the shell to put on its line).
"""

from __future__ import annotations

import os
import re
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from qme.api import Queue
    from qme.task import Task

LIMIT = 100  # results asked of the store at once
PREVIEW_BYTES = 32 << 10  # of the selected task's output, read for the preview
PREVIEW_LINES = 300
# The word being typed is searched as a word's start from its third character (a
# shorter start would make the index merge thousands of words); before that it is
# left out, until a space ends it.
PREFIX_MIN = 3
MORE = "\n\x1b[2m… (qme out shows it all)\x1b[0m"
NARROW = 80  # columns below which the preview is left out
ESCAPE_DELAY = 0.1  # as the pickers (qme/cli/picker.py)
# name, Alt key, what the status line says
FILTERS = [
    ("directory", "d", "this directory"),
    ("session", "s", "this session"),
    ("host", "h", "this host"),
    ("failed", "f", "failed only"),
]
# What Ctrl-R steps through, as atuin's does: everywhere, then ever closer.
CYCLE = [set(), {"host"}, {"session"}, {"directory"}]
GLYPHS = {
    "complete": ("class:ok", "✓"),
    "failed": ("class:failed", "✗"),
    "running": ("class:running", "●"),
    "pending": ("class:running", "…"),
    "cancelled": ("class:cancelled", "⊘"),
}
# Colours (SGR) are kept for the preview; every other escape sequence is dropped.
_ESCAPE = re.compile(
    r"(\x1b\[[0-9;:]*m)"
    r"|\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[ -/]*[0-~]?"
)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f]")


class Scope:
    """What 'this' means for the filters: the directory, shell session and host the
    search was started from."""

    def __init__(self, cwd: str | None = None, session: str | None = None, host: str | None = None):
        self.cwd = cwd or _current_directory()
        self.session = session if session is not None else os.environ.get("QME_SESSION")
        self.host = host or os.uname().nodename

    def where(self, active: set[str]) -> dict:
        """The search's filters for the active ones."""
        where = {}
        if "directory" in active:
            where["cwd"] = self.cwd
        if "session" in active and self.session:
            where["session"] = self.session
        if "host" in active:
            where["host"] = self.host
        if "failed" in active:
            where["status"] = "failed"
        return where


def _current_directory() -> str:
    """As a task records its directory (qme.origin.current_directory)."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        return os.environ.get("PWD") or "."


class Found:
    """One result: a task, and where the query matched it (field, marked line)."""

    __slots__ = ("task", "field", "line")

    def __init__(self, task: Task, field: str | None = None, line: str | None = None):
        self.task, self.field, self.line = task, field, line


def terms(query: str) -> list[str]:
    """The query's words for the full-text index; the word still being typed (no
    space after it) as a word's start once it has PREFIX_MIN characters, left out
    before."""
    from qme.text import words

    found = words(query)
    if found and not query[-1:].isspace() and not found[-1].endswith("*"):
        typing = found.pop()
        if len(typing) >= PREFIX_MIN:
            found.append(typing + "*")
    return found


def find(
    queue: Queue,
    query: str,
    active: set[str],
    scope: Scope,
    limit: int = LIMIT,
    executors: list[str] | None = None,
) -> list:
    """The tasks a query finds (every task when it has no word), newest first, with
    the active filters (and of these executors only): what the screen shows."""
    where = scope.where(active)
    if executors and len(executors) == 1:
        where["executor"] = executors[0]
    wanted = terms(query)
    if wanted:
        hits = queue.search(*wanted, limit=limit, **where)
        found = [Found(hit.task, hit.field, hit.line) for hit in hits]
    else:
        found = [Found(task) for task in queue.list(limit=limit, **where)]
    return [f for f in found if not executors or f.task.executor in executors]


def preview_text(data: bytes) -> str:
    """Recorded output as the preview shows it: colours kept, other escapes and
    control characters dropped, carriage returns as line breaks."""
    from qme.text import shown

    text = shown(data.decode("utf-8", "surrogateescape"))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ESCAPE.sub(lambda m: m.group(1) or "", text)
    return _CONTROLS.sub("", text)


def ago(started: float, now: float) -> str:
    seconds = max(0, now - started)
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


class Finder:
    """The screen: a query line, the results beside the selected one's output, the
    filters. run() returns the chosen task (a list of them with multiple), or None
    when the user leaves (Escape, Ctrl-C)."""

    def __init__(
        self,
        queue: Queue,
        *,
        query: str = "",
        title: str = "Search the history",
        multiple: bool = False,
        scope: Scope | None = None,
        active: set[str] | None = None,
        executors: list[str] | None = None,
    ):
        self.queue = queue
        self.executors = executors
        self.title = title
        self.multiple = multiple
        self.scope = scope or Scope()
        self.active = set(active or ())
        self.query = query
        self.results: list[Found] = []
        self.index = 0
        self.marked: dict[str, Task] = {}
        self.problem = ""
        self.elapsed = 0.0
        self._previews: dict[str, str] = {}
        self._searched = None  # (query, filters) of the results shown
        self._busy = False

    # -- what is shown ------------------------------------------------------------------

    def search(self) -> None:
        from qme.errors import QmeError

        wanted = (self.query, frozenset(self.active))
        if wanted == self._searched:
            return
        started = time.perf_counter()
        try:
            self.results = find(
                self.queue, self.query, self.active, self.scope, executors=self.executors
            )
            self.problem = ""
        except QmeError as error:
            self.results, self.problem = [], str(error)
        self.elapsed = time.perf_counter() - started
        self._searched = wanted
        self.index = 0

    @property
    def selected(self) -> Task | None:
        return self.results[self.index].task if self.results else None

    def list_fragments(self):
        now = time.time()
        lines = []
        for i, found in enumerate(self.results):
            task = found.task
            style, glyph = GLYPHS.get(task.status, ("class:other", "?"))
            row = "class:selected" if i == self.index else ""
            mark = "+" if task.id in self.marked else " "
            command = " ".join(task.command.split())
            lines += [
                (f"{row} class:mark", mark),
                (f"{row} {style}", glyph),
                (f"{row} class:age", f" {ago(task.started, now):>4} "),
                (row, command),
                ("", "\n"),
            ]
        if not self.results:
            lines.append(("class:empty", self.problem or "  no task matches"))
        return lines

    def preview_fragments(self):
        from prompt_toolkit.formatted_text import ANSI, to_formatted_text

        found = self.results[self.index] if self.results else None
        if found is None:
            return []
        task = found.task
        where = [
            task.cwd,
            task.host,
            f"exit {task.returncode}" if task.returncode is not None else task.status,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(task.started)),
        ]
        if task.duration is not None:
            where.append(f"{task.duration:.1f}s")
        head = [("class:command", f"$ {task.command}\n"), ("class:meta", " · ".join(where) + "\n")]
        if task.session:
            head.append(("class:meta", f"session {task.session[:8]}  "))
        head.append(("class:meta", f"task {task.short_id}\n"))
        if task.message:
            head.append(("class:note", f"note: {task.message}\n"))
        if getattr(task, "tags", None):
            head.append(("class:note", "tags: " + " ".join(task.tags) + "\n"))
        if found.line and found.field not in (None, "command"):
            head += self._match_fragments(found)
        head.append(("class:line", "─" * 40 + "\n"))
        return head + to_formatted_text(ANSI(self._preview(task)))

    def _match_fragments(self, found: Found):
        from qme.text import marked_spans

        plain, spans = marked_spans(" ".join(found.line.split()))
        pieces, at = [("class:meta", f"{found.field}: ")], 0
        for start, end in spans:
            pieces += [("class:meta", plain[at:start]), ("class:hit", plain[start:end])]
            at = end
        return pieces + [("class:meta", plain[at:] + "\n")]

    def _preview(self, task: Task) -> str:
        if task.id not in self._previews:
            from qme.errors import QmeError

            try:
                data = self.queue.read(task.id, "output", 0, PREVIEW_BYTES)
            except QmeError as error:
                data = f"({error})".encode()
            text = preview_text(data)
            lines = text.split("\n")
            if len(lines) > PREVIEW_LINES or len(data) >= PREVIEW_BYTES:
                text = "\n".join(lines[:PREVIEW_LINES]) + MORE
            self._previews[task.id] = text or "\x1b[2m(no output)\x1b[0m"
        return self._previews[task.id]

    def status_fragments(self):
        pieces = []
        for name, key, label in FILTERS:
            on = name in self.active
            if name == "session" and on and not self.scope.session:
                label = "this session (none: not in qme on)"
            pieces += [("class:key", f" M-{key} "), ("class:on" if on else "class:off", label)]
        count = len(self.results)
        shown = f"{count}+" if count >= LIMIT else str(count)
        pieces.append(("class:meta", f"   {shown} found in {self.elapsed * 1000:.0f} ms"))
        return pieces

    def help_fragments(self):
        keys = "Enter: choose" if not self.multiple else "Tab: mark  Enter: choose"
        return [("class:meta", f" ↑/↓ move  {keys}  Ctrl-R: cycle filters  Esc: leave")]

    # -- the application ----------------------------------------------------------------

    def run(self):
        from prompt_toolkit import Application
        from prompt_toolkit.buffer import Buffer
        from prompt_toolkit.data_structures import Point
        from prompt_toolkit.filters import Condition
        from prompt_toolkit.layout import (
            ConditionalContainer,
            Dimension,
            HSplit,
            Layout,
            VSplit,
            Window,
        )
        from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
        from prompt_toolkit.layout.processors import BeforeInput
        from prompt_toolkit.styles import Style

        self.search()
        buffer = Buffer(multiline=False, document=None)
        buffer.text = self.query
        buffer.cursor_position = len(self.query)
        buffer.on_text_changed += lambda _: self._changed(buffer.text)

        wide = Condition(lambda: self._app.output.get_size().columns >= NARROW)
        results = Window(
            FormattedTextControl(
                self.list_fragments, get_cursor_position=lambda: Point(0, self.index)
            ),
            width=Dimension(weight=3),
            wrap_lines=False,
            always_hide_cursor=True,
        )
        preview = Window(
            FormattedTextControl(self.preview_fragments),
            width=Dimension(weight=2),
            wrap_lines=True,
        )
        body = VSplit(
            [
                results,
                ConditionalContainer(
                    VSplit([Window(width=1, char="│", style="class:line"), preview]), wide
                ),
            ]
        )
        title = Window(FormattedTextControl(lambda: [("class:title", self.title)]), height=1)
        query = Window(
            BufferControl(buffer, input_processors=[BeforeInput("> ", style="class:prompt")]),
            height=1,
        )
        layout = Layout(
            HSplit(
                [
                    title,
                    query,
                    body,
                    Window(FormattedTextControl(self.status_fragments), height=1),
                    Window(FormattedTextControl(self.help_fragments), height=1),
                ]
            ),
            focused_element=query,
        )
        self._app = Application(
            layout=layout,
            key_bindings=self._bindings(),
            style=Style.from_dict(STYLE),
            full_screen=True,
            mouse_support=False,
            **_terminal(),
        )
        self._app.ttimeoutlen = ESCAPE_DELAY
        self._app.timeoutlen = ESCAPE_DELAY
        return self._app.run()

    def _changed(self, text: str) -> None:
        self.query = text
        if not self._busy:  # keys typed meanwhile are read before the search runs
            self._busy = True
            self._app.create_background_task(self._refresh())

    async def _refresh(self) -> None:
        import asyncio

        await asyncio.sleep(0)
        self._busy = False
        self.search()
        self._app.invalidate()

    def _move(self, by: int) -> None:
        if self.results:
            self.index = max(0, min(len(self.results) - 1, self.index + by))

    def _bindings(self):
        from prompt_toolkit.key_binding import KeyBindings

        keys = KeyBindings()

        @keys.add("up")
        @keys.add("c-p")
        def _up(event):
            self._move(-1)

        @keys.add("down")
        @keys.add("c-n")
        def _down(event):
            self._move(1)

        @keys.add("pageup")
        def _page_up(event):
            self._move(-10)

        @keys.add("pagedown")
        def _page_down(event):
            self._move(10)

        @keys.add("c-r")
        def _cycle(event):
            place = self.active - {"failed"}
            at = next((i for i, s in enumerate(CYCLE) if s == place), -1)
            self.active = CYCLE[(at + 1) % len(CYCLE)] | (self.active & {"failed"})
            self.search()

        for name, key, _ in FILTERS:

            @keys.add("escape", key)
            def _toggle(event, name=name):
                self.active ^= {name}
                self.search()

        if self.multiple:

            @keys.add("tab")
            def _mark(event):
                task = self.selected
                if task is not None:
                    if self.marked.pop(task.id, None) is None:
                        self.marked[task.id] = task
                    self._move(1)

        @keys.add("enter")
        def _choose(event):
            self.search()  # what the query finds, though typed a moment ago
            if self.multiple and self.marked:
                event.app.exit(result=list(self.marked.values()))
            elif self.selected is not None:
                task = self.selected
                event.app.exit(result=[task] if self.multiple else task)

        @keys.add("escape")
        @keys.add("c-c")
        @keys.add("c-g")
        def _leave(event):
            event.app.exit(result=None)

        return keys


def _terminal() -> dict:
    """The Application's input and output on the controlling terminal (/dev/tty), so
    that stdout may be a pipe ($(qme history) in the shell's binding); else stdin
    and stdout, when they are a terminal."""
    from prompt_toolkit.input import create_input
    from prompt_toolkit.output import create_output

    try:
        tty_in = open("/dev/tty")  # noqa: SIM115 (open while the app runs; closed by exit)
        tty_out = open("/dev/tty", "w")  # noqa: SIM115
    except OSError as exc:
        if os.isatty(0) and os.isatty(1):
            return {}
        from qme.errors import QmeError

        raise QmeError(f"the search screen needs a terminal, and there is none ({exc})") from None
    return {"input": create_input(tty_in), "output": create_output(tty_out)}


STYLE = {
    "title": "bold",
    "prompt": "ansicyan bold",
    "selected": "reverse",
    "mark": "ansiyellow bold",
    "ok": "ansigreen",
    "failed": "ansired bold",
    "running": "ansiblue",
    "cancelled": "ansiyellow",
    "age": "ansibrightblack",
    "command": "bold",
    "meta": "ansibrightblack",
    "note": "italic",
    "hit": "reverse ansiyellow",
    "line": "ansibrightblack",
    "key": "reverse",
    "on": "ansigreen bold",
    "off": "",
    "empty": "ansibrightblack",
}
