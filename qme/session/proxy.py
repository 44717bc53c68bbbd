"""`qme session`: the user's shell on a pty, with the hooks loaded, recorded.

The hooks are loaded whatever the user's rc files say: bash gets an --rcfile
that sources ~/.bashrc first, zsh a ZDOTDIR whose files source the user's, fish
an init command (-C) run after its config. The include guard in each hook file
makes a second load (from the user's own rc) do nothing. Started by `qme on` in a
live shell, the session shell then loads that shell's state (state.py).
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from importlib import resources

from qme import console, liveness
from qme.config import Settings
from qme.errors import QmeError, StoreError
from qme.recorder.handoff import ChildWriter
from qme.recorder.pump import Pump, release_signals
from qme.recorder.spawn import spawn
from qme.session.cutter import CommandCutter
from qme.session.filters import CommandFilter
from qme.session.state import ENV, Handover, source_line, take
from qme.store import describe
from qme.task import new_uuid4

SHELLS = ("bash", "zsh", "fish")
SQLITE_MAGIC = b"SQLite format 3\x00"
ANNOUNCE = "qme: recording this shell's commands ('qme off' pauses, 'exit' ends the session)\n"


def hook_path(kind: str) -> str:
    return str(resources.files("qme") / "shell" / f"qme.{kind}")


def shell_kind(shell: str) -> str:
    kind = os.path.basename(shell).lstrip("-")
    if kind not in SHELLS:
        raise QmeError(f"qme records bash, zsh and fish sessions, not {kind} ({shell})")
    return kind


def launch(
    shell: str, kind: str, folder: str, env: dict[str, str], state: bool = False
) -> list[str]:
    """The shell's argv, with files in folder and env changed so the hooks load
    (and with state, the state on state.FD after them)."""
    hook = hook_path(kind)
    env["QME_SESSION_DIR"] = folder
    load = source_line(kind) if state else ""
    if kind == "bash":
        rcfile = os.path.join(folder, "bashrc")
        with open(rcfile, "w") as handle:
            handle.write(f"[ -f ~/.bashrc ] && . ~/.bashrc\n. {shlex.quote(hook)}\n{load}")
        return [shell, "--rcfile", rcfile, "-i"]
    if kind == "zsh":
        # zsh reads $ZDOTDIR/.zshenv and .zshrc: ours source the user's, and let a
        # .zshenv that moves ZDOTDIR (to ~/.config/zsh, say) still be followed.
        env["QME_USER_ZDOTDIR"] = env.get("ZDOTDIR", env.get("HOME", ""))
        env["ZDOTDIR"] = folder
        with open(os.path.join(folder, ".zshenv"), "w") as handle:
            handle.write(
                "__qme_dir=$ZDOTDIR; ZDOTDIR=$QME_USER_ZDOTDIR\n"
                '[[ -f "$ZDOTDIR/.zshenv" ]] && source "$ZDOTDIR/.zshenv"\n'
                "QME_USER_ZDOTDIR=$ZDOTDIR; ZDOTDIR=$__qme_dir; unset __qme_dir\n"
            )
        with open(os.path.join(folder, ".zshrc"), "w") as handle:
            handle.write(
                "ZDOTDIR=$QME_USER_ZDOTDIR; unset QME_USER_ZDOTDIR\n"
                '[[ -f "$ZDOTDIR/.zshrc" ]] && source "$ZDOTDIR/.zshrc"\n'
                f"source {shlex.quote(hook)}\n{load}"
            )
        return [shell, "-i"]
    fish_hook = "'" + hook.replace("\\", "\\\\").replace("'", "\\'") + "'"
    # The shell `qme on` was typed in has greeted the user already.
    after = f"; {load}; __qme_no_greeting; __qme_return $__qme_status" if state else ""
    return [shell, "-i", "-C", f"source {fish_hook}{after}"]


class StoreWatch:
    """Checks that the store's file (or folder) is still the one the session opened.

    The writer keeps its connection open for the whole session: if the file is
    replaced, overwritten or deleted (or QME_HOME with it), it would go on writing
    where no one can read. Calling the watch raises StoreError instead, so that the
    session stops recording and says so: a stat and a 16-byte read per command.

    The SQLite file is opened once and closed only after the writer has closed its
    connection: closing any descriptor of a file drops every POSIX lock this process
    holds on it, the SQLite connection's included (another connection would then
    think itself the last one and delete the WAL under it)."""

    def __init__(self, settings: Settings):
        kind, self.path = describe(settings)
        self.sqlite = kind == "sqlite"
        self.identity: tuple[int, int] | None = None
        self.fd: int | None = None

    def __call__(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            if self.identity is None:
                return  # not created yet
            raise StoreError(f"{self.path} was deleted") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: {exc.strerror}") from None
        identity = (stat.st_dev, stat.st_ino)
        if self.identity is None:
            self.identity = identity
            if self.sqlite:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        elif identity != self.identity:
            raise StoreError(f"{self.path} was replaced")
        if self.fd is not None:
            header = os.pread(self.fd, len(SQLITE_MAGIC), 0)
            if header and header != SQLITE_MAGIC[: len(header)]:
                raise StoreError(f"{self.path} is no longer a SQLite database")

    def close(self) -> None:
        """Call once the writer is closed."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def run_session(settings: Settings, shell: str | None = None) -> int:
    """Run the user's shell until it exits, recording each command typed.

    Returns 0 whatever the shell's own exit status (and after a recording error,
    which the user has been told about), so that `qme session && exit` leaves
    whenever the shell ran; qme's own errors before that raise QmeError."""
    shell = shell or os.environ.get("SHELL") or "/bin/bash"
    kind = shell_kind(shell)
    session = new_uuid4()
    env = {**os.environ, "QME_SESSION": session, "QME_SESSION_RECORD": "1"}
    typed_on = ENV in env  # `qme on` typed in a shell with the hooks loaded
    snapshot = take(env, kind)  # read and deleted before anything else
    command_filter = CommandFilter(settings.ignore, settings.secrets_filter)
    max_output = settings.max_output
    watch = StoreWatch(settings)
    with tempfile.TemporaryDirectory(prefix="qme-session-") as folder:
        # The store is written by a child of its own (see qme/recorder/handoff.py):
        # no writer thread competes with the bytes passing through for the GIL.
        writer = ChildWriter(settings, lock_name=liveness.token())
        argv = launch(shell, kind, folder, env, state=snapshot is not None)
        handover = Handover(snapshot.script() if snapshot else b"")
        if typed_on:
            sys.stderr.write(ANNOUNCE)
            sys.stderr.flush()
        with handover:
            child = spawn(argv, env=env, one_pty=True)
        cutter = CommandCutter(
            writer,
            shell=shell,
            shell_pid=child.pid,
            session=session,
            command_filter=command_filter,
            max_output=max_output,
            check_store=watch,
            loaded=handover.clear,
        )
        try:
            outcome = Pump(child, lambda stream, data: cutter.feed(data), timer=writer.timer).run()
            handover.clear()
            cutter.close(outcome.returncode)
        finally:
            release_signals(child)
    watch.close()
    for notice in cutter.untold():
        console.warn(notice)
    return 0
