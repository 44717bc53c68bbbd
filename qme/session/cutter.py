"""Cutting a shell session's output into one task per command.

Fed everything the shell prints, it returns what the terminal should show (the
same bytes without the marks) and keeps the store up to date through a
StoreWriter. If the store fails, the writer spools what it would not take (see
qme/store/spool.py) and recording goes on; the user is told once, before the next
prompt. Whatever else goes wrong, it stops recording, says so once, and keeps
passing bytes through.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

from qme import liveness
from qme.recorder.capture import StreamCapture
from qme.session.filters import CommandFilter
from qme.session.marks import Begin, Loaded, MarkParser, Start, Uses
from qme.session.rerun import KEY, definitions
from qme.task import RUNNING, STOPPED, Task, signal_in_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.recorder.recording import Writer

# zsh's PROMPT_SP (a highlighted % or #, spaces to the edge, "\r \r") is printed
# after a command's output but before its precmd hooks: it is not output. It may
# arrive in one read and the end mark in the next, so it is held back until then.
_ZSH_PROMPT_SP = re.compile(rb"(?:\x1b\[[0-9;]*m)*[^\s\x1b]?(?:\x1b\[[0-9;]*m)* +\r \r\Z")
_PROMPT_SP_WINDOW = 4096  # longer than any PROMPT_SP; bounds the search
# fish fires fish_preexec before it switches terminal modes off (bracketed paste,
# focus reporting), sets the terminal's title and resets colours (then a \r): not
# the command's output either.
_FISH_PREAMBLE = re.compile(
    rb"(?:\x1b\[\?[0-9;]*[hl])*"  # modes
    rb"(?:\x1b\][012];[^\x07\x1b]*(?:\x07|\x1b\\)"  # the title
    rb"(?:\x1b\[[0-9;]*m|\x1b\(B|\x0f)*\r?)?"  # colours reset, back to column 0
)
_PARTIAL_ESCAPE = re.compile(rb"\x1b(?:\[[0-9;?]*|\][^\x07\x1b]*\x1b?|\()?")
_PREAMBLE_MAX = 4096
# The marks terminals read for their own shell integration (prompt and command
# marks, the cwd): passed on to the terminal, never stored as output.
_INTEGRATION = re.compile(
    rb"\x1b\](?:133|633|7|1337;(?:CurrentDir|SetMark|RemoteHost|ShellIntegration"
    rb"|SetUserVar))[;=]?[^\x07\x1b]*(?:\x07|\x1b\\)"
)
_OPEN_OSC = re.compile(rb"\x1b(?:\][^\x07\x1b]*\x1b?)?\Z")
# `fg`, `bg` and `%N` go on with a stopped job: its task, not one of their own.
_RESUME = re.compile(r"\s*(?:(fg|bg)(?:\s+(%\S*))?|(%\S*)(?:\s+&)?)\s*\Z")


class CommandCutter:
    def __init__(
        self,
        writer: Writer,
        *,
        shell: str,
        shell_pid: int,
        session: str,
        command_filter: CommandFilter,
        max_output: int,
        check_store: Callable[[], None] | None = None,
        loaded: Callable[[], None] | None = None,
    ):
        """check_store() raises if the store can no longer be written (it is called
        as each recorded command starts); loaded() is called when the shell has
        loaded the state `qme on` carried over."""
        self.writer = writer
        self.shell, self.shell_pid, self.session = shell, shell_pid, session
        self.filter = command_filter
        self.max_output = max_output
        self.check_store = check_store
        self.loaded = loaded
        self.fish = os.path.basename(shell).lstrip("-") == "fish"
        self.parser = MarkParser()
        self.recorder = liveness.token()
        self.task: Task | None = None
        self.capture: StreamCapture | None = None
        self.held = b""  # output of the running task not recorded yet (see _output)
        # bash tells a command's line after it has begun (see marks.py): from its
        # Begin to its Start, when it began and what it printed meanwhile.
        self.begun: float | None = None
        self.early: list[bytes] = []
        self.in_preamble = False
        # Jobs stopped by Ctrl-Z (their task and capture), the last stopped last;
        # and those `bg` sent on, whose end the shell does not tell.
        self.suspended: list[tuple[Task, StreamCapture]] = []
        self.background: list[tuple[Task, StreamCapture]] = []
        self.uses: dict[str, dict[str, str]] = {"a": {}, "f": {}}  # the running command's
        self.recorded = 0
        self.stopped: str | None = None  # why recording stopped, once it has
        self.spooling: str | None = None  # why records go to the spool, once they do
        self.closed: str | None = None  # what the writer said as the session ended
        self.hook_lost: str | None = None  # the end mark stopped coming, once it has
        self.told: set[str] = set()  # the notices shown

    def feed(self, data: bytes) -> bytes:
        shown = []
        items = self.parser.feed(data)
        for item in items:
            if isinstance(item, bytes):
                shown.append(item)
                self._guard(self._output, item)
            elif item.pid != self.shell_pid:
                continue  # a shell started inside this one: part of its command's output
            elif isinstance(item, Uses):
                self.uses[item.kind][item.name] = item.text
            elif isinstance(item, (Begin, Start)):
                lost_end = self.task is not None
                if isinstance(item, Begin):
                    self._guard(self._begin, item)
                else:
                    self._guard(self._start, item)
                if lost_end:  # no end mark: no prompt to say it before either
                    shown.append(self._notice())
            elif isinstance(item, Loaded):
                if self.loaded is not None:
                    self._guard(lambda _: self.loaded(), None)
            else:
                self._guard(self._end, item.status)
                shown.append(self._notice())
        return b"".join(shown)

    def close(self, shell_status: int) -> str | None:
        """The shell has exited: finish a command cut short, flush, return any error.
        Jobs still stopped or sent to the background end with it, status unknown."""
        self._guard(self._end, shell_status)
        for task, capture in self.suspended + self.background:
            self.task, self.capture = task, capture
            self._guard(self._end, None)
        self.suspended = self.background = []
        error = self.writer.close()
        self._check_writer()
        if error and not self.stopped and error != self.spooling:
            self.closed = error  # e.g. a writer process that died and was replaced
        return self.stopped or error

    def untold(self) -> list[str]:
        """The notices not shown yet (after close(): the user sees no more prompts)."""
        return [notice for notice in self._notices() if notice not in self.told]

    # -- recording --------------------------------------------------------------------

    def _guard(self, step, arg) -> None:
        if self.stopped:
            return
        try:
            step(arg)
        except Exception as exc:  # noqa: BLE001 - never let recording break the shell
            self.stopped = f"{type(exc).__name__}: {exc}"

    def _check_writer(self) -> None:
        error = self.writer.error
        if error and not self.stopped:
            if self.writer.spooling:
                self.spooling = error
            else:
                self.stopped = error

    def _begin(self, mark: Begin) -> None:
        self._end_unended()
        self.uses = {"a": {}, "f": {}}
        self.begun, self.early = time.time(), []
        self.capture = StreamCapture(self.max_output)
        self.held = b""

    def _start(self, mark: Start) -> None:
        begun, early = self.begun, b"".join(self.early)
        self.begun, self.early = None, []
        if begun is None:
            self._end_unended()
            self.uses = {"a": {}, "f": {}}
            self.capture = StreamCapture(self.max_output)
        if self.suspended and self._resume(mark.command):
            if early and self.task is not None:  # (a job `bg` sent on has no output here)
                self.writer.append(self.task.id, "output", self.capture.feed(early))
            return
        if self.filter.reason_to_skip(mark.command):
            return
        if self.check_store is not None:
            self.check_store()
        # No executor: the writer child picks it by the same rules as for `qme run`
        # (`sbatch job.sh` typed here is a Slurm task).
        self.task = Task.begin(
            mark.command,
            [self.shell, "-c", mark.command],
            cwd=mark.cwd,
            started=begun,
            session=self.session,
            recorder=self.recorder,
        )
        if begun is None:
            self.held, self.in_preamble = b"", self.fish
        self.writer.add(self.task)
        if early:  # already through the capture: its head, as _output keeps it
            self.writer.append(self.task.id, "output", early)

    def _end_unended(self) -> None:
        """A command begins while another has not ended: the prompt hook no longer runs."""
        if self.task is not None:
            self.hook_lost = (
                "the shell's prompt hook did not run (PROMPT_COMMAND or precmd_functions "
                "replaced?), so exit statuses are unknown; 'qme on' puts qme's hooks back"
            )
            self._end(None)

    def _resume(self, command: str) -> bool:
        """`fg`/`bg`/`%N` typed with jobs stopped: the job's task goes on (the last
        one stopped, or the one whose command a %name or %?text names; bash's and
        zsh's job numbers are not known here, so %N takes the last one)."""
        match = _RESUME.match(command)
        if not match:
            return False
        verb, spec = match.group(1) or "fg", (match.group(2) or match.group(3) or "%+")
        if (match.group(3) or "").endswith("&"):
            verb = "bg"
        found = _job(self.suspended, spec)
        self.suspended.remove(found)
        task, capture = found
        task.status = RUNNING
        self.writer.update(task)
        if verb == "bg":
            self.background.append(found)
        else:
            self.task, self.capture, self.held, self.in_preamble = task, capture, b"", self.fish
        return True

    def _output(self, data: bytes) -> None:
        if self.task is None and self.begun is None:
            return
        data, self.held = self.held + data, b""
        if self.in_preamble:
            rest = data[_FISH_PREAMBLE.match(data).end() :]
            if (not rest or _PARTIAL_ESCAPE.fullmatch(rest)) and len(data) < _PREAMBLE_MAX:
                self.held = data  # the preamble may go on in the next read
                return
            self.in_preamble, data = False, rest
        if b"\x1b" in data:
            data = _INTEGRATION.sub(b"", data)
            cut = _OPEN_OSC.search(data, max(0, len(data) - _PREAMBLE_MAX))
            if cut:  # a mark the next read completes
                data, self.held = data[: cut.start()], data[cut.start() :]
        if data.endswith(b" \r \r"):
            window = max(0, len(data) - _PROMPT_SP_WINDOW)
            prompt_sp = _ZSH_PROMPT_SP.search(data, window)
            if prompt_sp:  # recorded only if more output follows
                data, self.held = data[: prompt_sp.start()], data[prompt_sp.start() :] + self.held
        if self.task is None:  # begun, its line not told yet (see _start)
            self.early.append(self.capture.feed(data))
        else:
            self.writer.append(self.task.id, "output", self.capture.feed(data))

    def _end(self, status: int | None) -> None:
        task, self.task = self.task, None
        self.held = b""  # a PROMPT_SP, or a preamble with no output after it
        self.begun, self.early = None, []  # a line never told (the history is off)
        if task is None:
            return
        task.end(status, signal_in_status(status))
        # The aliases and functions it used (the hooks tell them just before its end)
        # go with it, so that a rerun has them.
        if self.uses["a"] or self.uses["f"]:
            kind = os.path.basename(self.shell).lstrip("-")
            task.data[KEY] = definitions(kind, self.uses["a"], self.uses["f"])
        if task.status == STOPPED:  # Ctrl-Z: it goes on when `fg` resumes it
            self.suspended.append((task, self.capture))
        else:
            self.writer.append(task.id, "output", self.capture.finish())
            self.recorded += 1
        task.output_size = self.capture.total
        if self.capture.total:
            task.timing = {"output": self.capture.timing()}
        self.writer.update(task)

    def _notice(self) -> bytes:
        """Say once each, just before a prompt, that records go to the spool and
        that recording stopped. (The writer's reports are read here, not at each
        chunk of output: a read of their pipe is a system call.)"""
        self._check_writer()
        shown = []
        for notice in self.untold():
            self.told.add(notice)
            shown.append(f"\r\nqme: warning: {notice}\r\n".encode())
        return b"".join(shown)

    def _notices(self) -> list[str]:
        stopped = self.stopped and f"recording stopped: {self.stopped}"
        notices = (self.spooling, stopped, self.closed, self.hook_lost)
        return [notice for notice in notices if notice]


def _job(jobs: list[tuple[Task, StreamCapture]], spec: str) -> tuple[Task, StreamCapture]:
    """The stopped job a job spec names, as far as commands tell; the last one else."""
    name = spec.lstrip("%")
    if name == "-" and len(jobs) > 1:
        return jobs[-2]
    for job in reversed(jobs):
        command = job[0].command
        if name[:1] == "?" and name[1:] in command:
            return job
        if name and not name.isdigit() and name not in "+-%" and command.startswith(name):
            return job
    return jobs[-1]
