"""Asking Slurm about jobs, one command for many jobs where Slurm allows it.

- accounting: `sacct` (slurmdbd) knows every job, a second or so behind;
- the controller: `squeue -t all` knows live jobs and those that ended less than
  MinJobAge ago, `scontrol show job` the same with exit codes;
- the job-completion log: `sacct -c` (JobCompType=jobcomp/filetxt), ended jobs.

A row is a dict of lowercase sacct field names (jobid, jobidraw, state, exitcode,
elapsed, nodelist, partition, …); an array gives one row per element (jobid
'12_3') or per group of pending elements ('12_[4-9]').
"""

from __future__ import annotations

import re
import subprocess
import time

from qme import console
from qme.errors import QmeError
from qme.task import CANCELLED, COMPLETE, FAILED, PENDING, RUNNING, TIMEOUT

TIMEOUT_SECONDS = 30
# What refreshing a task needs; jobname last: it is the field most likely to hold a '|'.
FIELDS = "jobid,jobidraw,state,exitcode,elapsed,nodelist,partition,start,end,reason,jobname"
STATUS_OF_STATE = {
    "PENDING": PENDING,
    "REQUEUED": PENDING,
    "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING,
    "RESV_DEL_HOLD": PENDING,
    "COMPLETED": COMPLETE,
    "CANCELLED": CANCELLED,
    "TIMEOUT": TIMEOUT,
    "DEADLINE": TIMEOUT,
    "FAILED": FAILED,
    "NODE_FAIL": FAILED,
    "BOOT_FAIL": FAILED,
    "OUT_OF_MEMORY": FAILED,
    "PREEMPTED": FAILED,
    "SPECIAL_EXIT": FAILED,
}  # anything else (RUNNING, COMPLETING, CONFIGURING, SUSPENDED, …) is running
# squeue's format letters for the same fields, and scontrol's names.
SQUEUE_FORMAT = {
    "jobidraw": "%A",
    "jobid": "%i",
    "state": "%T",
    "elapsed": "%M",
    "nodelist": "%N",
    "partition": "%P",
    "reason": "%r",
    "alloccpus": "%C",
    "jobname": "%j",
}
SCONTROL_NAMES = {
    "JobId": "jobidraw",
    "JobName": "jobname",
    "JobState": "state",
    "ExitCode": "exitcode",
    "RunTime": "elapsed",
    "NodeList": "nodelist",
    "Partition": "partition",
    "Reason": "reason",
    "NumCPUs": "alloccpus",
    "SubmitTime": "submit",
    "StartTime": "start",
    "EndTime": "end",
    "WorkDir": "workdir",
    "StdOut": "stdout",
    "StdErr": "stderr",
    "UserId": "user",
}
UNKNOWN_JOB = "Invalid job id specified"


class SlurmError(QmeError):
    """A Slurm command is missing or failed."""


def command(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_SECONDS
        )
    except FileNotFoundError:
        raise SlurmError(f"Slurm's {argv[0]} is not on PATH (is Slurm installed here?)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} did not answer within {TIMEOUT_SECONDS}s") from None


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def status_of(state: str) -> str:
    """qme's status for a Slurm state ('CANCELLED by 0' and 'COMPLETING+' included)."""
    word = state.split(" ")[0].rstrip("+") if state else ""
    return STATUS_OF_STATE.get(word, RUNNING)


def sacct(
    ids: list[str], fields: str = FIELDS, completion: bool = False, steps: bool = False
) -> list[dict] | None:
    """sacct's rows for these jobs (one per job, or per array element); None when
    accounting is not available here (disabled, or slurmdbd does not answer).
    completion: read the job-completion log instead (sacct -c); steps: the jobs'
    steps too ('12.batch', '12.0'), whose rows hold MaxRSS and TotalCPU."""
    names = [name.split("%")[0].strip().lower() for name in fields.split(",") if name.strip()]
    argv = ["sacct", "-n", "-P", "-j", ",".join(ids), "-o", ",".join(names)]
    if completion:
        argv.append("-c")
    elif not steps:
        argv.append("-X")
    result = command(argv)
    if result.returncode != 0:
        said = first_line(result.stderr)
        if "Invalid field" in said:  # a mistake in the sacct_format setting
            raise QmeError(f"{said} (check the slurm executor's sacct_format setting)")
        console.debug(f"sacct{' -c' if completion else ''}: {said}")
        return None
    rows = []
    now = time.time()
    for line in result.stdout.splitlines():
        if line.strip():
            values = line.split("|", len(names) - 1)
            row = dict(zip(names, values + [""] * (len(names) - len(values))))
            # Accounting may still say PENDING for a job that has started (it learns
            # of the start late); a start time in the past tells.
            started = timestamp(row.get("start"))
            if row.get("state") == "PENDING" and started and started <= now:
                row["state"] = "RUNNING"
            rows.append(row)
    return rows


def squeue(ids: list[str]) -> list[dict]:
    """The controller's rows for these jobs (live, or ended less than MinJobAge ago);
    no exit codes (see scontrol)."""
    names = list(SQUEUE_FORMAT)
    separator = "\x1f"
    layout = separator.join(SQUEUE_FORMAT.values())
    result = command(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", layout])
    if result.returncode != 0:
        if UNKNOWN_JOB in result.stderr:
            return []
        raise SlurmError(f"squeue failed: {first_line(result.stderr)}")
    rows = []
    for line in result.stdout.splitlines():
        if line.strip():
            rows.append(dict(zip(names, line.split(separator, len(names) - 1))))
    return rows


def scontrol(jobid: str) -> list[dict]:
    """`scontrol show job`'s rows for one job (every element of an array)."""
    result = command(["scontrol", "show", "job", "--oneliner", jobid])
    if result.returncode != 0:
        if UNKNOWN_JOB in result.stderr:
            return []
        raise SlurmError(f"scontrol failed: {first_line(result.stderr)}")
    rows = []
    for line in result.stdout.splitlines():
        pairs = dict(re.findall(r"(\S+?)=(.*?)(?=\s+\S+?=|\s*$)", line))
        if "JobId" not in pairs:
            continue
        row = {ours: pairs[theirs] for theirs, ours in SCONTROL_NAMES.items() if theirs in pairs}
        array, index = pairs.get("ArrayJobId"), pairs.get("ArrayTaskId")
        row["jobid"] = f"{array}_{index}" if array and index else row["jobidraw"]
        rows.append(row)
    return rows


def controller(ids: list[str]) -> list[dict]:
    """squeue's rows for these jobs, with exit codes and times from scontrol for
    the jobs that have ended (one scontrol call per such job)."""
    rows = squeue(ids)
    ended = {job_of(row) for row in rows if status_of(row["state"]) not in (PENDING, RUNNING)}
    details = {row["jobidraw"]: row for job in sorted(ended) for row in scontrol(job)}
    for row in rows:
        extra = details.get(row["jobidraw"])
        if extra:
            row.update({k: extra[k] for k in ("exitcode", "start", "end") if k in extra})
    return rows


def job_of(row: dict) -> str:
    """The job id a row belongs to: '12' for '12', '12_3', '12_[4-9]' or '12+0'."""
    return re.split(r"[_+.]", row["jobid"], maxsplit=1)[0]


def query(ids: list[str], accounting_first: bool = True) -> tuple[dict[str, list[dict]], str]:
    """Rows by job id, from the first source that knows each job, and the name of
    the source that answered first. Accounting lags the controller by a second
    or so: accounting_first=False asks the controller first (cancel, follow). The
    controller also gives the reason of the jobs accounting says are pending (in the
    same squeue call as the jobs accounting does not list)."""
    sources = [("sacct", sacct), ("squeue", controller), ("sacct -c", _completion)]
    if not accounting_first:
        sources[:2] = sources[1::-1]
    found: dict[str, list[dict]] = {}
    used = ""
    errors: list[SlurmError] = []
    for name, source in sources:
        missing = [job for job in ids if job not in found]
        # Accounting keeps the reason a job had when it last heard of it ('None' for
        # a held job): the controller, asked anyway, tells a waiting job's today.
        waiting = [job for job, rows in found.items() if name == "squeue" and _waits(rows)]
        if not missing and not waiting:
            break
        try:
            rows = source(missing + waiting)
        except SlurmError as exc:  # one missing or broken command: ask the next
            errors.append(exc)
            continue
        for row in rows or []:
            job = job_of(row)
            if job in missing:
                found.setdefault(job, []).append({**row, "source": name})
                used = used or name
            elif job in waiting and status_of(row["state"]) == PENDING and row.get("reason"):
                for known in found[job]:
                    if status_of(known["state"]) == PENDING:
                        known["reason"] = row["reason"]
    if errors and not found:
        raise errors[0]
    return found, used


def _waits(rows: list[dict]) -> bool:
    return any(status_of(row["state"]) == PENDING for row in rows)


def _completion(ids: list[str]) -> list[dict] | None:
    return sacct(ids, completion=True)


def exit_status(exitcode: str | None) -> tuple[int | None, int | None]:
    """(returncode, signal) from Slurm's 'code:signal'; 128+N for a signal, as a shell."""
    try:
        code, signal = (int(part) for part in (exitcode or "").split(":"))
    except ValueError:
        return None, None
    return (128 + signal, signal) if signal else (code, None)


def timestamp(text: str | None) -> float | None:
    """Unix time for Slurm's local 'YYYY-MM-DDTHH:MM:SS'; None for Unknown/None."""
    try:
        return time.mktime(time.strptime(text or "", "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def cancel(jobid: str) -> None:
    result = command(["scancel", jobid])
    if result.returncode != 0:
        raise SlurmError(f"scancel {jobid} failed: {first_line(result.stderr)}")
