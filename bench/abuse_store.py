"""Records under abuse: faults survived with the record complete, parallel writers
with every record kept, fuzzed command lines without a traceback.

    .venv/bin/python bench/abuse_store.py [--quick]

- a full disk (a 2 MiB tmpfs as QME_HOME in a mount namespace of its own, filled
  up before the command runs; needs root and `unshare`), on SQLite and the
  filesystem store: held when the command kept its exit code, one line named the
  full disk, `ls`, `get` and `search` worked on the full disk, and the record
  arrived whole once the space was freed;
- the writer child SIGKILLed while the command runs, on SQLite and the filesystem
  store: held when the record is whole (output before and after, exit code);
- the SQLite store locked by another process for longer than the busy timeout:
  held when the record reached the store, whole, once the lock went;
- 200 parallel `qme run` on SQLite and on the filesystem store, 500 on SQLite:
  held when each record is there with its output, and no "database is locked";
- fuzzed argument lists (random options, values, bytes that are not UTF-8) given
  to `qme`: held when no traceback was printed.

Standard library and qme (run it with qme's venv). `figures()` returns the rows
(what, tried, held) for a table that combines them with the dashboard's
(bench/abuse_web.py). All it makes goes in a temporary folder.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
QME = [PYTHON, "-m", "qme"]

# Run in a private mount namespace with a tmpfs as QME_HOME: one record, then the
# disk filled, the command, reads, the space freed, and the record waited for.
DISK_FULL = r"""
import json, os, subprocess, sys, time
home = os.environ["QME_HOME"]
def qme(*args):
    done = subprocess.run([sys.executable, "-m", "qme", *args], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    return [done.returncode, done.stdout.decode("latin-1"), done.stderr.decode("latin-1")]
qme("run", "true")
qme("ls")
filler = os.open(os.path.join(home, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
for size in (1 << 16, 1 << 12, 1):
    try:
        while True:
            os.write(filler, b"x" * size)
    except OSError:
        pass
os.close(filler)
seen = {"run": qme("run", *sys.argv[1:])}
seen["reads"] = [qme("ls"), qme("get", "--output"), qme("search", "true")]
os.unlink(os.path.join(home, "filler"))
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    tasks = json.loads(qme("ls", "--json")[1] or "[]")
    if any(t["returncode"] == 4 for t in tasks):
        break
    time.sleep(0.2)
seen["output"] = qme("get", "--output")[1]
print(json.dumps(seen))
"""
BIG = "x" * 100_000
FULL_COMMAND = ["sh", "-c", f"echo ran; sleep 0.2; echo {BIG}; echo oops >&2; exit 4"]


def qme(*args: str, home: Path, database: str = "sqlite", timeout: float = 120, env=None):
    env = {**os.environ, "QME_HOME": str(home), "QME_DATABASE": database, **(env or {})}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [*QME, *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env=env,
        cwd=home.parent,
    )


def tasks(home: Path, database: str = "sqlite") -> list[dict]:
    listing = qme("ls", "--json", "--limit", "100000", home=home, database=database)
    return json.loads(listing.stdout or b"[]")


# -- faults --------------------------------------------------------------------------------


def disk_full(work: Path, database: str) -> bool:
    home = work / "tiny"
    home.mkdir()
    (work / "driver.py").write_text(DISK_FULL)
    script = 'mount -t tmpfs -o size=2m,mode=0700 tmpfs "$1" && shift && exec "$@"'
    argv = ["unshare", "-m", "sh", "-c", script, "sh", str(home), PYTHON, str(work / "driver.py")]
    env = {**os.environ, "QME_HOME": str(home), "QME_DATABASE": database}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([*argv, *FULL_COMMAND], capture_output=True, timeout=300, env=env)
    if done.returncode != 0:
        return False
    seen = json.loads(done.stdout)
    code, out, err = seen["run"]
    warnings = [line for line in err.splitlines() if line.startswith("qme:")]
    return (
        (code, out) == (4, f"ran\n{BIG}\n")
        and len(warnings) == 1
        and "disk is full" in warnings[0]
        and all(read[0] in (0, 1) and "error" not in read[2] for read in seen["reads"])
        and seen["output"] == f"ran\n{BIG}\n"
    )


def _children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def writer_killed(work: Path, database: str) -> bool:
    home, go = work / "home", work / "go"
    script = f"echo first; while [ ! -e {go} ]; do sleep 0.02; done; seq 1 50000; exit 3"
    env = {**os.environ, "QME_HOME": str(home), "QME_DATABASE": database}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [*QME, "run", "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 15
        writers: set[int] = set()
        while time.monotonic() < deadline and not writers:
            time.sleep(0.05)
            kids = _children(proc.pid)
            commands = {k for k in kids if Path(f"/proc/{k}/comm").read_text().strip() == "sh"}
            writers = kids - commands if commands else set()
        for pid in writers:
            os.kill(pid, signal.SIGKILL)
        go.touch()
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    expected = b"first\n" + b"".join(b"%d\n" % n for n in range(1, 50001))
    if (proc.returncode, out) != (3, expected) or not writers:
        return _why(f"exit {proc.returncode}, {len(out)} bytes out, writers {writers}")
    found = tasks(home, database)
    if len(found) != 1 or (found[0]["status"], found[0]["returncode"]) != ("failed", 3):
        return _why(f"tasks: {[(t['id'], t['status'], t['returncode']) for t in found]}")
    got = qme("get", found[0]["id"], "--output", home=home, database=database)
    return got.stdout == expected or _why(f"output: {len(got.stdout)} of {len(expected)} bytes")


def _why(reason: str) -> bool:
    """A fault that did not hold: why, on stderr."""
    print(f"not held: {reason}", file=sys.stderr)
    return False


def store_locked(work: Path) -> bool:
    home = work / "home"
    qme("run", "true", home=home)
    holder = subprocess.Popen(
        [
            PYTHON,
            "-c",
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()",
            str(home / "qme.db"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    holder.stdout.readline()
    try:
        command = ["sh", "-c", "echo ran; echo oops >&2; exit 4"]
        run = qme("run", *command, home=home, env={"QME_BUSY_TIMEOUT": "1"})
    finally:
        holder.stdin.close()
        holder.wait()
    told = [line for line in run.stderr.decode().splitlines() if line.startswith("qme:")]
    found = [t for t in tasks(home) if t["returncode"] == 4]
    output = qme("get", found[0]["id"], "--output", home=home).stdout if found else b""
    return run.returncode == 4 and len(told) == 1 and output == b"ran\n"


# -- many writers --------------------------------------------------------------------------


def parallel(work: Path, count: int, database: str) -> tuple[int, bool]:
    """(records kept, whether any said 'database is locked')."""
    home = work / "home"
    qme("run", "true", home=home, database=database)  # the store exists

    def one(number: int):
        return qme("run", "echo", f"writer-{number}", home=home, database=database, timeout=600)

    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(one, range(count)))
    locked = any(b"locked" in r.stderr for r in results)
    deadline = time.monotonic() + 120
    while True:
        found = {t["command"] for t in tasks(home, database) if t["status"] == "complete"}
        kept = sum(f"echo writer-{n}" in found for n in range(count))
        if kept == count or time.monotonic() > deadline:
            missing = [n for n in range(count) if f"echo writer-{n}" not in found]
            if missing:
                print(f"missing ({database}): {missing}", file=sys.stderr)
            break
        time.sleep(1)
    spot = random.Random(count).sample(range(count), min(count, 20))
    by_command = {t["command"]: t["id"] for t in tasks(home, database)}
    for number in spot:  # their output too, on a sample
        task_id = by_command.get(f"echo writer-{number}")
        got = task_id and qme("get", task_id, "--output", home=home, database=database).stdout
        if got != f"writer-{number}\n".encode():
            print(f"writer-{number} ({database}): {task_id} gave {got!r}", file=sys.stderr)
            kept -= 1
    return kept, locked


# -- fuzzed command lines ------------------------------------------------------------------

OPTIONS = [
    "--debug", "--database", "--config_dir", "--log_level", "-m", "--json", "--limit",
    "--output", "--error", "--list", "--last", "--here", "--executor", "-v", "--", "-",
    "--status", "--since", "--until", "--rank", "--all", "--format",
]  # fmt: skip
COMMANDS = ["run", "ls", "get", "search", "rerun", "sync", "clear", "config", "export", "cancel"]
VALUES = [
    "", "0", "-1", "-5", "9223372036854775808", "nan", "inf", "1e309", "x" * 5000,
    "sqlite:////nonexistent/x.db", "sqlite:///relative.db", "sqlite\udcff", "a\udcffb",
    "\udc80", "@1", "@-1", "%s", "{}", "'", '"', "\\", "*", "--", "true", "echo",
]  # fmt: skip


def fuzzed(work: Path, count: int) -> int:
    """How many of count random command lines printed no traceback."""
    rng = random.Random(16)
    home = work / "home"
    qme("run", "echo", "seed", home=home)
    calm = 0
    for _ in range(count):
        argv = [rng.choice(COMMANDS)]
        for _ in range(rng.randint(0, 5)):
            argv.append(rng.choice(OPTIONS + VALUES))
        if argv[0] in ("run", "rerun", "clear", "cancel") and "--help" not in argv:
            argv = ["--database", "sqlite:///fuzz.db", *argv]  # keep the seed task
        try:
            done = qme(*argv, home=home, timeout=30)
        except subprocess.TimeoutExpired:
            continue
        calm += b"Traceback" not in done.stderr
    return calm


# -- the table -----------------------------------------------------------------------------


def _each(work: Path, name: str, tries: int, fault) -> int:
    held = 0
    for attempt in range(tries):
        place = work / f"{name}-{attempt}"
        place.mkdir()
        try:
            held += bool(fault(place))
        except Exception as exc:  # noqa: BLE001 - a fault that broke the bench counts as lost
            print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            subprocess.run(["umount", "-l", str(place / "tiny")], capture_output=True)
    return held


def figures(work: Path | None = None, quick: bool = False) -> list[tuple[str, int, int]]:
    """Rows (what, tried, held) for the store's part of the abuse table."""
    rows = []
    tries = 1 if quick else 3
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        base = Path(tmp)
        if os.geteuid() == 0 and shutil.which("unshare"):
            for database in ("sqlite", "filesystem"):
                fault = functools.partial(disk_full, database=database)
                held = _each(base, f"full-{database}", tries, fault)
                what = f"disk full ({database}): record whole once there is room"
                rows.append((what, tries, held))
        for database in ("sqlite", "filesystem"):
            fault = functools.partial(writer_killed, database=database)
            held = _each(base, f"kill-{database}", tries, fault)
            rows.append((f"writer child SIGKILLed ({database}): record whole", tries, held))
        held = _each(base, "locked", tries, store_locked)
        rows.append(("SQLite locked past the busy timeout: record whole afterwards", tries, held))
        plans = [(200, "sqlite"), (200, "filesystem")] + ([] if quick else [(500, "sqlite")])
        for count, database in plans:
            place = base / f"parallel-{count}-{database}"
            place.mkdir()
            kept, locked = parallel(place, count, database)
            what = f"{count} parallel `qme run` ({database}): records kept"
            rows.append((what + (", 'database is locked' seen" if locked else ""), count, kept))
        place = base / "fuzz"
        place.mkdir()
        tried = 100 if quick else 400
        rows.append(("fuzzed argument lists without a traceback", tried, fuzzed(place, tried)))
    return rows


def table(rows) -> str:
    lines = ["| what | tried | held |", "|---|---:|---:|"]
    lines += [f"| {what} | {tried:,} | {held:,} |" for what, tried, held in rows]
    return "\n".join(lines)


def main() -> int:
    began = time.monotonic()
    rows = figures(quick="--quick" in sys.argv)
    print(table(rows))
    print(f"\n`{' '.join(sys.argv)}`, {time.monotonic() - began:.0f} s")
    return 0 if all(tried == held for _, tried, held in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
