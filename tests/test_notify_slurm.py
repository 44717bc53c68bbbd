"""A Slurm job notifies when the job itself ends, after the shell that submitted it
has exited: the watcher (qme/recorder/watcher.py), a real process, against the
real single-node Slurm of test_slurm.py, with a local HTTP receiver reached
through apprise's json:// URL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from helpers import require_module, unavailable, wait_for
from test_notify import Receiver
from test_slurm import slurm  # noqa: F401 - the fixture that starts Slurm

try:
    import pexpect
except ImportError:
    pexpect = None

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(slurm, monkeypatch, tmp_path):  # noqa: F811
    if pexpect is None:
        unavailable("pexpect is not installed (pip install -e '.[test]')")
    require_module("apprise", "pip install 'qme[notify]'")
    receiver = Receiver()
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
    monkeypatch.setenv("QME_NOTIFY_URLS", receiver.url)
    monkeypatch.setenv("QME_NOTIFY_AFTER", "1")
    monkeypatch.setenv("QME_SLURM_REFRESH_SECONDS", "0")
    monkeypatch.delenv("SLURM_CONF", raising=False)
    monkeypatch.chdir(tmp_path)
    yield receiver
    receiver.close()


def submit_and_leave(line: str, extra: dict | None = None) -> int:
    """Type line in an interactive bash, then exit the shell (its terminal closes)."""
    shell_env = {**os.environ, "PS1": "PROMPT> ", "HISTFILE": "/dev/null", **(extra or {})}
    shell = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env=shell_env, timeout=60)
    shell.expect_exact("PROMPT> ")
    shell.sendline(line)
    shell.expect(r"Submitted batch job (\d+)")
    jobid = int(shell.match.group(1))
    shell.expect_exact("PROMPT> ")
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    shell.close()
    return jobid


def stop_watcher(home) -> None:
    from qme.recorder import watcher

    running = watcher.pid(str(home))
    if running:
        os.kill(running, signal.SIGTERM)
    wait_for(lambda: not watcher.running(str(home)), 60, "the watcher to end")


def test_a_job_that_ends_after_its_shell_has_exited_still_notifies(env, qme_home, monkeypatch):
    from qme import Queue
    from qme.recorder import watcher

    monkeypatch.setenv(watcher.TEST_INTERVAL, "1")
    jobid = submit_and_leave(f"{sys.executable} -m qme run sbatch --wrap 'sleep 3'")
    wait_for(lambda: watcher.running(str(qme_home)), 30, "the watcher to start")
    message = wait_for(lambda: env.messages, 90, "the job's notification")[0]
    assert message["title"] == "qme: complete, exit 0"
    assert message["message"].startswith("sbatch --wrap 'sleep 3'\ncomplete, exit 0 after ")
    queue = Queue(config_dir=qme_home)
    task = queue.get(streams=False)
    assert task.data["jobid"] == str(jobid) and task.status == "complete"
    # archived by the watcher once accounting has the job; then it has nothing left
    wait_for(lambda: not watcher.running(str(qme_home)), 90, "the watcher to end")
    assert "accounting" in queue.get(streams=False).data
    assert watcher.watched(str(qme_home)) == []
    queue.close()
    assert len(env.messages) == 1


def test_a_cancelled_job_is_quiet(env, qme_home, monkeypatch, qme):
    from qme.recorder import watcher

    monkeypatch.setenv(watcher.TEST_INTERVAL, "1")
    submit_and_leave(f"{sys.executable} -m qme run sbatch --wrap 'sleep 30'")
    time.sleep(2)
    done = qme("cancel")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: not watcher.running(str(qme_home)), 90, "the watcher to end")
    assert env.messages == []


def test_the_watcher_asks_slurm_at_most_once_every_30_s(env, qme_home, monkeypatch, tmp_path):
    """With the default interval: a shim before sacct, squeue and scontrol logs
    each call, then runs the real command."""
    from qme.recorder import watcher

    monkeypatch.delenv(watcher.TEST_INTERVAL, raising=False)
    shims, log = tmp_path / "shims", tmp_path / "calls.log"
    shims.mkdir()
    for name in ("sacct", "squeue", "scontrol"):
        real = shutil.which(name)
        (shims / name).write_text(
            f'#!/bin/sh\necho "$(date +%s.%N) {name}" >> {log}\nexec {real} "$@"\n'
        )
        (shims / name).chmod(0o755)
    path = f"{shims}{os.pathsep}{os.environ['PATH']}"
    started = time.time()
    # Long enough to be running at the watcher's first round, however slowly it starts.
    submit_and_leave(f"{sys.executable} -m qme run sbatch --wrap 'sleep 8'", {"PATH": path})
    wait_for(lambda: env.messages, 120, "the job's notification")
    took = time.time() - started
    stop_watcher(qme_home)
    calls = [float(line.split()[0]) for line in log.read_text().splitlines()]
    rounds = [calls[0]]
    for at in calls[1:]:
        if at - rounds[-1] > 5:  # one round's calls come within a few seconds
            rounds.append(at)
    gaps = [b - a for a, b in zip(rounds, rounds[1:])]
    assert gaps and min(gaps) >= 29.5, (gaps, calls)
    assert took >= 30  # the job ended after the first round; the notice waited for the next
    print(json.dumps({"rounds": len(rounds), "gaps": gaps, "notified_after": took}))
