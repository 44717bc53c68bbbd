"""Cost of the shell integration: per prompt (the hooks, the session proxy) and for
output throughput (the proxy against `script`).

    python bench/hooks.py [--commands 1000] [--rounds 3] [--size 200M] [--runs 3]

(a) Per prompt: `true` typed N times into an interactive bash, zsh and fish on a
pty, waiting for each prompt, three ways: the plain shell; the shell with qme's
hook file sourced but outside a session (what every shell pays once `qme init` is
in its rc file); and inside `qme session` with recording on (the hooks print their
marks, the proxy strips them, the store gets one task per command). Each is timed
in `--rounds` fresh shells, taking turns; the median is reported. Then, under
strace, the processes each prompt starts (clone/fork) and the programs it runs
(execve): the hooks must start no Python (no execve); bash's PS0 takes one subshell.

(b) Throughput: `cat FILE` (log-like text) inside a plain bash on a pty, inside
`script -qec bash /dev/null`, and inside `qme session --shell bash` (default
max_output: 8 MiB kept; and with QME_MAX_OUTPUT=0: all of it stored), timed from
the Enter key to the marker echoed after it; and `qme run cat FILE` typed in the
plain bash, which goes through the same pump (qme/recorder/pump.py) without the
session's mark parsing and cutting, against `script -qec 'cat FILE' /dev/null`
typed there (both pass the output through a second pty). Target: each at least
0.9x its `script`.

qme is the work tree installed in bench/.work/venvs/qme (see peers.py); each shell
gets a fresh HOME whose rc file only sets a prompt. Standard library only.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import re
import select
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import peers
from throughput import data_file, parse_size

SHELLS = ("bash", "zsh", "fish")
MODES = ("plain", "hooks, no session", "qme session")
PROMPT = b"BP> "
DONE = b"__DONE__"
MB = 1_000_000
TIMEOUT = 30


class Pty:
    """A program on a new pty (24x100), its output read until a marker."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str):
        self.home = cwd  # a fresh directory, deleted by close()
        self.pid, self.fd = os.forkpty()
        if self.pid == 0:  # the child
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        self.tail = b""

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def until(self, marker: bytes, timeout: float = TIMEOUT) -> int:
        """Read until marker appears (searching across reads); return bytes read."""
        total, tail, keep = 0, self.tail, len(marker) - 1
        at = tail.find(marker)  # already read
        if at >= 0:
            self.tail = tail[at + len(marker) :]
            return 0
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([self.fd], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"no {marker!r} within {timeout} s (last: {tail[-200:]!r})")
            try:
                chunk = os.read(self.fd, 1 << 20)
            except OSError as exc:
                if exc.errno == errno.EIO:
                    raise EOFError(f"the program ended before {marker!r}") from None
                raise
            total += len(chunk)
            window = tail + chunk
            at = window.find(marker)
            if at >= 0:
                self.tail = window[at + len(marker) :]
                return total
            tail = window[-keep:] if keep else b""

    def close(self) -> None:
        """Leave: `exit`, then make sure (SIGHUP, SIGKILL) and reap."""
        try:
            os.write(self.fd, b"exit\n")
        except OSError:
            pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            try:
                while select.select([self.fd], [], [], 0.05)[0] and os.read(self.fd, 1 << 16):
                    pass
            except OSError:
                pass
        else:
            for sig in (signal.SIGHUP, signal.SIGKILL):
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            os.waitpid(self.pid, 0)
        os.close(self.fd)
        shutil.rmtree(self.home, ignore_errors=True)  # its store may hold 200 MB

    def children(self) -> list[int]:
        """The pids of this program's children (the shell under the proxy)."""
        path = f"/proc/{self.pid}/task/{self.pid}/children"
        with open(path) as handle:
            return [int(pid) for pid in handle.read().split()]


# -- the shells --------------------------------------------------------------------------


def rc_files(kind: str, hooks: bool) -> dict[str, str]:
    hook = peers.ROOT / "qme" / "shell" / f"qme.{kind}"
    load = f"source {hook}\n" if hooks else ""
    prompt = PROMPT.decode()
    if kind == "bash":
        return {".bashrc": f"PS1='{prompt}'\n{load}"}
    if kind == "zsh":
        return {".zshrc": f"PROMPT='{prompt}'\n{load}"}
    return {
        ".config/fish/config.fish": (
            f"set -g fish_greeting\nfunction fish_prompt; printf '{prompt}'; end\n{load}"
        )
    }


def start_shell(kind: str, mode: str, qme: str, extra_env: dict | None = None) -> Pty:
    home = peers.fresh_dir(f"hooks-{kind}-")
    # Else a first fish starts a python in the background to read every man page.
    (home / ".local/share/fish/generated_completions").mkdir(parents=True)
    for name, text in rc_files(kind, hooks=mode == "hooks, no session").items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "QME_HOME": str(home / ".qme"),
        "USER": os.environ.get("USER", "root"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        **(extra_env or {}),
    }
    shell = shutil.which(kind)
    argv = [qme, "session", "--shell", shell] if mode == "qme session" else [shell, "-i"]
    pty = Pty(argv, env, str(home))
    pty.until(PROMPT)
    return pty


def type_commands(pty: Pty, count: int) -> float:
    """Type `true` count times, each after the prompt; return the seconds taken."""
    began = time.perf_counter()
    for _ in range(count):
        pty.send(b"true\n")
        pty.until(PROMPT)
    return time.perf_counter() - began


def per_prompt(kinds, qme: str, commands: int, rounds: int) -> dict:
    times: dict[tuple[str, str], list[float]] = {(k, m): [] for k in kinds for m in MODES}
    for round_number in range(rounds):
        for kind in kinds:
            for mode in MODES:
                pty = start_shell(kind, mode, qme)
                try:
                    type_commands(pty, 20)  # warm up
                    times[(kind, mode)].append(type_commands(pty, commands))
                finally:
                    pty.close()
        peers._log(f"per-prompt round {round_number + 1}/{rounds} done")
    return {key: statistics.median(values) for key, values in times.items()}


def processes_per_prompt(kinds, qme: str, commands: int) -> dict:
    """(processes, threads, programs) started per prompt: clone/fork without and with
    CLONE_THREAD, and execve, counted by strace on the shell (and the proxy)."""
    strace = shutil.which("strace")
    counts: dict[tuple[str, str], tuple[float, float, float] | None] = {}
    for kind in kinds:
        for mode in MODES:
            if strace is None:
                counts[(kind, mode)] = None
                continue
            pty = start_shell(kind, mode, qme)
            log = Path(pty.home) / "strace.log"
            try:
                type_commands(pty, 5)
                pids = [pty.pid, *pty.children()] if mode == "qme session" else [pty.pid]
                tracer = subprocess.Popen(
                    [
                        strace,
                        "-f",
                        "-qq",
                        "-e",
                        "trace=clone,clone3,fork,vfork,execve",
                        "-o",
                        str(log),
                        *(a for p in pids for a in ("-p", str(p))),
                    ],
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(0.5)  # attached
                type_commands(pty, commands)
                tracer.send_signal(signal.SIGINT)
                tracer.wait(10)
                calls = [line for line in log.read_text().splitlines() if "resumed>" not in line]
            finally:
                pty.close()
            clones = [line for line in calls if re.search(r"\b(clone3?|v?fork)\(", line)]
            threads = sum("CLONE_THREAD" in line for line in clones)
            execs = sum("execve(" in line for line in calls)
            counts[(kind, mode)] = tuple(
                n / commands for n in (len(clones) - threads, threads, execs)
            )
    return counts


# -- throughput --------------------------------------------------------------------------


# The two wrappers compared: a session around the shell, or one command in it.
AROUND_THE_SHELL = "`script -qec bash /dev/null`"
AROUND_A_COMMAND = "`script -qec 'cat FILE' /dev/null` in the plain bash"


def throughput(path: str, qme: str, runs: int) -> dict[str, list[float]]:
    size = os.path.getsize(path)
    done = "; echo __DO''NE__\n"
    cat = f"cat {path}"
    ways = {  # label: (how to start the shell, its environment, the line typed)
        "bash on a pty (no proxy)": ("plain", {}, cat + done),
        AROUND_THE_SHELL: ("script", {}, cat + done),
        "`qme session` (8 MiB kept)": ("qme session", {}, cat + done),
        "`qme session`, QME_MAX_OUTPUT=0 (all stored)": (
            "qme session",
            {"QME_MAX_OUTPUT": "0"},
            cat + done,
        ),
        AROUND_A_COMMAND: ("plain", {}, f"script -qec {shlex.quote(cat)} /dev/null{done}"),
        "`qme run cat FILE` in the plain bash (same pump, no session)": (
            "plain",
            {},
            f"{qme} run {cat}{done}",
        ),
    }
    speeds: dict[str, list[float]] = {label: [] for label in ways}
    for _ in range(runs):
        for label, (mode, extra, line) in ways.items():
            pty = start_script() if mode == "script" else start_shell("bash", mode, qme, extra)
            try:
                began = time.perf_counter()
                pty.send(line.encode())
                pty.until(DONE, timeout=600)
                speeds[label].append(size / (time.perf_counter() - began) / MB)
                pty.until(PROMPT)
            finally:
                pty.close()
        peers._log("throughput round done")
    return speeds


def baseline(label: str) -> str:
    """What a way is compared with: a wrapped command with `script` wrapping that
    command (both pass the output through a second pty), the rest with `script`
    around the whole shell."""
    return AROUND_A_COMMAND if "run cat" in label else AROUND_THE_SHELL


def start_script() -> Pty:
    home = peers.fresh_dir("hooks-script-")
    (home / ".bashrc").write_text(f"PS1='{PROMPT.decode()}'\n")
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm",
        "LANG": "C.UTF-8",
    }
    pty = Pty(["script", "-qec", "bash -i", "/dev/null"], env, str(home))
    pty.until(PROMPT)
    return pty


# -- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1000, help="commands typed (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh shells per way (3)")
    parser.add_argument("--traced", type=int, default=200, help="commands under strace (200)")
    parser.add_argument("--size", default="200M", help="file for throughput (200M)")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs of each (3)")
    parser.add_argument("--shells", default=",".join(SHELLS), help="bash,zsh,fish")
    args = parser.parse_args()

    kinds = [k for k in args.shells.split(",") if shutil.which(k)]
    qme = peers.tool(peers.qme_venv(), "qme")
    path = data_file(parse_size(args.size))

    timed = per_prompt(kinds, qme, args.commands, args.rounds)
    traced = processes_per_prompt(kinds, qme, args.traced)
    speeds = throughput(path, qme, args.runs)

    print(
        f"## Per prompt: `true` typed {args.commands} times, waiting for each prompt "
        f"(median of {args.rounds} fresh shells)\n"
    )
    rows = []
    for kind in kinds:
        plain = timed[(kind, "plain")]
        for mode in MODES:
            total = timed[(kind, mode)]
            counted = traced[(kind, mode)]
            rows.append(
                [
                    kind,
                    mode,
                    f"{total:.2f}",
                    f"{total / args.commands * 1000:.3f}",
                    f"{(total - plain) / args.commands * 1000:+.3f}",
                    f"{total / plain:.2f}x",
                    *(["n/a"] * 3 if counted is None else [f"{n:.2f}" for n in counted]),
                ]
            )
    print(
        peers.table(
            [
                "shell",
                "way",
                "total s",
                "ms/command",
                "ms/command vs plain",
                "vs plain",
                "processes/prompt",
                "threads/prompt",
                "execs/prompt",
            ],
            rows,
        )
    )
    size = os.path.getsize(path)
    print(
        f"\n## Throughput: `cat` of a {size / MB:.0f} MB ({size >> 20} MiB) file inside "
        f"each (median of {args.runs})\n"
    )
    median = {label: statistics.median(v) for label, v in speeds.items()}
    rows = [
        [label, f"{speed:.1f}", f"{speed / median[baseline(label)]:.2f}x", baseline(label)]
        for label, speed in median.items()
    ]
    print(peers.table(["inside", "MB/s", "ratio", "compared with"], rows))
    print(
        f"\nReproduce: python bench/hooks.py --commands {args.commands} --rounds "
        f"{args.rounds} --traced {args.traced} --size {args.size} --runs {args.runs}"
        f"  # {os.cpu_count()} cores, {sys.platform}, " + ", ".join(_version(k) for k in kinds)
    )


def _version(kind: str) -> str:
    flag = "--version"
    out = subprocess.run([kind, flag], capture_output=True, text=True).stdout
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
    return f"{kind} {match.group(1) if match else '?'}"


if __name__ == "__main__":
    main()
