"""qme attacked and abused, one table: `python bench/abuse.py [--quick]`.

Joins the dashboard's rows (bench/abuse_web.py), the store's (bench/abuse_store.py:
full disks, killed writers, parallel writers; left out, and said so, where that
module is missing) and the command line's own:

- fuzzed argument lists for every subcommand, run through `qme.cli.main` in a home
  of their own: a traceback, or an error line naming a Python exception (a bug's
  one-line form), counts as not held;
- records with hostile escape sequences (OSC 52 clipboard, OSC 0 title, 8-bit CSI,
  BEL) printed by every command that shows records, on a terminal with colours: a
  control character other than colour (SGR) reaching the terminal counts as not held;
- secrets printed by commands (split across output chunks) found in the store.

Prints one Markdown table: what | tried | held.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import random
import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from qme.cli import main  # noqa: E402
from qme.cli.env import Environment  # noqa: E402
from qme.cli.parser import COMMANDS  # noqa: E402

# Commands that serve or take over the terminal until stopped: fuzzed by their
# options' parsing only (--help and an unknown option), never run.
LONG_RUNNING = {"start", "on", "session", "mcp", "shell"}
WORDS = [
    "--json", "--last", "--all", "--force", "-f", "--limit", "-n", "-5", "0", "9" * 20,
    "--status", "failed", "--since", "2h", "--until", "yesterday", "--here", "--cwd", "/", "-r",
    "--format", "queueme", "--output", "--error", "--list", "--set", "--unset", "max_output",
    "banana", "--database", "filesystem", "--executor", "shell", "nosuch", "--", "-", "''",
    "\x1b]0;x\x07", "\udcff", "a" * 300, "%s%n", "$(id)", "--rank", "-m", "note", "--help",
    "--bogus", "=", "x=y", "status", "@1", "ffffffff", "shell-", "--session", "--host", "--user",
    "--grant", "--tag", "\x00", "*", "deploy*", "-v", "--debug", "--log-level", "LOUD", "-",
]  # fmt: skip
HOSTILE = ["\x1b]52;c;ZXZpbA==\x07", "\x1b]0;PWNED\x07", "\x9b2J", "bell\x07"]
SGR = re.compile(r"\x1b\[[0-9;]*m")
OBEYED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
BUG_LINE = re.compile(r"qme: error: [A-Z]\w*(Error|Exception)\b.*--debug")


def run_main(argv: list[str], tty: bool = False) -> tuple[str, str, BaseException | None]:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="surrogateescape")
    err = io.StringIO()
    env = Environment(io.StringIO(""), out, err, stdin_isatty=False, stdout_isatty=tty,
                      stderr_isatty=tty, colors=tty)  # fmt: skip
    crash = None
    try:
        with contextlib.redirect_stderr(err):
            main(argv, env)
    except BaseException as exc:  # noqa: BLE001 - what we count
        crash = exc
        traceback.print_exc(file=err)
    out.flush()
    return out.buffer.getvalue().decode("utf-8", "replace"), err.getvalue(), crash


def fuzzed_argv(count: int, seed: int = 16) -> tuple[int, int, list[str]]:
    """(tried, held, first failures)."""
    rng = random.Random(seed)
    names = sorted(COMMANDS)
    held, failures = 0, []
    for i in range(count):
        name = names[i % len(names)]
        if name in LONG_RUNNING:
            argv = [name, rng.choice(["--help", "--bogus", "-x"])]
        else:
            argv = [name, *rng.sample(WORDS, rng.randint(0, 5))]
        if name in ("run", "rerun"):  # a command that exists nowhere: quick
            argv = [*argv, "--", "qme-fuzz-no-such-program"] if rng.random() < 0.5 else argv
        _, err, crash = run_main(argv)
        bad = (crash is not None and not isinstance(crash, SystemExit)) or "Traceback" in err
        if bad or BUG_LINE.search(err):
            failures.append(f"{argv!r}: {err.strip().splitlines()[-1:]}")
        else:
            held += 1
    return count, held, failures[:5]


def hostile_escapes(home: Path) -> tuple[int, int]:
    """Each record-showing command on a colour terminal, with hostile records."""
    qme = [sys.executable, "-m", "qme"]
    env = {**os.environ, "QME_HOME": str(home)}
    for text in HOSTILE:
        subprocess.run([*qme, "-m", text, "run", "printf", "%s\\n", text, "evil"],
                       env=env, capture_output=True, check=True)  # fmt: skip
    commands = [["ls"], ["ls", "--format", "queueme"], ["ls", "--json"], ["search", "evil"],
                ["search", "evil", "--json"], ["get", "--last"], ["sync", "--list"],
                ["get", "x\x1b]0;X\x07"], ["exec", "shell"], ["config"]]  # fmt: skip
    tried = held = 0
    for command in commands:
        out, err, _ = run_main(command, tty=True)
        for text in (out, err):
            tried += 1
            held += not OBEYED.search(SGR.sub("", text))
    return tried, held


def secrets_stored(home: Path) -> tuple[int, int]:
    """Secrets printed in two pieces (a pause between) or typed as arguments: is any
    found in the store afterwards?"""
    qme = [sys.executable, "-m", "qme"]
    env = {**os.environ, "QME_HOME": str(home)}
    secrets = {
        "github": "ghp_" + "R2" * 18,
        "gitlab": "glpat-" + "x7" * 10,
        "slack": "xoxb-1234567890-abcdefghij",
        "aws": "AKIA" + "Q" * 16,
        "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
    }
    for secret in secrets.values():
        half = len(secret) // 2
        script = f"printf 'x {secret[:half]}'; sleep 0.2; printf '{secret[half:]} y\\n'"
        subprocess.run([*qme, "run", "sh", "-c", script], env=env, capture_output=True)
    subprocess.run([*qme, "run", "true", "mysql", "-pS3cretPw", "https://u:S3cretPw@h/"],
                   env=env, capture_output=True)  # fmt: skip
    subprocess.run([*qme, "ls"], env=env, capture_output=True)  # waits for the writers
    dump = subprocess.run([*qme, "export"], env=env, capture_output=True).stdout.decode()
    found = [name for name, secret in secrets.items() if secret in dump]
    tried = len(secrets) + 1
    return tried, tried - len(found) - ("S3cretPw" in dump)


def figures(work: Path | None = None, quick: bool = False) -> list[tuple[str, int, int]]:
    rows = []
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        os.environ["QME_HOME"] = str(Path(tmp) / "fuzz")
        tried, held, failures = fuzzed_argv(300 if quick else 1200)
        rows.append(("fuzzed argument lists (every subcommand) without a traceback", tried, held))
        for failure in failures:
            print(f"  not held: {failure}", file=sys.stderr)
        os.environ["QME_HOME"] = str(Path(tmp) / "hostile")
        rows.append(("outputs with hostile records that reached a terminal clean",
                     *hostile_escapes(Path(tmp) / "hostile")))  # fmt: skip
        rows.append(("secrets printed or typed, none found in the store",
                     *secrets_stored(Path(tmp) / "secrets")))  # fmt: skip
    return rows


def table(rows: list[tuple[str, int, int]]) -> str:
    lines = ["| what | tried | held |", "|---|---:|---:|"]
    lines += [f"| {what} | {tried} | {held} |" for what, tried, held in rows]
    return "\n".join(lines)


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tries")
    args = parser.parse_args()
    rows = []
    for name in ("abuse_web", "abuse_store"):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            print(f"({name} left out: {exc})", file=sys.stderr)
            continue
        try:
            wants_quick = "quick" in module.figures.__code__.co_varnames
            rows += module.figures(quick=args.quick) if wants_quick else module.figures()
        except Exception as exc:  # noqa: BLE001 - a broken part leaves the rest
            print(f"({name} failed: {type(exc).__name__}: {exc})", file=sys.stderr)
    rows += figures(quick=args.quick)
    print(table(rows))


if __name__ == "__main__":
    main_()
