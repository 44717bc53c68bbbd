"""A home is a home: given another one (--config_dir, Queue(config_dir=…)), no
command and no Queue call creates anything under ~/.qme, or anywhere in $HOME.

$HOME is an empty folder of the test's own and QME_HOME is unset, so that ~/.qme
is where qme would go if it forgot the home it was given. After each step, what
appeared in $HOME is noted (with the step that made it) and removed, and the test
fails at the end naming every file and the step that made it. Each command runs
in a process of its own; the Queue calls share this one, so a file that qme
remembers having written (a cache) is named after the first call that made it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from helpers import wait_for

from qme.cli.parser import COMMANDS

TOKEN = "home-test-token-Xq81"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
START = object()  # `qme start`: run by serve(), not as a one-shot command
RUNNING = object()  # a `qme run sleep 60` in the background, for cancel to cancel

# Command -> invocations (after `qme --config_dir OTHER`), in the order they run,
# each with the exit status it must end with (None: any, as long as there is no
# traceback). {id} is the newest task at that moment, {sbatch} a fake sbatch (exit
# 1, no job: a Slurm task whose status no Slurm is ever asked for), {other} the
# home given. A command missing here is still run bare, and with --help.
INVOCATIONS: dict[str, list] = {
    "run": [
        (["run", "true"], 0),
        (["run", "echo", "a", "word"], 0),
        (["run", "--executor", "nosuch", "true"], 1),
        (["run", "{sbatch}", "--wrap", "true"], 1),
        (["-m", "a note", "run", "-v", "--executor", "shell", "true"], 0),
    ],
    "get": [
        (["get"], 0),
        (["get", "{id}"], 0),
        (["get", "--last", "--output"], 0),
        (["get", "ffffffff"], 1),
    ],
    "ls": [
        (["ls"], 0),
        (["ls", "--json"], 0),
        (["ls", "shell"], 0),
        (["ls", "slurm"], 0),
        (["ls", "nosuch"], 1),
        (["ls", "--status", "failed"], 0),
    ],
    "search": [
        (["search", "word"], 0),
        (["search", "--json", "word"], 0),
        (["search", "--executor", "nosuch", "word"], 1),
    ],
    "rerun": [
        (["rerun", "{id}"], 0),
        (["rerun", "--last", "--here"], 0),
    ],
    "exec": [
        (["exec", "shell"], 0),
        (["exec", "slurm"], 0),
        (["exec", "nosuch"], 1),
        (["exec", "{id}", "status"], 1),  # a shell task: its executor has no actions
    ],
    "start": [START],
    "cancel": [
        RUNNING,
        (["cancel", "--json", "{id}"], 0),
        (["cancel", "--last"], 1),  # no longer running
        (["cancel", "ffffffff"], 1),
    ],
    "export": [
        (["export", "{other}/tasks.jsonl"], 0),
        (["export", "--json"], 0),
        (["export", "--executor", "nosuch"], 1),
    ],
    "clear": [
        (["clear", "{id}", "--force"], 0),
        (["clear", "nosuch", "--force"], 1),
        (["clear", "--last", "--force"], 0),
        (["clear", "shell", "--force"], 0),
        (["clear", "slurm", "--force"], 0),
        (["clear", "--all", "--force"], 0),
    ],
    "import": [
        (["import", "{other}/tasks.jsonl"], 0),
        (["import", "--replace", "{other}/tasks.jsonl"], 0),
    ],
    "config": [
        (["config"], 0),
        (["config", "--json"], 0),
        (["config", "--set", "max_output", "16M"], 0),
        (["config", "--unset", "max_output"], 0),
        (["config", "--set", "slurm", "sacct_format", "JobID,State"], 0),
        (["config", "--set", "nosuch", "key", "value"], 1),
        (["config", "--database", "filesystem"], 0),
        (["run", "echo", "a", "word"], 0),  # into the filesystem store
        (["ls"], 0),
        (["search", "word"], 0),
        (["clear", "shell", "--force"], 0),
        (["config", "--database", "sqlite"], 0),
    ],
    "sync": [(["sync"], 0), (["sync", "--list"], 0)],
    "init": [
        (["init", "bash"], 0),
        (["init", "zsh"], 0),
        (["init", "fish"], 0),
        (["init", "--auto", "bash"], 0),
    ],
    "generate-key": [(["generate-key"], 0)],
    # The plain interpreter, stdin /dev/null: IPython would make ~/.ipython of its own.
    "shell": [(["shell", "--interpreter", "python"], 0)],
    # A recorded bash on a pty of qme's, stdin /dev/null: bash reads end of file and
    # exits (HISTFILE=/dev/null: bash's history is not qme's doing).
    "session": [(["session", "--shell", "bash"], 0)],
    "on": [(["on"], 0)],  # not in a session: starts one, in $SHELL (bash)
    "off": [(["off"], 1)],  # not in a session: says so
    "status": [(["status"], 0)],
}


def appeared(home: Path) -> list[str]:
    """What is in home, relative to it; emptied again."""
    found = sorted(str(path.relative_to(home)) for path in home.rglob("*"))
    for entry in home.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return found


class Steps:
    """What each step left in $HOME, and the steps that went wrong."""

    def __init__(self, home: Path):
        self.home = home
        self.leaks: list[str] = []
        self.wrong: list[str] = []

    def after(self, label: str) -> None:
        found = appeared(self.home)
        if found:
            self.leaks.append(f"{label}: {', '.join(found)}")

    def check(self) -> None:
        report = []
        if self.leaks:
            report += [f"$HOME ({self.home}) is not empty; created by:", *self.leaks]
        if self.wrong:
            report += ["steps that did not do what they should:", *self.wrong]
        if report:
            pytest.fail("\n".join(report))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty $HOME, QME_HOME unset: ~/.qme is where a forgetful qme goes."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("QME_HOME", raising=False)
    for name in ("QME_SESSION", "QME_SESSION_RECORD"):  # when run inside `qme on`
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert os.path.expanduser("~/.qme") == str(home / ".qme")
    return home


def fake_sbatch(folder: Path) -> str:
    """A program named sbatch (the slurm executor's) that submits nothing."""
    folder.mkdir()
    path = folder / "sbatch"
    path.write_text('#!/bin/sh\necho "sbatch: error: this is not Slurm" >&2\nexit 1\n')
    path.chmod(0o755)
    return str(path)


def test_no_command_touches_the_real_home(home, tmp_path):
    other = tmp_path / "other"
    env = {**os.environ, "HOME": str(home), "HISTFILE": "/dev/null"}
    env.pop("QME_HOME", None)
    bash = shutil.which("bash")
    if bash:
        env["SHELL"] = bash
    fields = {"other": str(other), "sbatch": fake_sbatch(tmp_path / "bin")}
    steps = Steps(home)
    background = None  # the `qme run sleep 60` that cancel cancels

    def qme(*args: str):
        return subprocess.run(
            [sys.executable, "-m", "qme", "--config_dir", str(other), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=60,
        )

    def newest() -> dict:
        found = qme("ls", "--json", "--limit", "1")
        steps.after("qme --config_dir OTHER ls --json --limit 1 (the newest task)")
        assert found.returncode == 0, found.stderr.decode()
        return json.loads(found.stdout)[0]

    def newest_id() -> str:
        return newest()["id"]

    def one(argv: list[str], expected: int | None) -> None:
        if "{id}" in " ".join(argv):
            fields["id"] = newest_id()
        argv = [word.format(**fields) for word in argv]
        if argv[:1] in (["session"], ["on"]) and not bash:
            return  # no bash to record
        label = "qme --config_dir OTHER " + " ".join(argv)
        done = qme(*argv)
        steps.after(label)
        stderr = done.stderr.decode(errors="replace")
        if "Traceback" in stderr or expected not in (None, done.returncode):
            steps.wrong.append(f"{label}: exit {done.returncode}, stderr: {stderr.strip()}")

    for argv, expected in ([], 2), (["--help"], 0), (["--version"], 0):
        one(argv, expected)
    for name in COMMANDS:
        one([name, "--help"], 0)
    for name, invocations in INVOCATIONS.items():
        if name not in COMMANDS:
            continue
        for invocation in invocations:
            if invocation is START:
                serve(other, env, newest_id(), steps)
            elif invocation is RUNNING:
                background = subprocess.Popen(
                    [sys.executable, "-m", "qme", "--config_dir", str(other), "run", "sleep", "60"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
                try:
                    wait_for(lambda: newest()["status"] == "running", what="qme run sleep 60")
                except BaseException:
                    background.kill()
                    raise
            else:
                one(*invocation)
    if background is not None:
        try:
            background.wait(timeout=15)  # cancelled
        except subprocess.TimeoutExpired:
            steps.wrong.append("qme run sleep 60 still ran 15 s after it was cancelled")
        finally:
            background.kill()
            background.wait()
        steps.after("qme --config_dir OTHER run sleep 60 (cancelled)")
    for name in COMMANDS:
        if name not in INVOCATIONS:
            one([name], None)  # a new command: at least run it bare
    steps.check()


def serve(other: Path, env: dict, task_id: str, steps: Steps) -> None:
    """`qme start`: the dashboard, asked for its pages and a few API calls
    (an unknown executor's tasks, a task, deleting it), then stopped."""
    label = "qme --config_dir OTHER start"
    server = subprocess.Popen(
        [sys.executable, "-m", "qme", "--config_dir", str(other), "start", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, "QME_SERVER_KEY": TOKEN},
        text=True,
    )
    try:
        url = next((line.strip() for line in server.stdout if "?token=" in line), None)
        if url is None:
            steps.wrong.append(f"{label}: printed no address: {server.stderr.read().strip()}")
            return
        base = url.split("?")[0].rstrip("/")
        for method, path, expected in [
            ("GET", "/", 200),
            ("GET", "/api/tasks", 200),
            ("GET", "/api/tasks/executor/shell", 200),
            ("GET", "/api/tasks/executor/nosuch", 404),
            ("GET", f"/tasks/{task_id}", 200),
            ("GET", f"/api/tasks/{task_id}", 200),
            ("DELETE", f"/api/tasks/{task_id}", 200),
        ]:
            request = Request(base + path, method=method, headers=BEARER)
            try:
                with urlopen(request, timeout=10) as response:
                    status = response.status
            except HTTPError as exc:
                status = exc.code
            if status != expected:
                steps.wrong.append(f"{label}: {method} {path} answered {status}, not {expected}")
    finally:
        server.terminate()
        server.communicate(timeout=30)
        steps.after(label)


@pytest.mark.parametrize("database", ["sqlite", "filesystem"])
def test_no_queue_touches_the_real_home(home, tmp_path, database):
    from qme import Queue
    from qme.errors import QmeError

    other = tmp_path / "other"
    exported = tmp_path / "tasks.jsonl"
    sbatch = fake_sbatch(tmp_path / "bin")
    steps = Steps(home)
    q = Queue(config_dir=other, database=database)
    steps.after(f"Queue(config_dir=OTHER, database={database!r})")

    def export(executor=None):
        with open(exported if executor is None else os.devnull, "w", encoding="utf-8") as out:
            return q.export(out, executor)

    def import_from():
        with open(exported, encoding="utf-8") as source:
            return q.import_from(source, replace=True)

    def cancel_a_running_task():
        run = [sys.executable, "-m", "qme", "--config_dir", str(other), "--database", database]
        background = subprocess.Popen(
            [*run, "run", "sleep", "60"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            task = wait_for(lambda: q.list(status="running"), what="qme run sleep 60")[0]
            q.cancel(task.id)
            background.wait(timeout=15)
        finally:
            background.kill()
            background.wait()

    # (call, what it does, the error it must raise or None)
    calls = [
        ("run('true')", lambda: q.run("true"), None),
        ("run(['echo', 'a', 'word'])", lambda: q.run(["echo", "a", "word"]), None),
        ("run('true', executor='nosuch')", lambda: q.run("true", executor="nosuch"), QmeError),
        ("run([SBATCH, '--wrap', 'true'])", lambda: q.run([sbatch, "--wrap", "true"]), None),
        ("run_action(None, 'status')", lambda: q.run_action(None, "status"), QmeError),
        ("run_action(None, 'nosuch')", lambda: q.run_action(None, "nosuch"), QmeError),
        ("executor_names()", lambda: q.executor_names(), None),
        ("actions('slurm')", lambda: q.actions("slurm"), None),
        ("actions('nosuch')", lambda: q.actions("nosuch"), QmeError),
        ("executor_for('sbatch job.sh')", lambda: q.executor_for("sbatch job.sh"), None),
        ("task_actions(get())", lambda: q.task_actions(q.get()), None),
        ("get()", lambda: q.get(), None),
        ("get(ID)", lambda: q.get(q.list(limit=1)[0].id), None),
        ("list()", lambda: q.list(), None),
        ("list('shell')", lambda: q.list("shell"), None),
        ("list('nosuch')", lambda: q.list("nosuch"), QmeError),
        ("search('word')", lambda: q.search("word"), None),
        ("count()", lambda: q.count(), None),
        ("count('nosuch')", lambda: q.count("nosuch"), QmeError),
        ("recent(0)", lambda: q.recent(0), None),
        ("read(ID)", lambda: q.read(q.list(limit=1)[0].id), None),
        ("data_version()", lambda: q.data_version(), None),
        ("configuration()", lambda: q.configuration(), None),
        ("set_setting('max_output', '16M')", lambda: q.set_setting("max_output", "16M"), None),
        ("set_setting('max_output', None)", lambda: q.set_setting("max_output", None), None),
        (
            "set_setting('sacct_format', 'JobID', 'slurm')",
            lambda: q.set_setting("sacct_format", "JobID", "slurm"),
            None,
        ),
        ("set_setting('k', 'v', 'nosuch')", lambda: q.set_setting("k", "v", "nosuch"), QmeError),
        ("spooled()", lambda: q.spooled(), None),
        ("sync()", lambda: q.sync(), None),
        ("rerun(ID)", lambda: q.rerun(q.list("shell", limit=1)[0].id), None),
        ("cancel(ID) of a qme run sleep 60", cancel_a_running_task, None),
        ("cancel(None), finished", lambda: q.cancel(None), QmeError),
        ("export(FILE)", export, None),
        ("export(FILE, 'nosuch')", lambda: export("nosuch"), QmeError),
        ("clear(ID)", lambda: q.clear(q.list(limit=1)[0].id), None),
        ("clear('nosuch')", lambda: q.clear("nosuch"), QmeError),
        ("clear('shell')", lambda: q.clear("shell"), None),
        ("import_from(FILE)", import_from, None),
        ("clear()", lambda: q.clear(), None),
        ("close()", lambda: q.close(), None),
    ]
    try:
        for label, call, error in calls:
            try:
                call()
            except Exception as exc:
                if error is None or not isinstance(exc, error):
                    steps.wrong.append(f"{label} raised {exc!r}")
            else:
                if error is not None:
                    steps.wrong.append(f"{label} raised no {error.__name__}")
            steps.after(label)
    finally:
        q.close()
    steps.check()
