"""A finished job's accounting, as kept in its task so that it outlives sacct's purge.

Pure functions over sacct's rows (`sacct -P` without -X: the job's own row and its
steps' rows, 'N.batch', 'N.0', 'N.extern'): no Slurm needed. The record keeps
sacct's own text (elapsed, totalcpu, maxrss, timelimit, reqmem) next to numbers
(…_seconds, …_bytes), and the efficiencies as `seff` computes them:

- CPU efficiency = TotalCPU / (Elapsed × AllocCPUS), in percent;
- memory efficiency = MaxRSS (the largest of the steps') / the memory allocated to
  the job (AllocTRES' mem=, the whole job's; else ReqMem, per CPU ('c') times the
  CPUs or per node ('n') times the nodes, as older sacct prints it), in percent.
"""

from __future__ import annotations

import re

# What the archive asks sacct (one call for many jobs, steps included).
FIELDS = (
    "jobid,jobidraw,state,exitcode,elapsed,elapsedraw,timelimit,alloccpus,alloctres,reqmem,"
    "totalcpu,maxrss,nnodes,nodelist,partition,qos,submit,start,end"
)
# Kept from the job's own row as sacct prints them.
KEPT = (
    "jobid",
    "jobidraw",
    "state",
    "exitcode",
    "elapsed",
    "timelimit",
    "reqmem",
    "totalcpu",
    "nodelist",
    "partition",
    "qos",
    "submit",
    "start",
    "end",
)
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def records(rows: list[dict]) -> dict[str, dict]:
    """One record per job (or array element: '12_3') from sacct's rows, its steps'
    MaxRSS folded in; keyed by sacct's job id."""
    jobs: dict[str, dict] = {}
    steps: dict[str, list[dict]] = {}
    for row in rows:
        job, dot, _ = row.get("jobid", "").partition(".")
        if dot:
            steps.setdefault(job, []).append(row)
        elif job:
            jobs[job] = row
    return {job: record(row, steps.get(job, [])) for job, row in jobs.items()}


def record(job: dict, steps: list[dict]) -> dict:
    """A job's record: its own row (state, times, allocation) and its steps' peak memory."""
    found = {key: job[key] for key in KEPT if job.get(key) not in (None, "")}
    elapsed = _int(job.get("elapsedraw"))
    if elapsed is None:
        elapsed = duration(job.get("elapsed"))
    cpus = _int(job.get("alloccpus"))
    nodes = _int(job.get("nnodes"))
    totalcpu = duration(job.get("totalcpu"))
    peaks = [size(step.get("maxrss")) for step in steps]
    maxrss = max((peak for peak in peaks if peak is not None), default=None)
    memory = allocated_memory(job.get("alloctres"), job.get("reqmem"), cpus, nodes)
    rss_text = [step["maxrss"] for step in steps if step.get("maxrss")]
    found.update(
        {
            "elapsed_seconds": elapsed,
            "timelimit_seconds": duration(job.get("timelimit")),
            "alloccpus": cpus,
            "nnodes": nodes,
            "allocmem_bytes": memory,
            "totalcpu_seconds": totalcpu,
            "maxrss": max(rss_text, key=lambda t: size(t) or 0) if rss_text else None,
            "maxrss_bytes": maxrss,
            "cpu_efficiency": percent(totalcpu, elapsed * cpus if elapsed and cpus else None),
            "memory_efficiency": percent(maxrss, memory),
        }
    )
    return found


def percent(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 2)


def duration(text: str | None) -> float | None:
    """Seconds in sacct's '[D-][HH:]MM:SS[.mmm]' (elapsed, totalcpu, timelimit);
    None for UNLIMITED, Partition_Limit, empty."""
    found = re.fullmatch(r"\s*(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)\s*", text or "")
    if not found:
        # A time limit of whole minutes may also print as plain minutes.
        return float(text) * 60 if text and text.strip().isdigit() else None
    days, hours, minutes, seconds = found.groups()
    total = int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60
    return round(total + float(seconds), 3)


def size(text: str | None) -> int | None:
    """Bytes in sacct's '66948K', '3M', '1.50G' (powers of 1024; no suffix: bytes)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)([KMGTP]?)[nc]?\s*", text or "")
    if not found:
        return None
    return int(float(found.group(1)) * UNITS[found.group(2)])


def allocated_memory(
    tres: str | None, reqmem: str | None, cpus: int | None, nodes: int | None
) -> int | None:
    """Bytes of memory the job was given: AllocTRES' mem=, else ReqMem (per CPU or
    per node when it says so with a trailing 'c' or 'n', as sacct before 21.08 did)."""
    found = re.search(r"(?:^|,)mem=([^,]+)", tres or "")
    if found:
        return size(found.group(1))
    amount = size(reqmem)
    if amount is None:
        return None
    if reqmem.strip().endswith("c"):
        return amount * (cpus or 1)
    return amount * (nodes or 1)


def _int(text: str | None) -> int | None:
    try:
        return int(text or "")
    except ValueError:
        return None
