"""The Slurm executor against a real single-node Slurm (scripts/slurm.sh brings one up
when it is missing: root and apt-get needed; never skipped under CI=true).

Jobs are short (about a second) and polls fast; the node has `nproc` CPUs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from helpers import ok, one_error_line, unavailable

from qme.executors.slurm import scheduler

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "slurm.sh"
NEVER = "67000000"  # a job id this cluster has not given (Slurm's MaxJobId is 67043328)


def answers() -> bool:
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def slurm():
    """A Slurm whose node is idle; started (and stopped afterwards) if not running."""
    started = False
    if not answers():
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            unavailable("Slurm is not running, and installing it needs root and apt-get")
        done = subprocess.run(
            ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            unavailable(f"scripts/slurm.sh start failed: {done.stderr.strip()[-500:]}")
        started = True
    deadline = time.time() + 60
    while subprocess.run(
        ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True
    ).stdout.split() != ["idle"]:
        if time.time() > deadline:
            pytest.fail("the Slurm node did not become idle within 60s")
        time.sleep(0.2)
    yield
    if started:
        subprocess.run(["bash", str(SCRIPT), "stop"], timeout=120)


@pytest.fixture(autouse=True)
def fresh_state(slurm, monkeypatch):
    monkeypatch.setenv("QME_SLURM_REFRESH_SECONDS", "0")  # ask Slurm on every read
    monkeypatch.delenv("QME_SLURM_SACCT_FORMAT", raising=False)
    monkeypatch.delenv("SLURM_CONF", raising=False)


def submit(qme, *args, cwd, env=None) -> dict:
    """`qme run sbatch ARGS` in cwd; the recorded task."""
    printed = ok(qme("run", "sbatch", *args, cwd=cwd, env=env))
    task = json.loads(ok(qme("get", env=env)))
    assert printed == f"Submitted batch job {task['data']['jobid']}\n"
    return task


def wait(queue, task_id: str, *statuses: str, timeout: float = 20.0):
    """The task once its status is one of statuses (read through the API, which
    refreshes it from Slurm); the statuses seen on the way in task.seen."""
    seen = []
    deadline = time.time() + timeout
    while True:
        task = queue.get(task_id, streams=False)
        if not seen or seen[-1] != task.status:
            seen.append(task.status)
        if task.status in statuses:
            task.seen = seen
            return task
        assert not task.finished, f"ended {task.status} (seen {seen}), not {statuses}"
        assert time.time() < deadline, f"still {task.status} (seen {seen}), not {statuses}"
        time.sleep(0.2)


def scontrol_files(jobid: str) -> tuple[str, str]:
    [row] = [r for r in scheduler.scontrol(jobid) if r["jobidraw"] == jobid]
    return row["stdout"], row["stderr"]


def accounting_works() -> bool:
    return subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True).returncode == 0


# -- submitting ------------------------------------------------------------------------------


def test_wrap_job_runs_to_completion(qme, queue, tmp_path):
    task = submit(qme, "--wrap", "echo hello; echo oops >&2", cwd=tmp_path)
    jobid = task["data"]["jobid"]
    assert task["executor"] == "slurm" and task["status"] in ("pending", "running", "complete")
    assert task["data"]["jobname"] == "wrap" and task["data"]["workdir"] == str(tmp_path)
    out = str(tmp_path / f"slurm-{jobid}.out")
    assert (task["data"]["outputfile"], task["data"]["errorfile"]) == (out, out)
    assert scontrol_files(jobid) == (out, out)  # where Slurm itself says it writes

    done = wait(queue, task["id"], "complete")
    assert done.returncode == 0 and done.ended >= done.started
    assert done.data["job"]["state"] == "COMPLETED" and done.data["job"]["nodelist"]
    assert ok(qme("exec", task["id"], "output")) == "hello\noops\n"
    assert ok(qme("exec", task["id"], "error")) == "hello\noops\n"
    assert done.run_action("output") == "hello\noops\n"  # the same through Python
    status = json.loads(ok(qme("exec", "status", "--json")))
    assert (status["jobid"], status["state"], status["exitcode"]) == (jobid, "COMPLETED", "0:0")
    assert status["status"] == "complete" and status["source"] in ("sacct", "squeue")


def test_script_with_sbatch_directives(qme, queue, tmp_path):
    (tmp_path / "job.sh").write_text(
        "#!/bin/bash\n"
        "#SBATCH --job-name=directed\n"
        "#SBATCH --output=out-%x-%j.txt\n"
        "#SBATCH --error=err-%u-%5j.txt\n"
        "echo to stdout\n"
        "echo to stderr >&2\n"
    )
    task = submit(qme, "job.sh", cwd=tmp_path)
    jobid, user = task["data"]["jobid"], task["user"]
    out = str(tmp_path / f"out-directed-{jobid}.txt")
    err = str(tmp_path / f"err-{user}-{int(jobid):05d}.txt")
    assert task["data"]["jobname"] == "directed" and task["data"]["script"] == str(
        tmp_path / "job.sh"
    )
    assert (task["data"]["outputfile"], task["data"]["errorfile"]) == (out, err)
    wait(queue, task["id"], "complete")
    written = {str(p) for p in tmp_path.iterdir() if p.suffix == ".txt"}
    assert written == {out, err}  # the files the job wrote (scontrol does not pad %5j)
    assert ok(qme("exec", "output")) == "to stdout\n"
    assert ok(qme("exec", "error")) == "to stderr\n"


@pytest.mark.slow
def test_job_arrays_are_one_task(qme, queue, tmp_path):
    script = "echo element $SLURM_ARRAY_TASK_ID; exit $SLURM_ARRAY_TASK_ID"
    task = submit(qme, "--array=0-2", "--wrap", script, cwd=tmp_path)
    jobid = task["data"]["jobid"]
    assert task["data"]["array"] == "0-2"
    assert task["data"]["outputfile"] == str(tmp_path / f"slurm-{jobid}_%a.out")
    done = wait(queue, task["id"], "failed")  # elements 1 and 2 exit 1 and 2
    assert done.returncode == 2 and sorted(done.data["tasks"]) == ["0", "1", "2"]
    outputs = json.loads(ok(qme("exec", "output", "--json")))
    assert outputs == {str(tmp_path / f"slurm-{jobid}_{i}.out"): f"element {i}\n" for i in range(3)}
    assert ok(qme("exec", "output", "index=1")).endswith("element 1\n")
    assert "follow one element (index=N)" in one_error_line(qme("exec", "follow"))


# -- the job's life --------------------------------------------------------------------------


@pytest.mark.slow
def test_status_pending_running_complete(qme, queue, tmp_path):
    cpus = os.cpu_count()
    blocker = submit(qme, "-c", str(cpus), "--wrap", "sleep 3", cwd=tmp_path)
    waiting = submit(qme, "--wrap", "echo after", cwd=tmp_path)
    try:
        wait(queue, blocker["id"], "running")
        assert queue.get(waiting["id"]).status == "pending"  # no CPU left for it
        listing = ok(qme("ls", "--status", "pending"))
        # With the reason squeue gives (Resources) once the scheduler has looked at it.
        found = re.search(rf"^{waiting['id'][6:14]}\s+pending(?: \(\w+\))?\s+-", listing, re.M)
        assert found, listing
        status = json.loads(ok(qme("exec", waiting["id"], "status", "--json")))
        assert (status["state"], status["status"]) == ("PENDING", "pending")
        running = queue.get(blocker["id"])
        assert running.returncode is None and running.ended is None
        done = wait(queue, waiting["id"], "complete")
        assert "pending" in done.seen
        assert wait(queue, blocker["id"], "complete").duration >= 2
    finally:
        scheduler.cancel(f"{blocker['data']['jobid']},{waiting['data']['jobid']}")


def test_failing_job(qme, queue, tmp_path):
    task = submit(qme, "--wrap", "echo trying; exit 3", cwd=tmp_path)
    done = wait(queue, task["id"], "failed")
    assert (done.returncode, done.signal) == (3, None)
    assert done.data["job"]["exitcode"] == "3:0"
    failed = json.loads(ok(qme("ls", "--status", "failed", "--json")))
    assert [t["id"] for t in failed] == [task["id"]]
    assert ok(qme("exec", "output")) == "trying\n"


def test_cancel_a_running_job(qme, queue, tmp_path):
    task = submit(qme, "--wrap", "sleep 60", cwd=tmp_path)
    wait(queue, task["id"], "running")
    said = ok(qme("exec", "cancel"))
    assert re.search(r"^state:\s+CANCELLED", said, re.M) and "status: cancelled" in said
    assert queue.get(task["id"]).status == "cancelled"
    assert "has already ended (CANCELLED" in one_error_line(qme("exec", "cancel"))


def test_follow_prints_the_output_as_it_comes(qme, tmp_path):
    submit(qme, "--wrap", "for i in 1 2 3; do echo line $i; sleep 0.4; done", cwd=tmp_path)
    started = time.time()
    assert ok(qme("exec", "follow")) == "line 1\nline 2\nline 3\n"
    assert time.time() - started < 15


# -- bad input ----------------------------------------------------------------------------


def test_sbatch_failures_are_recorded_with_slurms_words(qme, queue, tmp_path):
    bad = qme("run", "sbatch", "-p", "nosuch", "--wrap", "true", cwd=tmp_path)
    assert bad.returncode == 1 and b"Invalid partition" in bad.stderr
    task = queue.get()
    assert (task.executor, task.status, task.returncode) == ("slurm", "failed", 1)
    assert b"Invalid partition name specified" in task.error
    error = one_error_line(qme("exec", "status"))
    assert re.search(r"has no Slurm job \(sbatch exited 1: sbatch: error: .*nosuch\)$", error)

    missing = qme("run", "sbatch", "nosuch.sh", cwd=tmp_path)
    assert missing.returncode == 1 and b"Unable to open file nosuch.sh" in missing.stderr
    assert queue.get().status == "failed"


def test_a_job_slurm_does_not_know(qme, queue, tmp_path):
    # Any command's output can name a job: this one names a job that never was.
    ok(qme("run", "--executor", "slurm", "echo", f"Submitted batch job {NEVER}", cwd=tmp_path))
    assert f"Slurm does not know job {NEVER}" in one_error_line(qme("exec", "status"))
    assert queue.get().status == "lost"


def test_slurm_commands_missing_from_path(qme, queue, tmp_path):
    task = submit(qme, "--wrap", "true", cwd=tmp_path)
    bare = {"PATH": os.path.dirname(sys.executable)}
    error = one_error_line(qme("exec", task["id"], "status", env=bare))
    assert re.search(r"Slurm's (squeue|sacct) is not on PATH \(is Slurm installed here\?\)", error)
    assert json.loads(ok(qme("ls", "--json", env=bare)))[0]["id"] == task["id"]  # still lists
    wait(queue, task["id"], "complete")  # and once Slurm is back, the task follows the job
    unsent = qme("run", "sbatch", "--wrap", "true", env=bare)
    assert unsent.returncode == 127 and b"sbatch: command not found" in unsent.stderr
    assert queue.get().status == "failed"


def test_srun_and_salloc_run_under_the_shell_executor(qme, tmp_path):
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout
    assert ok(qme("run", "srun", "-n1", "hostname", "-s", cwd=tmp_path)) == host
    ran = qme("run", "salloc", "-n1", "echo", "allocated", cwd=tmp_path)
    assert ran.returncode == 0 and ran.stdout == b"allocated\n"
    assert {t["executor"] for t in json.loads(ok(qme("ls", "--json")))} == {"shell"}


# -- where Slurm's answers come from --------------------------------------------------------


def test_accounting_answers_through_sacct(qme, queue, tmp_path):
    if not accounting_works():
        unavailable("this Slurm has no accounting (scripts/slurm.sh starts slurmdbd)")
    task = submit(qme, "--wrap", "exit 4", cwd=tmp_path)
    wait(queue, task["id"], "failed")
    deadline = time.time() + 15
    while (status := json.loads(ok(qme("exec", "status", "--json"))))["source"] != "sacct":
        assert time.time() < deadline, status
        time.sleep(0.3)
    assert (status["state"], status["exitcode"]) == ("FAILED", "4:0")
    chosen = {"QME_SLURM_SACCT_FORMAT": "JobID,State,NNodes"}
    status = json.loads(ok(qme("exec", "status", "--json", env=chosen)))
    assert status == {
        "jobid": task["data"]["jobid"],
        "state": "FAILED",
        "nnodes": "1",
        "source": "sacct",
        "status": "failed",
    }
    wrong = one_error_line(qme("exec", "status", env={"QME_SLURM_SACCT_FORMAT": "jobid,nosuch"}))
    assert 'Invalid field requested: "nosuch"' in wrong and "sacct_format" in wrong


def test_without_accounting_the_controller_answers(qme, queue, tmp_path, monkeypatch):
    conf = os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    text = Path(conf).read_text()
    plain = tmp_path / "slurm.conf"  # the same cluster, as a client without accounting
    plain.write_text(re.sub(r"(?im)^\s*AccountingStorage\w*=.*$", "", text))
    monkeypatch.setenv("SLURM_CONF", str(plain))
    said = subprocess.run(["sacct", "-j", "1"], capture_output=True, text=True)
    assert said.returncode != 0 and "accounting storage is disabled" in said.stdout + said.stderr

    task = submit(qme, "--wrap", "echo x; exit 3", cwd=tmp_path)
    done = wait(queue, task["id"], "failed")
    assert done.returncode == 3 and done.data["job"]["source"] == "squeue"
    status = json.loads(ok(qme("exec", "status", "--json")))
    assert (status["exitcode"], status["source"]) == ("3:0", "squeue")
    if re.search(r"(?im)^\s*JobCompType\s*=\s*jobcomp/filetxt", text):
        [row] = scheduler.sacct([task["data"]["jobid"]], completion=True)
        assert (row["state"], row["exitcode"]) == ("FAILED", "3:0")


def test_reads_are_cached_and_batched(qme, queue, tmp_path):
    shim = tmp_path / "bin"  # the real sacct and squeue, counted
    shim.mkdir()
    log = tmp_path / "calls"
    for name in ("sacct", "squeue"):
        real = shutil.which(name)
        (shim / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexec {real} "$@"\n')
        (shim / name).chmod(0o755)
    jobs = [queue.run(["sbatch", "--wrap", "sleep 2"], cwd=str(tmp_path)) for _ in range(3)]
    ids = [job.data["jobid"] for job in jobs]
    counted = {"PATH": f"{shim}:{os.environ['PATH']}", "QME_SLURM_REFRESH_SECONDS": "60"}
    try:
        ok(qme("ls", env=counted))
        calls = log.read_text().splitlines()
        sacct = [c for c in calls if c.startswith("sacct")]
        assert len(sacct) == 1  # one call for all three jobs
        assert sorted(re.search(r" -j (\S+) ", sacct[0]).group(1).split(",")) == sorted(ids)
        assert len(calls) <= 2  # and squeue for what accounting does not list yet
        ok(qme("ls", env=counted))
        ok(qme("get", jobs[0].id, env=counted))
        assert log.read_text().splitlines() == calls  # cached: Slurm is not asked again
    finally:
        scheduler.cancel(",".join(ids))


# -- the dashboard ---------------------------------------------------------------------------


def test_dashboard_page_and_actions(queue, tmp_path):
    from qme.web.app import create_app

    task = queue.run(["sbatch", "--wrap", "echo from the dashboard"], cwd=str(tmp_path))
    wait(queue, task.id, "complete")
    app = create_app(queue, "token-for-tests")

    def call(method: str, path: str):
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path}
        environ["HTTP_AUTHORIZATION"] = "Bearer token-for-tests"
        setup_testing_defaults(environ)
        status = []
        body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        return int(status[0].split()[0]), body.decode()

    code, page = call("GET", f"/tasks/{task.id}")
    assert code == 200 and f"Slurm job {task.data['jobid']}" in page
    assert 'data-executor-action="status"' in page and 'data-executor-action="output"' in page
    code, body = call("POST", f"/api/tasks/{task.id}/actions/output")
    assert code == 200 and json.loads(body)["result"] == "from the dashboard\n"
    code, body = call("POST", f"/api/tasks/{task.id}/actions/status")
    assert code == 200 and json.loads(body)["result"]["status"] == "complete"


def test_sbatch_typed_in_a_session_is_a_slurm_task(queue, qme_home, tmp_path):
    """`qme on` picks the executor by the same rules as `qme run`: a job submitted
    at the prompt is a Slurm task, with its job id, its status and its actions."""
    from test_shells import World

    world = World(tmp_path, qme_home)
    world.env["PATH"] += f":{os.path.dirname(shutil.which('sbatch'))}"
    (world.home / "job.sh").write_text("#!/bin/bash\necho from the job\n")
    sh = world.session("bash")
    try:
        sh.session_id()
        sh.run("sbatch job.sh", "Submitted batch job")
        sh.run("echo plain", "plain")
        assert sh.exit() == 0
    finally:
        sh.close()
    submitted, plain, _ = world.tasks()
    assert (submitted.command, submitted.executor, plain.executor) == (
        "sbatch job.sh",
        "slurm",
        "shell",
    )
    jobid = submitted.data["jobid"]
    assert submitted.output == f"Submitted batch job {jobid}\r\n".encode()
    done = wait(queue, submitted.id, "complete")
    assert done.run_action("output") == "from the job\n"
    assert done.run_action("status")["jobid"] == jobid
