"""Cost of the shell integration: per prompt (the hooks, the session proxy) and for
output throughput (the proxy against `script`).

    python bench/hooks.py [--commands 1000] [--rounds 3] [--size 200M] [--runs 3]
                          [--baseline REV]

(a) Per prompt: `true` typed N times into an interactive bash, zsh and fish on a
pty, waiting for each prompt, three ways: the plain shell; the shell with qme's
hook file sourced but outside a session (what every shell pays once `qme init` is
in its rc file); and inside `qme session` with recording on (the hooks print their
marks, the proxy strips them, the store gets one task per command). Each is timed
in `--rounds` fresh shells, taking turns; the median is reported, of the wall time
and of the CPU time that the program on the pty and all it started (the proxy, the
shell, the writer) ran meanwhile (/proc/PID/task/*/schedstat): on two cores the wall
time of a round swings by a third, its CPU time much less. Then, under
strace, the processes each prompt starts (clone/fork) and the programs it runs
(execve): the hooks must start no process at all (bash's PS0 took one subshell until
2026-12-04; a DEBUG trap now tells the line, see docs/shell.md).

`qme on` with a large state: in a shell with the hooks loaded and 500 aliases and
500 functions (and as many variables) defined, the time from `qme on` to the
session shell's first prompt (the snapshot written, read, deleted and loaded;
target under 150 ms), against `qme on` in the same shell with none of them.

(b) Throughput: `cat FILE` (log-like text) inside a plain bash on a pty, inside
`script -qec bash /dev/null`, and inside `qme session --shell bash` (default
max_output: 8 MiB kept; and with QME_MAX_OUTPUT=0: all of it stored), timed from
the Enter key to the marker echoed after it; and `qme run cat FILE` typed in the
plain bash, which goes through the same pump (qme/recorder/pump.py) without the
session's mark parsing and cutting, against `script -qec 'cat FILE' /dev/null`
typed there (both pass the output through a second pty). Target: each at least
0.9x its `script`.

qme is the work tree installed in bench/.work/venvs/qme (see peers.py); each shell
gets a fresh HOME whose rc file only sets a prompt. With --baseline REV, every way
that involves qme (its hook file, its session proxy, `qme run`) is also run with
qme as of REV, in the same rounds, and after ÷ before is printed. Standard library
only.
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


def ways(builds: list[peers.Build]) -> list[tuple[str, peers.Build]]:
    """(mode, build) for each way to time a shell: plain once, then the hooks and
    the session of each build (the work tree, then a --baseline revision)."""
    return [(MODES[0], builds[0]), *((mode, b) for mode in MODES[1:] for b in builds)]


def rc_files(kind: str, hook: Path | None) -> dict[str, str]:
    load = f"source {hook}\n" if hook else ""
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


def start_shell(kind: str, mode: str, build: peers.Build, extra_env: dict | None = None) -> Pty:
    home = peers.fresh_dir(f"hooks-{kind}-")
    # Else a first fish starts a python in the background to read every man page.
    (home / ".local/share/fish/generated_completions").mkdir(parents=True)
    hook = build.hook(kind) if mode == "hooks, no session" else None
    for name, text in rc_files(kind, hook).items():
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
    session = [build.tool("qme"), "session", "--shell", shell]
    argv = session if mode == "qme session" else [shell, "-i"]
    pty = Pty(argv, env, str(home))
    pty.until(PROMPT)
    return pty


def large_state(kind: str, count: int) -> str:
    """count aliases, functions and variables, as an rc file defines them."""
    if kind == "fish":
        lines = [
            f"alias a{i} 'echo {i}'; function f{i}; echo {i}; end; set -g v{i} {i}"
            for i in range(count)
        ]
    else:
        lines = [f"alias a{i}='echo {i}'; f{i}() {{ echo {i}; }}; v{i}={i}" for i in range(count)]
    return "\n".join(lines) + "\n"


def qme_on_start(kinds, builds: list[peers.Build], rounds: int, count: int = 500) -> dict:
    """Milliseconds from `qme on` to the session's first prompt, median of rounds,
    by (shell, state size, build's label); the builds take turns in each round."""
    times: dict[tuple[str, int, str], list[float]] = {
        (k, n, b.label("qme on")): [] for k in kinds for n in (0, count) for b in builds
    }
    for round_number in range(rounds):
        for kind in kinds:
            for size in (0, count):
                for build in peers.in_turns(builds, round_number, builds, lambda b: b.label("")):
                    times[(kind, size, build.label("qme on"))].append(
                        _time_qme_on(kind, size, build)
                    )
    return {key: statistics.median(values) for key, values in times.items()}


def _time_qme_on(kind: str, size: int, build: peers.Build) -> float:
    path = f"{Path(build.tool('qme')).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    pty = start_shell(kind, "hooks, no session", build, {"PATH": path})
    try:
        if size:
            state = Path(pty.home) / "state.sh"
            state.write_text(large_state(kind, size))
            pty.send(f"source {state}\n".encode())
            pty.until(PROMPT)
        began = time.perf_counter()
        pty.send(b"qme on\n")
        pty.until(PROMPT)
        took = (time.perf_counter() - began) * 1000
        pty.send(b"exit\n")
        pty.until(PROMPT)
        return took
    finally:
        pty.close()


def type_commands(pty: Pty, count: int) -> float:
    """Type `true` count times, each after the prompt; return the seconds taken."""
    began = time.perf_counter()
    for _ in range(count):
        pty.send(b"true\n")
        pty.until(PROMPT)
    return time.perf_counter() - began


TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """Seconds of CPU run so far by pid and its descendants: the live ones' threads
    by the scheduler's own count (ns), and the children they have reaped by their
    stat's cutime and cstime (ticks: bash's PS0 subshell of ca771eb, one a prompt)."""
    total, todo = 0.0, [pid]
    while todo:
        process = todo.pop()
        try:
            with open(f"/proc/{process}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
            total += (int(fields[13]) + int(fields[14])) / TICKS  # cutime, cstime
            for thread in os.listdir(f"/proc/{process}/task"):
                where = f"/proc/{process}/task/{thread}"
                with open(f"{where}/schedstat") as handle:
                    total += int(handle.read().split()[0]) / 1e9
                with open(f"{where}/children") as handle:
                    todo += [int(child) for child in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended meanwhile
    return total


def per_prompt(kinds, builds: list[peers.Build], commands: int, rounds: int) -> tuple[dict, dict]:
    """Seconds of wall time, and of CPU (the program on the pty and all it started:
    the proxy, the shell, the writer), for `commands` commands by (shell, way's
    label), medians of rounds."""
    times: dict[tuple[str, str], list[float]] = {
        (k, b.label(m)): [] for k in kinds for m, b in ways(builds)
    }
    cpu: dict[tuple[str, str], list[float]] = {key: [] for key in times}
    for round_number in range(rounds):
        for kind in kinds:
            turns = peers.in_turns(ways(builds), round_number, builds, lambda w: w[1].label(w[0]))
            for mode, build in turns:
                pty = start_shell(kind, mode, build)
                try:
                    type_commands(pty, 20)  # warm up
                    ran = tree_cpu(pty.pid)
                    times[(kind, build.label(mode))].append(type_commands(pty, commands))
                    cpu[(kind, build.label(mode))].append(tree_cpu(pty.pid) - ran)
                finally:
                    pty.close()
        peers._log(f"per-prompt round {round_number + 1}/{rounds} done")
    return tuple({k: statistics.median(v) for k, v in found.items()} for found in (times, cpu))


def processes_per_prompt(kinds, builds: list[peers.Build], commands: int) -> dict:
    """(processes, threads, programs) started per prompt: clone/fork without and with
    CLONE_THREAD, and execve, counted by strace on the shell (and the proxy)."""
    strace = shutil.which("strace")
    counts: dict[tuple[str, str], tuple[float, float, float] | None] = {}
    for kind in kinds:
        for mode, build in ways(builds):
            key = (kind, build.label(mode))
            if strace is None:
                counts[key] = None
                continue
            pty = start_shell(kind, mode, build)
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
            counts[key] = tuple(n / commands for n in (len(clones) - threads, threads, execs))
    return counts


# -- throughput --------------------------------------------------------------------------


# The two wrappers compared: a session around the shell, or one command in it.
AROUND_THE_SHELL = "`script -qec bash /dev/null`"
AROUND_A_COMMAND = "`script -qec 'cat FILE' /dev/null` in the plain bash"


# The ways that involve qme, each also run with a --baseline revision.
SESSION = "`qme session` (8 MiB kept)"
SESSION_ALL = "`qme session`, QME_MAX_OUTPUT=0 (all stored)"
RUN = "`qme run cat FILE` in the plain bash (same pump, no session)"


def throughput(path: str, builds: list[peers.Build], runs: int) -> dict[str, list[float]]:
    size = os.path.getsize(path)
    done = "; echo __DO''NE__\n"
    cat = f"cat {path}"
    qme = builds[0]
    # label: (how to start the shell, its qme, its environment, the line typed)
    ways = {
        "bash on a pty (no proxy)": ("plain", qme, {}, cat + done),
        AROUND_THE_SHELL: ("script", qme, {}, cat + done),
        **{b.label(SESSION): ("qme session", b, {}, cat + done) for b in builds},
        **{
            b.label(SESSION_ALL): ("qme session", b, {"QME_MAX_OUTPUT": "0"}, cat + done)
            for b in builds
        },
        AROUND_A_COMMAND: ("plain", qme, {}, f"script -qec {shlex.quote(cat)} /dev/null{done}"),
        **{b.label(RUN): ("plain", b, {}, f"{b.tool('qme')} run {cat}{done}") for b in builds},
    }
    speeds: dict[str, list[float]] = {label: [] for label in ways}
    for round_number in range(runs):
        for label in peers.in_turns(list(ways), round_number, builds):
            mode, build, extra, line = ways[label]
            pty = start_script() if mode == "script" else start_shell("bash", mode, build, extra)
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


def compared_with(label: str) -> str:
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
    parser.add_argument("--on-rounds", type=int, default=10, help="`qme on` starts timed (10)")
    parser.add_argument("--only-on", action="store_true", help="only time `qme on`")
    peers.add_baseline_option(parser)
    args = parser.parse_args()

    kinds = [k for k in args.shells.split(",") if shutil.which(k)]
    builds = peers.builds(args.baseline)
    on = qme_on_start(kinds, builds, args.on_rounds)
    print(f"## `qme on`: to the session's first prompt (median of {args.on_rounds})\n")
    rows = [
        [kind, label, f"{size} aliases + functions + variables", f"{ms:.0f}"]
        for (kind, size, label), ms in on.items()
    ]
    print(peers.table(["shell", "qme", "state", "ms"], rows) + "\n")
    if args.only_on:
        return
    path = data_file(parse_size(args.size))

    timed, cpu = per_prompt(kinds, builds, args.commands, args.rounds)
    traced = processes_per_prompt(kinds, builds, args.traced)

    print(
        f"## Per prompt: `true` typed {args.commands} times, waiting for each prompt "
        f"(median of {args.rounds} fresh shells)\n"
    )
    rows = []
    for kind in kinds:
        plain = timed[(kind, "plain")]
        for mode, build in ways(builds):
            total = timed[(kind, build.label(mode))]
            counted = traced[(kind, build.label(mode))]
            rows.append(
                [
                    kind,
                    build.label(mode),
                    f"{total:.2f}",
                    f"{total / args.commands * 1000:.3f}",
                    f"{(total - plain) / args.commands * 1000:+.3f}",
                    f"{total / plain:.2f}x",
                    f"{cpu[(kind, build.label(mode))] / args.commands * 1000:.3f}",
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
                "CPU ms/command",
                "processes/prompt",
                "threads/prompt",
                "execs/prompt",
            ],
            rows,
        )
    )
    for before in builds[1:]:
        ms = 1000 / args.commands
        rows = [
            (f"{kind}, {mode}", unit, *(found[(kind, m)] * ms for m in (mode, before.label(mode))))
            for kind in kinds
            for mode in MODES[1:]
            for unit, found in (("ms/command", timed), ("CPU ms/command", cpu))
        ]
        print()
        print(peers.after_before(before, rows))
    sys.stdout.flush()
    speeds = throughput(path, builds, args.runs)
    size = os.path.getsize(path)
    print(
        f"\n## Throughput: `cat` of a {size / MB:.0f} MB ({size >> 20} MiB) file inside "
        f"each (median of {args.runs})\n"
    )
    median = {label: statistics.median(v) for label, v in speeds.items()}
    rows = [
        [label, f"{speed:.1f}", f"{speed / median[other]:.2f}x", other]
        for label, speed in median.items()
        for other in [compared_with(label)]
    ]
    print(peers.table(["inside", "MB/s", "ratio", "compared with"], rows))
    for before in builds[1:]:
        rows = [
            (label, "MB/s", median[label], median[before.label(label)])
            for label in (SESSION, SESSION_ALL, RUN)
        ]
        print()
        print(peers.after_before(before, rows))
    baseline = f" --baseline {args.baseline}" if args.baseline else ""
    print(
        f"\nReproduce: python bench/hooks.py --commands {args.commands} --rounds "
        f"{args.rounds} --traced {args.traced} --size {args.size} --runs {args.runs}"
        f"{baseline}  # {os.cpu_count()} cores, {sys.platform}, "
        + ", ".join(_version(k) for k in kinds)
    )


def _version(kind: str) -> str:
    flag = "--version"
    out = subprocess.run([kind, flag], capture_output=True, text=True).stdout
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
    return f"{kind} {match.group(1) if match else '?'}"


if __name__ == "__main__":
    main()
