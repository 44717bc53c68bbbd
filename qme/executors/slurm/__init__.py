"""The Slurm executor: `qme run sbatch …` submits as usual and records the job.

The recorded command is sbatch itself: its exit 0 means "submitted". The job's
fate comes later: reading the task (qme ls, qme get, the dashboard) refreshes its
status from Slurm, pending → running → complete / failed / cancelled / timeout,
at most every `refresh_seconds` and with one query for all the jobs read at once.
Until the job ends, returncode and ended are sbatch's; then they are the job's.
While it waits, data["reason"] says why (squeue's %r). Once it has ended, its
accounting is archived into the task (`archive()`, data["accounting"]) so that it
outlives sacct's purge.
"""

from __future__ import annotations

import codecs
import os
import time

from qme import console
from qme.errors import QmeError
from qme.executors.base import Executor, action
from qme.executors.slurm import accounting, sbatch, scheduler
from qme.task import LOST, PENDING, RUNNING, Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_SACCT_FORMAT = "jobid,jobname,partition,alloccpus,elapsed,state,exitcode,nodelist"
DEFAULT_REFRESH_SECONDS = "5"
SETTLE = 30.0  # at most this long after a job's end, wait for its exit codes
# How long after a job's end accounting is asked for its record before qme gives up
# (accounting disabled, slurmdbd down, a job sacct has already purged).
ARCHIVE_PATIENCE = 3600.0
ACTIVE = (PENDING, RUNNING)
# Worst first: an array is failed if one element failed, then timeout, cancelled…
ARRAY_PRECEDENCE = ("running", "pending", "failed", "timeout", "cancelled", "complete")


class NoJob(QmeError):
    """The task has no Slurm job: sbatch failed, or never printed a job id."""


class UnknownJob(QmeError):
    def __init__(self, jobid: str):
        super().__init__(
            f"Slurm does not know job {jobid} (not in accounting, nor in the controller, "
            "which forgets ended jobs after MinJobAge)"
        )


class NotWritten(QmeError):
    """The job has not written the file (yet)."""


class SlurmExecutor(Executor):
    """`sbatch` submissions: records the job, follows its state, and offers actions."""

    name = "slurm"
    match = r"^(?:\S*/)?sbatch(?:\s|$)"
    settings = {  # noqa: RUF012
        "sacct_format": f"the sacct fields the status action shows ({DEFAULT_SACCT_FORMAT})",
        "refresh_seconds": "how long a job's known state is reused before Slurm is asked "
        f"again ({DEFAULT_REFRESH_SECONDS})",
    }
    reads_output = True  # the job id is in what sbatch prints

    # -- recording -----------------------------------------------------------------------

    def finish(self, task: Task) -> None:
        printed = (task.output or b"").decode("utf-8", errors="replace")
        submitted = _submission(task)
        # sbatch --wait exits with the job's code: its job id counts whatever that is.
        found = sbatch.job_id(printed) if task.returncode == 0 or "wait" in submitted else None
        if not found:
            return  # not submitted: a failed (or plain) command, as the shell records it
        jobid, cluster = found
        task.data.update({"jobid": jobid, **submitted})
        if cluster:
            task.data["cluster"] = cluster
        _resolve_files(task)
        if "wait" not in submitted:  # with --wait the job has ended: archive() tells how
            task.status = PENDING

    # -- status ----------------------------------------------------------------------------

    def refresh(self, tasks: list[Task]) -> list[Task]:
        following = [t for t in tasks if t.data.get("jobid") and t.status in ACTIVE]
        changed = super().refresh([t for t in tasks if t not in following])
        now = time.time()
        due = [t for t in following if now - t.data.get("checked", 0) >= self.refresh_seconds]
        if due:
            changed += self._update(due, accounting_first=True)
        # Jobs that ended just now, or earlier and are not archived yet (accounting
        # lags): archived in one sacct call, at most every refresh_seconds per task.
        unarchived = [
            t
            for t in tasks
            if _unarchived(t)
            and (t in due or now - t.data.get("checked", 0) >= self.refresh_seconds)
        ]
        changed += [t for t in self.archive(unarchived) if t not in changed]
        return changed

    def archive(self, tasks: list[Task]) -> list[Task]:
        """Keep each ended job's accounting in its task, so that it outlives sacct's
        purge: `data["accounting"]`, the fields in docs/executors.md (for an array,
        one record per element under "elements"). One sacct call for all of them.

        Only tasks whose job has ended and that are not archived yet are asked
        about; an archived task is never asked about again. A job accounting does
        not list (yet: it lags by a second or so) is tried again on the next call,
        until ARCHIVE_PATIENCE after its end: then the record says it is
        unavailable. The job's final state comes with the record: status,
        returncode and ended (the job's own exit code for `sbatch --wait`).
        Returns the tasks that changed, which the caller saves. Anything that
        follows jobs (the dashboard, a watcher) may call it; `refresh()` does."""
        todo = [t for t in tasks if _unarchived(t)]
        if not todo:
            return []
        try:
            rows = scheduler.sacct(
                sorted({t.data["jobid"] for t in todo}), accounting.FIELDS, steps=True
            )
        except scheduler.SlurmError as exc:
            console.debug(f"cannot archive Slurm jobs: {exc}")
            rows = None
        found = accounting.records(rows or [])
        now = time.time()
        for task in todo:
            _archive_one(task, found, rows is None, now)
        return todo

    @property
    def refresh_seconds(self) -> float:
        return self.seconds_setting("refresh_seconds", DEFAULT_REFRESH_SECONDS)

    def _update(self, tasks: list[Task], accounting_first: bool, strict: bool = False):
        """Ask Slurm about these tasks' jobs (one query) and apply what it says;
        strict: a job Slurm does not know is an error (after marking it lost)."""
        rows, _ = scheduler.query([t.data["jobid"] for t in tasks], accounting_first)
        now = time.time()
        for task in tasks:
            _apply(task, rows.get(task.data["jobid"]), now)
            if strict and task.data["jobid"] not in rows:
                raise UnknownJob(task.data["jobid"])
        return tasks

    # -- actions -----------------------------------------------------------------------------

    @action("state, elapsed time, exit code, node and partition (sacct, else the controller)")
    def status(self, task: Task) -> dict:
        jobid = _jobid(task)
        wanted = self.setting("sacct_format", DEFAULT_SACCT_FORMAT) or DEFAULT_SACCT_FORMAT
        names = [name.split("%")[0].strip().lower() for name in wanted.split(",") if name.strip()]
        try:
            rows = scheduler.sacct([jobid], ",".join([*names, scheduler.FIELDS]))
        except scheduler.SlurmError:  # no sacct here: the controller may still answer
            rows = None
        source = "sacct"
        if not rows:
            found, source = scheduler.query([jobid], accounting_first=False)
            rows = found.get(jobid)
        for row in rows or []:
            row.setdefault("source", source)
        _apply(task, rows, time.time())
        if not rows:
            raise UnknownJob(jobid)
        shown = [{k: row[k] for k in [*names, "source"] if k in row} for row in rows]
        if "array" not in task.data:
            return {**shown[0], "status": task.status}
        return {"jobid": jobid, "status": task.status, "source": source, "array": shown}

    @action("the job's output file (one element's with index=N for an array)")
    def output(self, task: Task, index: str | None = None) -> str | dict:
        return self._read(task, "outputfile", index)

    @action("the job's error file (the output file unless --error was given)")
    def error(self, task: Task, index: str | None = None) -> str | dict:
        return self._read(task, "errorfile", index)

    @action("cancel the job (scancel) and wait until Slurm says it is cancelled")
    def cancel(self, task: Task, wait: float = 5.0) -> dict:
        jobid = _jobid(task)
        self._update([task], accounting_first=False, strict=True)
        if task.status not in ACTIVE:
            raise QmeError(
                f"job {jobid} has already ended ({task.data['job'].get('state')}): "
                "nothing to cancel"
            )
        scheduler.cancel(jobid)
        deadline = time.time() + float(wait)
        while task.status in ACTIVE and time.time() < deadline:
            time.sleep(0.2)
            self._update([task], accounting_first=False)
        return {"jobid": jobid, "state": task.data["job"].get("state"), "status": task.status}

    @action("print the output file as the job writes it, until the job ends", streams=True)
    def follow(
        self,
        task: Task,
        index: str | None = None,
        write: Callable[[str], object] | None = None,
        interval: float = 0.5,
        check_every: float = 2.0,
    ) -> dict | str:
        if write is None:  # nothing to stream to: what there is now
            return self._read(task, "outputfile", index)
        jobid = _jobid(task)
        paths = self._paths(task, "outputfile", index)
        if len(paths) != 1:
            raise QmeError(f"job {jobid} is an array: follow one element (index=N)")
        path = next(iter(paths.values()))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        offset, checked = 0, 0.0
        while True:
            ended = False
            if time.time() - checked >= float(check_every):  # the file is cheaper to poll
                self._update([task], accounting_first=False, strict=True)
                ended, checked = task.status not in ACTIVE, time.time()
            offset += _copy_new(path, offset, decoder, write)
            if ended:
                write(decoder.decode(b"", final=True))
                return {"jobid": jobid, "path": path, "bytes": offset, "status": task.status}
            time.sleep(float(interval))

    # -- files -------------------------------------------------------------------------------

    def _paths(self, task: Task, key: str, index: str | None) -> dict[str, str]:
        """Element (or '') -> file path, for one job or an array's known elements."""
        _jobid(task)
        if "array" not in task.data:
            return {"": task.data[key]}
        elements = task.data.get("tasks") or {}
        if index is not None:
            elements = {str(index): elements.get(str(index), {})}
        paths = {
            element: _element_file(task, key, element, known)
            for element, known in elements.items()
            if element.isdigit()
        }
        if not paths:
            raise NotWritten(f"no element of job {task.data['jobid']} has started yet")
        return paths

    def _read(self, task: Task, key: str, index: str | None) -> str | dict:
        if task.status in ACTIVE:
            self.refresh([task])
        paths = self._paths(task, key, index)
        limit = self.config.max_output
        if list(paths) == [""]:
            path = paths[""]
            text = _read_file(path, limit)
            if text is None:
                state = task.data.get("job", {}).get("state", task.status).lower()
                raise NotWritten(f"{path} is not written yet (job {task.data['jobid']} is {state})")
            return text
        return {path: _read_file(path, limit) for path in paths.values()}


def _jobid(task: Task) -> str:
    jobid = task.data.get("jobid")
    if jobid:
        return jobid
    if task.status in ACTIVE:
        raise NoJob(f"task {task.short_id} has not submitted its job yet (sbatch is running)")
    error = task.error
    if error is None and task.queue is not None:
        error = task.queue.read(task.id, "error")
    said = scheduler.first_line((error or b"").decode("utf-8", errors="replace"))
    why = f": {said}" if said else ""
    raise NoJob(f"task {task.short_id} has no Slurm job (sbatch exited {task.returncode}{why})")


def _submission(task: Task) -> dict:
    argv = task.argv
    if len(argv) == 3 and argv[1] == "-c":  # a shell line: qme run "sbatch job.sh"
        import shlex

        try:
            argv = shlex.split(argv[2])
        except ValueError:
            argv = argv[2].split()
    return sbatch.submission(argv, task.cwd)


def _resolve_files(task: Task, node: str | None = None) -> None:
    """outputfile and errorfile: the patterns with what is known filled in (for an
    array, the element's index and id stay as patterns until it runs)."""
    data = task.data
    if "array" in data:
        fields = {"A": data["jobid"], "x": data["jobname"], "u": task.user}
    else:
        fields = sbatch.pattern_fields(data["jobid"], data["jobname"], task.user)
        if node:
            fields["N"] = node
    data["outputfile"] = sbatch.expand(data["output_pattern"], fields)
    data["errorfile"] = sbatch.expand(data["error_pattern"], fields)


def _element_file(task: Task, key: str, element: str, known: dict) -> str:
    """An array element's output (key 'outputfile') or error file."""
    data = task.data
    pattern = data["output_pattern" if key == "outputfile" else "error_pattern"]
    fields = sbatch.pattern_fields(
        data["jobid"], data["jobname"], task.user, element, known.get("jobid")
    )
    node = sbatch.first_node(known.get("nodelist"))
    if node:
        fields["N"] = node
    return sbatch.expand(pattern, fields)


def _set_reason(task: Task, rows: list[dict]) -> None:
    """data["reason"]: why a pending job waits (the first pending row's reason)."""
    reasons = [row.get("reason") for row in rows if scheduler.status_of(row["state"]) == PENDING]
    reason = next((r for r in reasons if r and r != "None"), None)
    if task.status == PENDING and reason:
        task.data["reason"] = reason
    else:
        task.data.pop("reason", None)


def _unarchived(task: Task) -> bool:
    """An ended job not archived yet (a lost one: Slurm knew nothing of it any more)."""
    return (
        bool(task.data.get("jobid"))
        and task.status not in (*ACTIVE, LOST)
        and "accounting" not in task.data
    )


def _archive_one(task: Task, found: dict[str, dict], unavailable: bool, now: float) -> None:
    """Archive one task's job from accounting's records (see SlurmExecutor.archive)."""
    data = task.data
    jobid = data["jobid"]
    data["checked"] = now
    if "array" in data:
        records = {k: r for k, r in found.items() if k.partition("_")[0] == jobid}
        expected = sbatch.array_indices(data["array"]) or 0
    else:
        records = {jobid: found[jobid]} if jobid in found else {}
        expected = 1
    rows = [{**record, "source": "sacct"} for record in records.values()]
    end = max((scheduler.timestamp(row.get("end")) or now for row in rows), default=now)
    settling = _exit_code_pending(rows) and now - end < SETTLE
    done = (
        len(rows) >= expected
        and all(scheduler.status_of(row["state"]) not in ACTIVE for row in rows)
        # A row without its time limit is one accounting has not finished writing
        # (a job with none says UNLIMITED or Partition_Limit): ask again next time.
        and all(row.get("timelimit") for row in rows)
        and not settling
    )
    if done:
        ended = task.ended
        _apply(task, rows, now)
        if data.get("wait") and ended:  # the task ended when sbatch returned
            task.ended = ended
        if "array" in data:
            elements = {k.partition("_")[2]: r for k, r in records.items()}
            data["accounting"] = {"archived": now, "elements": elements}
        else:
            data["accounting"] = {**records[jobid], "archived": now}
    elif now - (task.ended or task.started) > ARCHIVE_PATIENCE:
        why = (
            "accounting (sacct) does not answer here"
            if unavailable
            else (f"accounting (sacct) has no record of job {jobid}")
        )
        data["accounting"] = {"archived": now, "unavailable": why}


def _exit_code_pending(rows: list[dict]) -> bool:
    """Accounting can list an element as FAILED a moment before its exit code is
    in (still 0:0): a FAILED row always has a non-zero one once it is."""
    return any(
        row.get("state", "").split()[0] == "FAILED"
        and scheduler.exit_status(row.get("exitcode"))[0] in (None, 0)
        for row in rows
    )


def _apply(task: Task, rows: list[dict] | None, now: float) -> None:
    """Set the task's status (and, once the job has ended, its exit and end) from
    Slurm's rows for its job; a job Slurm does not know makes the task lost."""
    data = task.data
    data["checked"] = now
    if not rows:
        data.pop("reason", None)
        if task.status in ACTIVE:
            task.status = LOST
            data["job"] = {**data.get("job", {}), "state": "UNKNOWN"}
        return
    keep = ("state", "exitcode", "elapsed", "nodelist", "partition", "reason", "start", "end")
    if "array" in data:
        data["tasks"] = {
            row["jobid"].partition("_")[2]: {
                k: row[k] for k in ("jobidraw", "state", "exitcode", "nodelist") if row.get(k)
            }
            for row in rows
        }
        for element, known in data["tasks"].items():
            known["jobid"] = known.pop("jobidraw", None)
            if element.isdigit():  # has run, or runs: its files have names
                known["outputfile"] = _element_file(task, "outputfile", element, known)
                error = _element_file(task, "errorfile", element, known)
                if error != known["outputfile"]:
                    known["errorfile"] = error
        statuses = [scheduler.status_of(row["state"]) for row in rows]
        # Accounting learns of each element as it starts: the ones it does not list
        # yet have not run.
        expected = sbatch.array_indices(data["array"]) or 0
        if sum(_elements(row["jobid"]) for row in rows) < expected:
            statuses.append(PENDING)
        status = min(statuses, key=ARRAY_PRECEDENCE.index)
        codes = [scheduler.exit_status(row.get("exitcode"))[0] for row in rows]
        returncode = max((c for c in codes if c is not None), default=None)
        signal = None
        job = {"state": status.upper(), "source": rows[0].get("source")}
        ends = [scheduler.timestamp(row.get("end")) for row in rows]
        end = max((e for e in ends if e), default=None)
    else:
        row = rows[0]
        status = scheduler.status_of(row["state"])
        returncode, signal = scheduler.exit_status(row.get("exitcode"))
        job = {k: row[k] for k in keep if row.get(k)}
        job["source"] = row.get("source")
        end = scheduler.timestamp(row.get("end"))
        if "%N" in data.get("output_pattern", "") + data.get("error_pattern", ""):
            _resolve_files(task, sbatch.first_node(row.get("nodelist")))
    data["job"] = job
    if status not in ACTIVE and end and now - end < SETTLE and _exit_code_pending(rows):
        status = task.status if task.status in ACTIVE else RUNNING  # ask again next read
    task.status = status
    _set_reason(task, rows)
    if status in ACTIVE:
        task.returncode = task.signal = task.ended = None
    else:
        task.returncode, task.signal = returncode, signal
        task.ended = max(end or now, task.started)


def _elements(jobid: str) -> int:
    """How many array elements a row stands for: '12_3' one, '12_[4-9]' six."""
    suffix = jobid.partition("_")[2]
    return sbatch.array_indices(suffix.strip("[]")) or 1 if suffix.startswith("[") else 1


def _read_file(path: str, limit: int) -> str | None:
    """A file's text; its last `limit` bytes when bigger (0: no limit); None if absent."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            cut = size - limit if limit and size > limit else 0
            handle.seek(cut)
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise QmeError(f"cannot read {path}: {exc.strerror}") from None
    text = data.decode("utf-8", errors="replace")
    return f"[qme: the first {cut} bytes of {path} are not shown]\n{text}" if cut else text


def _copy_new(path: str, offset: int, decoder, write: Callable[[str], object]) -> int:
    """Write what the file has past offset; return how many bytes that was."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return 0
    if data:
        write(decoder.decode(data))
    return len(data)
