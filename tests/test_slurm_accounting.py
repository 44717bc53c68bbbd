"""A Slurm job's whole story, against the real single-node Slurm (scripts/slurm.sh,
with slurmdbd and jobacct_gather/linux): the pending reason while it waits, its
accounting archived into the task when it ends, arrays, sbatch --wait.

The sacct text in the first tests is what this cluster printed; no Slurm needed there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from helpers import ok, unavailable
from test_slurm import NEVER, accounting_works, fresh_state, slurm, submit, wait  # noqa: F401

from qme.executors.slurm import accounting, scheduler
from qme.task import Task

MiB = 1024 * 1024
# sacct -n -P -o accounting.FIELDS -j 118 on this cluster: a job that allocated 50 MB.
SACCT_118 = """\
118|118|COMPLETED|0:0|00:00:02|2|00:05:00|1|billing=1,cpu=1,mem=200M,node=1|200M|00:00.211|\
|1|vm|debug|normal|2026-12-04T14:33:49|2026-12-04T14:33:49|2026-12-04T14:33:51
118.batch|118.batch|COMPLETED|0:0|00:00:02|2||1|cpu=1,mem=200M,node=1||00:00.211|66948K|1|vm|||\
2026-12-04T14:33:49|2026-12-04T14:33:49|2026-12-04T14:33:51
"""


def rows_of(text: str) -> list[dict]:
    names = accounting.FIELDS.split(",")
    return [dict(zip(names, line.split("|"))) for line in text.splitlines()]


# -- reading sacct (no Slurm needed) ---------------------------------------------------------


def test_a_record_as_seff_computes_it():
    [(jobid, record)] = accounting.records(rows_of(SACCT_118)).items()
    assert jobid == "118"
    assert record["maxrss"] == "66948K" and record["maxrss_bytes"] == 66948 * 1024
    assert (record["alloccpus"], record["allocmem_bytes"]) == (1, 200 * MiB)
    assert (record["elapsed_seconds"], record["timelimit_seconds"]) == (2, 300)
    assert record["totalcpu_seconds"] == 0.211
    assert record["cpu_efficiency"] == round(100 * 0.211 / (2 * 1), 2)  # TotalCPU/(Elapsed×CPUs)
    assert record["memory_efficiency"] == round(100 * 66948 / (200 * 1024), 2)  # MaxRSS/mem
    assert (record["partition"], record["qos"], record["nodelist"]) == ("debug", "normal", "vm")
    assert record["end"] == "2026-12-04T14:33:51"


def test_units_and_times_as_sacct_prints_them():
    assert accounting.duration("1-02:03:04") == 93784
    assert accounting.duration("00:00.211") == 0.211  # TotalCPU: MM:SS.mmm
    assert accounting.duration("05:00") == 300
    assert accounting.duration("UNLIMITED") is None and accounting.duration("") is None
    assert accounting.size("3M") == 3 * MiB and accounting.size("1.5G") == 1536 * MiB
    assert accounting.size("0") == 0 and accounting.size("") is None
    # ReqMem before 21.08: per CPU ('c') or per node ('n'), without AllocTRES.
    assert accounting.allocated_memory("", "2000Mc", 4, 1) == 8000 * MiB
    assert accounting.allocated_memory("", "2000Mn", 4, 2) == 4000 * MiB
    assert accounting.allocated_memory("cpu=4,mem=8000M,node=1", "2000M", 4, 1) == 8000 * MiB


# -- against Slurm ------------------------------------------------------------------------


@pytest.fixture
def with_accounting():
    if not accounting_works():
        unavailable("this Slurm has no accounting (scripts/slurm.sh starts slurmdbd)")


def archived(queue, task_id: str, timeout: float = 20.0) -> Task:
    """The task once its accounting is archived (accounting lags by a second or so)."""
    deadline = time.time() + timeout
    while "accounting" not in (task := queue.get(task_id, streams=False)).data:
        assert time.time() < deadline, f"not archived: {task.status} {task.data}"
        time.sleep(0.3)
    return task


def counting_path(tmp_path) -> tuple[dict, object]:
    """PATH with sacct, squeue and scontrol that log each call, then run the real one."""
    shim = tmp_path / "bin"
    shim.mkdir()
    log = tmp_path / "calls"
    log.touch()
    for name in ("sacct", "squeue", "scontrol"):
        real = shutil.which(name)
        (shim / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexec {real} "$@"\n')
        (shim / name).chmod(0o755)
    return {"PATH": f"{shim}:{os.environ['PATH']}"}, log


# A job that holds 50 MB for 2 s after burning a second of CPU.
FIFTY_MB = (
    "import time; b = bytearray(50 * 1024 * 1024); t = time.time()\n"
    "while time.time() - t < 1: pass\n"
    "time.sleep(2)"
)


@pytest.mark.slow
def test_a_jobs_accounting_is_archived(qme, queue, tmp_path, with_accounting):
    (tmp_path / "fifty.py").write_text(FIFTY_MB)
    task = submit(qme, "--mem=100M", "--time=5", "--wrap", "python3 fifty.py", cwd=tmp_path)
    wait(queue, task["id"], "complete", timeout=30)
    done = archived(queue, task["id"])
    record = done.data["accounting"]
    assert record["jobid"] == task["data"]["jobid"]
    assert (record["state"], record["exitcode"]) == ("COMPLETED", "0:0")
    assert record["maxrss_bytes"] >= 50 * MiB, record  # jobacct_gather saw the bytearray
    # and the CPU it burnt (a second, less when other jobs share the node's CPUs)
    assert record["totalcpu_seconds"] >= 0.2, record
    assert 3 <= record["elapsed_seconds"] <= 10 and record["timelimit_seconds"] == 300
    assert (record["alloccpus"], record["allocmem_bytes"]) == (1, 100 * MiB)
    cpu = 100 * record["totalcpu_seconds"] / record["elapsed_seconds"]
    assert record["cpu_efficiency"] == pytest.approx(cpu, abs=0.01) and 10 < cpu < 60
    memory = 100 * record["maxrss_bytes"] / (100 * MiB)
    assert record["memory_efficiency"] == pytest.approx(memory, abs=0.01) and 50 <= memory < 100
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    assert (record["partition"], record["qos"], record["nodelist"]) == ("debug", "normal", host)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]{8}", record[k]) for k in ("submit", "end"))
    assert record["archived"] >= done.ended

    # The same through qme get, qme ls --json, the REST API and the task's page.
    assert json.loads(ok(qme("get", task["id"])))["data"]["accounting"] == record
    listed = json.loads(ok(qme("ls", "--json")))
    assert [t["data"]["accounting"] for t in listed if t["id"] == task["id"]] == [record]
    from qme.web.app import create_app

    app = create_app(queue, "token-for-tests")
    code, body = call(app, f"/api/tasks/{task['id']}")
    assert code == 200 and json.loads(body)["data"]["accounting"] == record
    code, page = call(app, f"/tasks/{task['id']}")
    assert code == 200 and 'id="accounting"' in page and "memory_efficiency" in page

    # Once archived, reading the task never asks Slurm again.
    counted, log = counting_path(tmp_path)
    for command in (("ls",), ("get", task["id"]), ("ls", "--json")):
        ok(qme(*command, env=counted))
    assert log.read_text() == ""
    assert json.loads(ok(qme("get", task["id"], env=counted)))["data"]["accounting"] == record


def call(app, path: str) -> tuple[int, str]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
    environ["HTTP_AUTHORIZATION"] = "Bearer token-for-tests"
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    return int(status[0].split()[0]), body.decode()


def test_many_ended_jobs_are_archived_in_one_sacct_call(qme, queue, tmp_path, with_accounting):
    jobs = [queue.run(["sbatch", "--wrap", "true"], cwd=str(tmp_path)) for _ in range(3)]
    ids = [job.data["jobid"] for job in jobs]
    deadline = time.time() + 20  # ended, as accounting knows (qme not asked meanwhile)
    while len(scheduler.sacct(ids) or []) < 3 or any(
        scheduler.status_of(row["state"]) in ("pending", "running") or not row["timelimit"]
        for row in scheduler.sacct(ids, accounting.FIELDS)
    ):
        assert time.time() < deadline
        time.sleep(0.3)
    # The watcher (qme/recorder/watcher.py) may have archived some meanwhile: read
    # the store as it is, without the refresh that reading through the Queue does.
    stored = [queue.store.get(job.id, streams=False) for job in jobs]
    left = sorted(t.data["jobid"] for t in stored if "accounting" not in t.data)
    counted, log = counting_path(tmp_path)
    listed = json.loads(ok(qme("ls", "--json", env=counted)))
    assert all("jobid" in t["data"]["accounting"] for t in listed), listed
    archive = [c for c in log.read_text().splitlines() if c.startswith("sacct") and " -X" not in c]
    assert len(archive) == (1 if left else 0), log.read_text()  # all in one call, with steps
    if left:
        assert sorted(re.search(r" -j (\S+) ", archive[0]).group(1).split(",")) == left
    before = log.read_text()
    ok(qme("ls", env=counted))
    assert log.read_text() == before


def test_a_pending_job_shows_its_reason(qme, queue, tmp_path):
    held = submit(qme, "--hold", "--wrap", "echo released", cwd=tmp_path)
    jobid = held["data"]["jobid"]
    try:
        listing = ok(qme("ls"))
        assert re.search(rf"^{held['id'][6:14]}\s+pending \(JobHeldUser\)\s", listing, re.M), (
            listing
        )
        [shown] = json.loads(ok(qme("ls", "--json")))
        assert (shown["status"], shown["data"]["reason"]) == ("pending", "JobHeldUser")
        subprocess.run(["scontrol", "release", jobid], check=True)
        done = wait(queue, held["id"], "complete")
        assert "reason" not in done.data
        assert not re.search(r"\(JobHeldUser\)", ok(qme("ls")))
    finally:
        subprocess.run(["scancel", jobid], capture_output=True)


def test_a_job_asking_for_more_cpus_than_the_node_has(qme, tmp_path):
    too_many = qme("run", "sbatch", "-c", str(os.cpu_count() + 1), "--wrap", "true", cwd=tmp_path)
    if too_many.returncode != 0:  # this Slurm refuses it at once: nothing waits
        assert b"sbatch: error" in too_many.stderr
        return
    [shown] = json.loads(ok(qme("ls", "--json")))
    try:
        assert shown["status"] == "pending" and shown["data"]["reason"], shown["data"]
        assert f"pending ({shown['data']['reason']})" in ok(qme("ls"))
    finally:
        scheduler.cancel(shown["data"]["jobid"])


@pytest.mark.slow
def test_an_array_of_four(qme, queue, tmp_path, with_accounting):
    script = "echo element $SLURM_ARRAY_TASK_ID; exit $((SLURM_ARRAY_TASK_ID == 3))"
    task = submit(qme, "--array=1-4", "--wrap", script, cwd=tmp_path)
    jobid = task["data"]["jobid"]
    wait(queue, task["id"], "failed", timeout=30)  # element 3 exits 1
    done = archived(queue, task["id"])
    elements = done.data["tasks"]
    assert sorted(elements) == ["1", "2", "3", "4"]
    for index, element in elements.items():
        expected = "FAILED" if index == "3" else "COMPLETED"
        assert element["state"] == expected and element["exitcode"] == f"{int(index == '3')}:0"
        assert element["outputfile"] == str(tmp_path / f"slurm-{jobid}_{index}.out")
        assert Path(element["outputfile"]).read_text() == f"element {index}\n"
    records = done.data["accounting"]["elements"]
    assert sorted(records) == ["1", "2", "3", "4"]
    assert {r["jobid"] for r in records.values()} == {f"{jobid}_{i}" for i in range(1, 5)}
    assert records["3"]["state"] == "FAILED" and records["2"]["alloccpus"] == 1
    assert done.returncode == 1


def test_sbatch_wait_is_recorded_with_the_jobs_exit_code(qme, queue, tmp_path, with_accounting):
    ran = qme("run", "sbatch", "--wait", "--wrap", "echo waited; exit 3", cwd=tmp_path)
    assert ran.returncode == 3 and ran.stdout.startswith(b"Submitted batch job ")
    task = queue.get()
    assert (task.status, task.returncode, task.data["wait"]) == ("failed", 3, True)
    sbatch_ended = task.ended
    done = archived(queue, task.id)
    assert (done.status, done.returncode, done.ended) == ("failed", 3, sbatch_ended)
    assert done.data["accounting"]["exitcode"] == "3:0"
    assert done.run_action("output") == "waited\n"

    # sbatch --wait says 1 for a job a signal killed; the task says what the job got.
    killed = qme("run", "sbatch", "-W", "--wrap", "kill -9 $$", cwd=tmp_path)
    assert killed.returncode == 1
    done = archived(queue, queue.get().id)
    assert (done.status, done.returncode, done.signal) == ("failed", 137, 9)
    assert done.data["accounting"]["exitcode"] == "0:9"


def test_accounting_that_never_comes_is_given_up(queue, tmp_path):
    """A job accounting does not know an hour after its end (purged, or accounting
    down all along) is archived as unavailable, and never asked about again."""
    now = time.time()
    task = Task.begin("sbatch job.sh", ["sbatch", "job.sh"], executor="slurm", started=now - 7300)
    task.status, task.ended, task.returncode = "complete", now - 7200, 0
    task.data["jobid"] = NEVER
    slurm_executor = queue.executors.get("slurm")
    assert slurm_executor.archive([task]) == [task]
    assert task.data["accounting"]["unavailable"] == (
        f"accounting (sacct) has no record of job {NEVER}"
    )
    assert slurm_executor.archive([task]) == []  # archived: not asked again

    recent = Task.begin("sbatch job.sh", ["sbatch", "job.sh"], executor="slurm")
    recent.status, recent.ended, recent.data["jobid"] = "complete", time.time(), NEVER
    assert slurm_executor.archive([recent]) == [recent]  # tried, and tried again later
    assert "accounting" not in recent.data and recent.data["checked"] >= now
