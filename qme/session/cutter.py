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
from collections.abc import Callable

from qme import liveness
from qme.recorder.capture import StreamCapture
from qme.session.filters import CommandFilter
from qme.session.marks import MarkParser, Start
from qme.task import Task, signal_in_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from qme.recorder.recording import Writer

# zsh's PROMPT_SP (a highlighted % or #, spaces to the edge, "\r \r") is printed
# after a command's output but before its precmd hooks: it is not output. It may
# arrive in one read and the end mark in the next, so it is held back until then.
_ZSH_PROMPT_SP = re.compile(rb"(?:\x1b\[[0-9;]*m)*[^\s\x1b]?(?:\x1b\[[0-9;]*m)* +\r \r\Z")
_PROMPT_SP_WINDOW = 4096  # longer than any PROMPT_SP; bounds the search
# fish fires fish_preexec before it turns off bracketed paste, sets the terminal's
# title and resets colours (then a \r): not the command's output either.
_FISH_PREAMBLE = re.compile(
    rb"(?:\x1b\[\?2004l)?"  # bracketed paste off
    rb"(?:\x1b\][012];[^\x07\x1b]*(?:\x07|\x1b\\)"  # the title
    rb"(?:\x1b\[[0-9;]*m|\x1b\(B|\x0f)*\r?)?"  # colours reset, back to column 0
)
_PARTIAL_ESCAPE = re.compile(rb"\x1b(?:\[[0-9;?]*|\][^\x07\x1b]*\x1b?|\()?")
_PREAMBLE_MAX = 4096


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
    ):
        """check_store() raises if the store can no longer be written (it is called
        as each recorded command starts)."""
        self.writer = writer
        self.shell, self.shell_pid, self.session = shell, shell_pid, session
        self.filter = command_filter
        self.max_output = max_output
        self.check_store = check_store
        self.fish = os.path.basename(shell).lstrip("-") == "fish"
        self.parser = MarkParser()
        self.recorder = liveness.token()
        self.task: Task | None = None
        self.history_number: int | None = None
        self.capture: StreamCapture | None = None
        self.held = b""  # output of the running task not recorded yet (see _output)
        self.in_preamble = False
        self.recorded = 0
        self.stopped: str | None = None  # why recording stopped, once it has
        self.spooling: str | None = None  # why records go to the spool, once they do
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
            elif isinstance(item, Start):
                self._guard(self._start, item)
            else:
                self._guard(self._end, item.status)
                shown.append(self._notice())
        return b"".join(shown)

    def close(self, shell_status: int) -> str | None:
        """The shell has exited: finish a command cut short, flush, return any error."""
        self._guard(self._end, shell_status)
        error = self.writer.close()
        self._check_writer()
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
        self._check_writer()

    def _check_writer(self) -> None:
        error = self.writer.error
        if error and not self.stopped:
            if self.writer.spooling:
                self.spooling = error
            else:
                self.stopped = error

    def _start(self, mark: Start) -> None:
        if self.task is not None:  # a start with no end: the shell lost one; close it
            self._end(None)
        if mark.history_number is not None:
            # bash: a number seen before means the line never reached the history
            # (HISTCONTROL, HISTIGNORE), so the line shown is an older one.
            seen, self.history_number = self.history_number, mark.history_number
            if mark.history_number == seen:
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
            session=self.session,
            recorder=self.recorder,
        )
        self.capture = StreamCapture(self.max_output)
        self.held, self.in_preamble = b"", self.fish
        self.writer.add(self.task)

    def _output(self, data: bytes) -> None:
        if self.task is None:
            return
        data, self.held = self.held + data, b""
        if self.in_preamble:
            rest = data[_FISH_PREAMBLE.match(data).end() :]
            if (not rest or _PARTIAL_ESCAPE.fullmatch(rest)) and len(data) < _PREAMBLE_MAX:
                self.held = data  # the preamble may go on in the next read
                return
            self.in_preamble, data = False, rest
        if data.endswith(b" \r \r"):
            window = max(0, len(data) - _PROMPT_SP_WINDOW)
            prompt_sp = _ZSH_PROMPT_SP.search(data, window)
            if prompt_sp:  # recorded only if more output follows
                data, self.held = data[: prompt_sp.start()], data[prompt_sp.start() :]
        self.writer.append(self.task.id, "output", self.capture.feed(data))

    def _end(self, status: int | None) -> None:
        task, self.task = self.task, None
        self.held = b""  # a PROMPT_SP, or a preamble with no output after it
        if task is None:
            return
        self.writer.append(task.id, "output", self.capture.finish())
        task.end(status, signal_in_status(status))
        task.output_size = self.capture.total
        self.writer.update(task)
        self.recorded += 1

    def _notice(self) -> bytes:
        """Say once each, just before a prompt, that records go to the spool and
        that recording stopped."""
        shown = []
        for notice in self.untold():
            self.told.add(notice)
            shown.append(f"\r\nqme: warning: {notice}\r\n".encode())
        return b"".join(shown)

    def _notices(self) -> list[str]:
        stopped = self.stopped and f"recording stopped: {self.stopped}"
        return [notice for notice in (self.spooling, stopped) if notice]
