"""Shared helpers for the benchmarks: the peers' venvs, timing, and peak memory.

Everything lives under bench/.work/ (gitignored). Venvs are reused between runs;
the qme venv is reinstalled whenever qme's sources change. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
VENVS = WORK / "venvs"

# The peers, pinned: name -> pip requirements.
ASCIINEMA = ("asciinema==2.4.0",)
QUEUEME = ("qme[database]==0.0.14",)  # QueueMe, qme's predecessor; [database] = SQLAlchemy


def env(**extra: str) -> dict[str, str]:
    """os.environ without PYTHONDONTWRITEBYTECODE (so .pyc files are written and
    used, as on a user's machine), plus extra."""
    result = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result.update(extra)
    return result


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def venv(name: str, requirements: tuple[str, ...], stamp: str = "") -> Path:
    """Create (or reuse) bench/.work/venvs/NAME with requirements installed.

    The venv is rebuilt when requirements or stamp change."""
    path = VENVS / name
    marker = path / ".bench-installed"
    want = "\n".join([*requirements, stamp])
    if marker.exists() and marker.read_text() == want:
        return path
    _log(f"creating venv {path} with {' '.join(requirements)}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True, env=env())
    pip = [str(path / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", *requirements], check=True, env=env())
    # Compile everything once, as an install by a user's pip would.
    subprocess.run(
        [str(path / "bin" / "python"), "-m", "compileall", "-q", str(path / "lib")],
        check=False,
        env=env(),
        stdout=subprocess.DEVNULL,
    )
    marker.write_text(want)
    return path


def _source_stamp() -> str:
    digest = hashlib.sha256()
    sources = [f for f in (ROOT / "qme").rglob("*") if f.is_file() and f.suffix != ".pyc"]
    for file in sorted([ROOT / "pyproject.toml", *sources]):  # shell hooks too
        digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def qme_venv() -> Path:
    """qme from this work tree, installed non-editable (like a user's install)."""
    return venv("qme", (str(ROOT),), stamp=_source_stamp())


# -- qme builds: the work tree, and a git revision to compare it with (--baseline) ---------


@dataclass(frozen=True)
class Build:
    """One qme to measure: the work tree (rev "") or a git revision installed from
    its own source tree. Its rows are labelled with the revision's short hash."""

    venv: Path
    src: Path  # the source tree it was installed from (for its shell hook files)
    rev: str = ""  # short commit hash of a baseline; "" for the work tree

    @property
    def name(self) -> str:
        """qme, or qme-ca771eb: its venv's name (also for its fresh homes)."""
        return f"qme-{self.rev}" if self.rev else "qme"

    def tool(self, name: str) -> str:
        return tool(self.venv, name)

    def label(self, text: str) -> str:
        """text for the work tree; `text (ca771eb)` for a baseline."""
        return f"{text} ({self.rev})" if self.rev else text

    def hook(self, kind: str) -> Path:
        """Its shell hook file for bash, zsh or fish."""
        return self.src / "qme" / "shell" / f"qme.{kind}"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def baseline_build(rev: str) -> Build:
    """qme as of git revision rev: its tree exported by `git archive` into
    bench/.work/src-HASH/ (once), installed into bench/.work/venvs/qme-SHORT like the
    work tree's qme (non-editable, byte-compiled) and reused while it exists."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"--baseline {rev}: not a git revision of {ROOT}") from None
    short = _git("rev-parse", "--short", commit)
    src = WORK / f"src-{commit}"
    if not src.exists():
        _log(f"exporting {rev} ({short}) to {src}")
        WORK.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"src-{short}-", dir=WORK))
        try:
            archive = subprocess.Popen(
                ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
                stdout=subprocess.PIPE,
            )
            subprocess.run(["tar", "-x", "-C", str(tmp)], stdin=archive.stdout, check=True)
            archive.stdout.close()
            if archive.wait() != 0:
                raise RuntimeError(f"git archive {commit} failed")
            tmp.rename(src)  # only a complete tree gets the name
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Build(venv(f"qme-{short}", (str(src),), stamp=commit), src, short)


def builds(baseline: str | None) -> list[Build]:
    """The qme builds to time: the work tree, then the baseline revision if given."""
    before = [] if baseline is None else [baseline_build(baseline)]  # a bad REV stops first
    return [Build(qme_venv(), ROOT), *before]


def add_baseline_option(parser) -> None:
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also time qme as of git revision REV (installed into bench/.work/venvs/"
        "qme-HASH) in the same rounds, and print after ÷ before for qme's rows",
    )


def in_turns(items: list, round_number: int, builds: Sequence[Build], label=str) -> list:
    """items in the order to run them in this round: as given in even rounds; in odd
    rounds each row of the work tree and its baseline twin (the same label with the
    revision appended) swap places, so that neither always runs right after the
    same command: the command before can slow a row (here a `qme run` on a pty took
    about 6 ms more right after a `qme run` with pipes, whose writer child may still
    be finishing its record)."""
    if round_number % 2 == 0 or len(builds) < 2:
        return items
    order = list(items)
    where = {label(item): i for i, item in enumerate(items)}
    for i, item in enumerate(items):
        twin = where.get(builds[1].label(label(item)))
        if twin is not None:
            order[i], order[twin] = items[twin], items[i]
    return order


def after_before(build: Build, rows: list[tuple[str, str, float, float]]) -> str:
    """The work tree against the baseline build: rows of (label, unit, after, before)
    as a Markdown table with after ÷ before, headed by a line naming the baseline."""
    cells = [
        [label, unit, _figure(before), _figure(after), f"{after / before:.2f}×"]
        for label, unit, after, before in rows
    ]
    subject = _git("log", "-1", "--format=%s", build.rev)
    if len(subject) > 72:
        subject = subject[:71] + "…"
    return (
        f"### after ÷ before: the work tree ÷ `{build.rev}` ({subject})\n\n"
        + table(["qme's row", "unit", f"before ({build.rev})", "after", "after ÷ before"], cells)
        + f"\n\nBefore: qme as of `{build.rev}`, installed in {build.venv.relative_to(ROOT)};"
        " after: this work tree (the `qme` venv); both timed in the same rounds, taking"
        " turns. For ms and MiB below 1× means the work tree is faster or smaller, for"
        " MB/s above 1×."
    )


def _figure(value: float) -> str:
    return f"{value:.{3 if value < 1 else 2 if value < 10 else 1}f}"


def asciinema_venv() -> Path:
    return venv("asciinema", ASCIINEMA)


def queueme_venv() -> Path:
    return venv("queueme", QUEUEME)


def tool(venv_path: Path, name: str) -> str:
    return str(venv_path / "bin" / name)


def fresh_dir(prefix: str) -> Path:
    """A new empty directory under bench/.work/tmp (a fresh HOME/QME_HOME)."""
    base = WORK / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


# -- running and timing -------------------------------------------------------------------


@dataclass
class Cmd:
    """One thing to measure: an argv list, or a string run by /bin/sh."""

    label: str
    argv: list[str] | str
    env: dict[str, str] = field(default_factory=env)
    note: str = ""

    def run(self, check: bool = False) -> int:
        proc = subprocess.run(
            self.argv,
            shell=isinstance(self.argv, str),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.label}: exit {proc.returncode}: {self.shell()}")
        return proc.returncode

    def shell(self) -> str:
        return self.argv if isinstance(self.argv, str) else shlex.join(self.argv)


@dataclass
class Timing:
    times: list[float]  # seconds

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def min_ms(self) -> float:
        return min(self.times) * 1000


def time_commands(
    cmds: list[Cmd], runs: int, warmup: int = 1, builds: Sequence[Build] = ()
) -> dict[str, Timing]:
    """Run every command `runs` times, taking turns within each round so that all of
    them share the machine's noise; return the wall times by label. With builds (the
    work tree and a --baseline), a row and its baseline twin swap places every other
    round (see in_turns).

    Each command runs with stdin, stdout and stderr on /dev/null (so a tool that
    picks pty or pipes by its stdio sees pipes); commands that need a terminal
    are given one by wrapping them in `script`."""
    for _ in range(warmup):
        for cmd in cmds:
            cmd.run(check=False)
    results = {cmd.label: Timing([]) for cmd in cmds}
    for round_number in range(runs):
        for cmd in in_turns(cmds, round_number, builds, lambda c: c.label):
            start = time.perf_counter()
            cmd.run()
            results[cmd.label].times.append(time.perf_counter() - start)
    return results


_RSS_PROBE = """
import ctypes, os, resource, subprocess, sys
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans are ours to wait for
subprocess.run(sys.argv[2:] if sys.argv[1] == "argv" else sys.argv[2], shell=sys.argv[1] == "sh",
               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:  # qme's writer child, which outlives qme
    try:
        os.wait()
    except ChildProcessError:
        break
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_kib(cmd: Cmd) -> int:
    """Peak resident memory (KiB) of the biggest process in cmd's tree.

    A fresh Python runs the command and reads getrusage(RUSAGE_CHILDREN), which
    covers every descendant that was waited for (the probe itself is not counted);
    as a child subreaper it also waits for descendants that outlive their parent
    (qme's writer child, which finishes the record after qme has exited)."""
    how = ["sh", cmd.argv] if isinstance(cmd.argv, str) else ["argv", *cmd.argv]
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, *how],
        env=cmd.env,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.split()[-1])


def exit_code(cmd: Cmd) -> int:
    return cmd.run()


# -- reporting ----------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table; numbers right-aligned."""
    cells = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        return (
            "| "
            + " | ".join(
                c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)
            )
            + " |"
        )

    sep = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2)) for w, n in zip(widths, numeric))
        + "|"
    )
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("×x%"))
        return True
    except ValueError:
        return text in ("", "-", "n/a")


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def reproduce(argv: list[str] | None = None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", f"bench/{Path(sys.argv[0]).name}", *args])


def header(title: str, load_before: float | None = None) -> None:
    """Title, date, machine, and the 1-minute load average before and after the run
    (anything above ~0.5 means something else was competing for the 2 cores)."""
    print(f"## {title}\n")
    load = f"{load_before:.2f} before, " if load_before is not None else ""
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')} — {machine()}; load average {load}"
        f"{os.getloadavg()[0]:.2f} after\n"
    )


def load() -> float:
    return os.getloadavg()[0]
