"""What the watcher costs, and how late a Slurm job's notification comes.

    python bench/notify.py [--jobs 100] [--window 60] [--delays 8] [--mail]

Needs the real Slurm (scripts/slurm.sh) and apprise in the venv. Each part uses
a fresh QME_HOME, submits through `qme run sbatch` (so the writer child starts
the watcher, as for a user), and a local HTTP receiver reached through apprise's
json:// URL stands for the notification service.

1. Cost: --jobs held jobs (`sbatch --hold`: they stay pending, so the watcher
   follows all of them all along). The watcher runs with a round every
   --fast-interval seconds (the suite's knob) for --window seconds; its CPU time
   (user + system, its own and its reaped children's: sacct, squeue) from
   /proc/PID/stat, divided by the rounds it made, is one round's cost; at the
   default interval (30 s) a user's watcher makes 120 rounds an hour.
2. Delay: --delays jobs of different lengths, each writing the time it ends as
   its last command, watched at the default interval (30 s); the delay is from
   that time to the notification's arrival at the receiver.
3. With --mail (root): the same jobs also ask for `--mail-type=END`; slurmctld
   runs its MailProg (/bin/mail here); where none is installed, a script that
   writes the time it was run is put there for the run (and removed after).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qme.recorder import watcher  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
MAIL_LOG = "/tmp/qme-bench-mail.log"


class Receiver:
    def __init__(self):
        self.arrivals: list[tuple[float, dict]] = []
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrivals.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"


def qme_env(home: str, **extra: str) -> dict:
    env = {**os.environ, "QME_HOME": home, "PYTHONPATH": str(ROOT), **extra}
    env.pop(watcher.TEST_INTERVAL, None)
    env.update(extra)
    return env


def submit(env: dict, *args: str, cwd: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "qme", "run", "sbatch", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()[-1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rpartition(b")")[2].split()
    return sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime


def cost(jobs: int, window: float, fast: float, work: str) -> dict:
    home = tempfile.mkdtemp(prefix="qme-bench-home-")
    env = qme_env(home, **{watcher.TEST_INTERVAL: str(fast), "QME_NOTIFY_AFTER": "off"})
    ids = [submit(env, "--hold", "--wrap", "true", cwd=work) for _ in range(jobs)]
    try:
        deadline = time.time() + 60
        while len(watcher.watched(home)) < jobs or not watcher.pid(home):
            if time.time() > deadline:
                raise SystemExit("the watcher did not start, or does not follow every job")
            time.sleep(0.2)
        pid = watcher.pid(home)
        time.sleep(fast + 1)  # past its start-up and first round
        start_cpu, start = cpu_seconds(pid), time.monotonic()
        time.sleep(window)
        spent, elapsed = cpu_seconds(pid) - start_cpu, time.monotonic() - start
    finally:
        subprocess.run(["scancel", *ids], check=False)
        pid = watcher.pid(home)
        if pid:
            os.kill(pid, 15)
        shutil.rmtree(home, ignore_errors=True)
    rounds = elapsed / fast
    per_round = spent / rounds
    return {
        "jobs": jobs,
        "window_s": round(elapsed, 1),
        "interval_s": fast,
        "rounds": round(rounds, 1),
        "cpu_s": round(spent, 3),
        "cpu_s_per_round": round(per_round, 4),
        "cpu_s_per_hour_at_30s": round(per_round * 3600 / 30, 2),
    }


def install_mail() -> bool:
    """A MailProg that writes when it ran, where none is installed; True if put there."""
    if os.path.exists("/bin/mail") or os.geteuid() != 0:
        return False
    Path("/bin/mail").write_text(f'#!/bin/sh\necho "$(date +%s.%N) $*" >> {MAIL_LOG}\n')
    os.chmod("/bin/mail", 0o755)
    Path(MAIL_LOG).touch()
    os.chmod(MAIL_LOG, 0o666)  # slurmctld runs it as SlurmUser
    return True


def delays(count: int, work: str, mail: bool) -> dict:
    home = tempfile.mkdtemp(prefix="qme-bench-home-")
    receiver = Receiver()
    env = qme_env(home, QME_NOTIFY_URLS=receiver.url, QME_NOTIFY_AFTER="0")
    mailing = mail and install_mail()
    ends = {}
    try:
        for i in range(count):
            seconds = 3 + 7 * i  # 3 s to 52 s: ends spread over the watcher's rounds
            end_file = os.path.join(work, f"end-{i}")
            script = f"sleep {seconds}; date +%s.%N > {end_file}"
            extra = ["--mail-type=END"] if mailing else []
            jobid = submit(env, *extra, "-J", f"bench{i}", "--wrap", script, cwd=work)
            ends[jobid] = (f"-J bench{i} ", end_file)
        deadline = time.time() + 60 + 7 * count + 60
        while len(receiver.arrivals) < count and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(5)
        arrived = {}
        for at, message in receiver.arrivals:
            for jobid, (name, _) in ends.items():
                if name in message["message"]:
                    arrived.setdefault(jobid, at)
        qme_delays = []
        for jobid, (_, end_file) in ends.items():
            if jobid in arrived and os.path.exists(end_file):
                qme_delays.append(arrived[jobid] - float(Path(end_file).read_text()))
        mail_delays = []
        if mailing:
            lines = Path(MAIL_LOG).read_text().splitlines()
            for jobid, (_, end_file) in ends.items():
                sent = [float(x.split()[0]) for x in lines if f"Job_id={jobid} " in x]
                if sent and os.path.exists(end_file):
                    mail_delays.append(sent[0] - float(Path(end_file).read_text()))
    finally:
        if mailing:
            os.unlink("/bin/mail")
        pid = watcher.pid(home)
        if pid:
            os.kill(pid, 15)
        shutil.rmtree(home, ignore_errors=True)

    def figures(values):
        if not values:
            return None
        return {
            "n": len(values),
            "median_s": round(statistics.median(values), 2),
            "max_s": round(max(values), 2),
        }

    return {"qme": figures(qme_delays), "slurm_mail": figures(mail_delays), "mail": mailing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--window", type=float, default=60)
    parser.add_argument("--fast-interval", type=float, default=5)
    parser.add_argument("--delays", type=int, default=8)
    parser.add_argument("--mail", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qme-bench-")
    print(f"load before: {os.getloadavg()[0]:.1f}", flush=True)
    print(json.dumps({"cost": cost(args.jobs, args.window, args.fast_interval, work)}), flush=True)
    print(json.dumps({"delay": delays(args.delays, work, args.mail)}), flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
