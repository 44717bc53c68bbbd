"""The docker and podman executors: `qme run docker|podman run …`.

The two engines agree on everything qme reads (command line, `inspect` JSON,
logs), so one class serves both; each is still its own executor, so that its
tasks are listed, filtered and acted on apart (`qme ls podman`, `qme exec docker`).

The task keeps the image, the container's name and id, ports and mounts. The id
is what `run -d` prints, or the command's `--cidfile`; for an attached run,
the container of its image and command the engine created first after the task
started (`--name` names it for actions while it runs). An attached run's status
is the command's own; a detached container's follows the container, from
`inspect` when the task is read: running, then complete, failed or cancelled
with the container's exit code; if the container was removed before qme saw it
end, the engine's event log gives its exit code.
"""

from __future__ import annotations

import codecs
import datetime
import os
import re
import time

from qme.errors import QmeError
from qme.executors.base import Executor, action
from qme.executors.container import cli
from qme.executors.container.engine import TIMEOUT, Engine, EngineError, first_line
from qme.task import CANCELLED, COMPLETE, FAILED, LOST, RUNNING, Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_REFRESH_SECONDS = "2"
ENDED = frozenset({"exited", "stopped", "dead"})
# Exit 128+N is how engines report a main process killed by signal N (docker stop:
# SIGTERM, then SIGKILL): with these signals the container was stopped, not failed.
CANCEL_SIGNALS = frozenset({1, 2, 9, 15})
ENGINE_FAILED = frozenset({125, 126, 127})  # the engine's own errors: no container ran
CONTAINER_ID = re.compile(r"[0-9a-f]{12,64}")
GONE = re.compile(r"no such container|no container with", re.IGNORECASE)


class NoContainer(QmeError):
    """The task has no container to act on (none started, or it is gone)."""


class OciExecutor(Executor):
    """`ENGINE run …`: records the container and follows it; the actions talk to it."""

    # The engine's variables that say which daemon or store the command used.
    engine_env: tuple[str, ...] = ()
    settings = {  # noqa: RUF012
        "refresh_seconds": "how long a detached container's known state is reused "
        f"before the engine is asked again ({DEFAULT_REFRESH_SECONDS})",
    }
    reads_output = True  # `run -d` prints the container's id

    # -- recording -----------------------------------------------------------------------

    def prepare(self, task: Task) -> None:
        data = cli.oci_run(task.argv)
        if data is None:  # not a `run` (forced with --executor): recorded as the shell does
            return
        env = {name: os.environ[name] for name in self.engine_env if name in os.environ}
        if env:
            data["engine_env"] = env
        task.data.update(data)

    def finish(self, task: Task) -> None:
        data = task.data
        if "engine" not in data:
            return
        container = _read_cidfile(data.get("cidfile"))
        if not container and data["detach"] and task.returncode == 0:
            printed = (task.output or b"").decode("utf-8", errors="replace").split()
            container = printed[-1] if printed and CONTAINER_ID.fullmatch(printed[-1]) else None
        if not container and not data["detach"] and task.returncode not in ENGINE_FAILED:
            container = _find(task)
        if container:
            data["container"] = container
        if data["detach"]:
            if container and task.returncode == 0:
                task.status, data["state"] = RUNNING, "running"
        elif task.status == FAILED and (task.returncode or 0) - 128 in CANCEL_SIGNALS:
            task.status = CANCELLED

    # -- status ----------------------------------------------------------------------------

    def refresh(self, tasks: list[Task]) -> list[Task]:
        following = [t for t in tasks if _followed(t)]
        changed = super().refresh([t for t in tasks if t not in following])
        now = time.time()
        due = [t for t in following if now - t.data.get("checked", 0) >= self.refresh_seconds]
        groups: dict[tuple, list[Task]] = {}
        for task in due:
            groups.setdefault(Engine(task.data).key, []).append(task)
        for group in groups.values():
            self._update(group)
            changed += group
        return changed

    @property
    def refresh_seconds(self) -> float:
        return self.seconds_setting("refresh_seconds", DEFAULT_REFRESH_SECONDS)

    def _update(self, tasks: list[Task]) -> dict[str, dict]:
        """Ask the engine about these tasks' containers (one call); returns container
        -> record for those that exist. What it says is applied to detached runs
        only: an attached run's record is its recorder's to write."""
        engine = Engine(tasks[0].data)
        records = engine.inspect([_container(t) for t in tasks])
        now = time.time()
        for task in tasks:
            if not task.data.get("detach"):
                continue
            task.data["checked"] = now
            record = records.get(_container(task))
            if record is not None:
                _apply(task, record["State"], now)
            elif task.data.get("state") != "removed":
                code = engine.exit_code_from_events(_container(task), task.started - 1)
                task.data["state"] = "removed"
                if _followed(task):
                    _end(task, code, None, now)
        return records

    def _record(self, task: Task) -> dict:
        """The container's `inspect` record, its state applied to the task."""
        container = _container(task)
        record = self._update([task]).get(container)
        if record is None:
            raise NoContainer(f"container {container[:12]} no longer exists ({_gone_why(task)})")
        return record

    # -- actions -----------------------------------------------------------------------------

    @action("the container's state, exit code, times, image and ports")
    def status(self, task: Task) -> dict:
        record = self._record(task)
        state = record["State"]
        return {
            "container": record["Id"][:12],
            "name": record.get("Name", "").lstrip("/"),
            "image": record.get("ImageName") or record.get("Config", {}).get("Image"),
            "state": state.get("Status"),
            "exitcode": state.get("ExitCode"),
            "started": state.get("StartedAt"),
            "finished": None if state.get("Status") == "running" else state.get("FinishedAt"),
            "ports": task.data.get("ports", []),
            "status": task.status,
        }

    @action("everything the engine knows about the container (inspect)")
    def inspect(self, task: Task) -> dict:
        return self._record(task)

    @action("what the container printed (tail=N: its last N lines)")
    def logs(self, task: Task, tail: str | None = None) -> str:
        chunks: list[str] = []
        self._logs(task, tail, follow=False, write=chunks.append)
        text = "".join(chunks)
        limit = self.config.max_output
        if limit and len(text) > limit:
            cut = len(text) - limit
            return f"[qme: the first {cut} characters are not shown]\n{text[cut:]}"
        return text

    @action("print what the container prints, until it stops", streams=True)
    def follow(
        self, task: Task, tail: str | None = None, write: Callable[[str], object] | None = None
    ) -> dict | str:
        if write is None:  # nothing to stream to: what there is now
            return self.logs(task, tail)
        self._record(task)
        written = self._logs(task, tail, follow=True, write=write)
        record = self._update([task]).get(_container(task))
        state = record["State"]["Status"] if record else "removed"
        return {"container": _container(task)[:12], "bytes": written, "state": state}

    @action("stop the container (time=N: seconds before SIGKILL)")
    def stop(self, task: Task, time: str | None = None) -> dict:
        container = _container(task)
        state = self._record(task)["State"]
        if state.get("Status") in ENDED:
            raise QmeError(f"container {container[:12]} is not running ({_said(state)})")
        wait = ["--time", str(time)] if time is not None else []
        _call(task, "stop", *wait, container, timeout=60 + float(time or 10))
        return self._after(task)

    @action("stop the container (the dashboard's Cancel button)")
    def cancel(self, task: Task) -> dict:
        return self.stop(task)

    @action("remove the container, once it has stopped")
    def rm(self, task: Task) -> dict:
        container = _container(task)
        state = self._record(task)["State"]
        if state.get("Status") not in ENDED:
            raise QmeError(
                f"container {container[:12]} is {state.get('Status')}: stop it first (action stop)"
            )
        _call(task, "rm", container)
        task.data["state"] = "removed"
        return {"container": container[:12], "state": "removed", "status": task.status}

    def _after(self, task: Task) -> dict:
        record = self._update([task]).get(_container(task))
        state = record["State"] if record else {"Status": "removed"}
        return {
            "container": _container(task)[:12],
            "state": state.get("Status"),
            "exitcode": state.get("ExitCode"),
            "status": task.status,
        }

    def _logs(self, task: Task, tail: str | None, follow: bool, write) -> int:
        """Write the container's logs (stdout and stderr as they come); the byte count."""
        args = ["logs", *(["--follow"] if follow else []), *(["--tail", str(tail)] if tail else [])]
        process = Engine(task.data).open(*args, _container(task))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        total, first = 0, b""
        with process:
            while True:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                if not first and not follow:
                    first = chunk[:4096]
                total += len(chunk)
                write(decoder.decode(chunk))
            write(decoder.decode(b"", final=True))
        if process.returncode != 0:
            said = first_line(first.decode("utf-8", errors="replace"))
            if GONE.search(said):
                raise NoContainer(f"container {_container(task)[:12]} no longer exists")
            raise EngineError(said or f"{process.args[0]} logs failed")
        return total


class DockerExecutor(OciExecutor):
    name = "docker"
    match = r"^(?:\S*/)?docker(?:\s+-\S*(?:\s+[^-\s]\S*)?)*?\s+(?:container\s+)?run(?:\s|$)"
    engine_env = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG")


class PodmanExecutor(OciExecutor):
    name = "podman"
    match = r"^(?:\S*/)?podman(?:\s+-\S*(?:\s+[^-\s]\S*)?)*?\s+(?:container\s+)?run(?:\s|$)"
    engine_env = ("CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINERS_CONF")


def _followed(task: Task) -> bool:
    """A detached container still running, as far as the task knows."""
    data = task.data
    return task.status == RUNNING and bool(data.get("detach") and data.get("container"))


def _container(task: Task) -> str:
    data = task.data
    if data.get("container"):
        return data["container"]
    if data.get("name"):
        return data["name"]
    if "engine" not in data:
        raise NoContainer(f"task {task.short_id} is not a container run ({task.command})")
    if not task.finished:  # an attached run, still running
        found = _read_cidfile(data.get("cidfile")) or _find(task)
        if found:
            return found
        raise NoContainer(f"task {task.short_id} has no container yet")
    if task.returncode in ENGINE_FAILED:
        error = task.error
        if error is None and task.queue is not None:
            error = task.queue.read(task.id, "error")
        lines = (error or b"").decode("utf-8", errors="replace").strip().splitlines()
        why = f": {lines[-1].strip()}" if lines else ""  # engines end with their error
        raise NoContainer(
            f"task {task.short_id} started no container ({data['engine']} exited "
            f"{task.returncode}{why})"
        )
    raise NoContainer(f"task {task.short_id} left no container ({_gone_why(task)})")


def _find(task: Task) -> str | None:
    """The container an attached run started (the first created after the task
    started, of its image and command, among the engine's latest); None when it
    is gone (--rm) or the engine cannot tell."""
    engine = Engine(task.data)
    try:
        latest = engine.run("ps", "-a", "-q", "--no-trunc", "--last", "20").stdout.split()
        records = engine.inspect(latest) if latest else {}
    except EngineError:
        return None
    ended = task.ended or time.time()
    found = []
    for record in records.values():
        created = _timestamp(record.get("Created"))
        if created is None or not task.started - 1 <= created <= ended + 1:
            continue
        config = record.get("Config") or {}
        images = {record.get("ImageName"), config.get("Image")}
        wanted = task.data["command"]
        if _same_image(task.data["image"], images) and config.get("Cmd") in (wanted, None):
            found.append((created, record["Id"]))
    return min(found)[1] if found else None


def _read_cidfile(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _same_image(typed: str | None, names: set) -> bool:
    """Whether the image named on the command line is one of the engine's names for
    a container's image (podman adds the registry: alpine is docker.io/library/alpine)."""
    if not typed:
        return False
    variants = {typed} if ":" in typed.rpartition("/")[2] else {typed, f"{typed}:latest"}
    return any(
        name and (name in variants or any(name.endswith(f"/{v}") for v in variants))
        for name in names
    )


def _apply(task: Task, state: dict, now: float) -> None:
    status = (state.get("Status") or "").lower()
    task.data["state"] = status
    if status in ENDED and _followed(task):
        _end(task, state.get("ExitCode"), _timestamp(state.get("FinishedAt")), now)


def _end(task: Task, code: int | None, ended: float | None, now: float) -> None:
    """A followed container has ended: with this exit code (None: unknown, lost)."""
    if code is None:
        task.status = LOST
        return
    task.returncode, task.signal = code, None
    if code == 0:
        task.status = COMPLETE
    else:
        task.status = CANCELLED if code - 128 in CANCEL_SIGNALS else FAILED
    task.ended = max(ended or now, task.started)


def _call(task: Task, *args: str, timeout: float = TIMEOUT) -> None:
    try:
        Engine(task.data).run(*args, timeout=timeout)
    except EngineError as exc:
        if GONE.search(str(exc)):
            raise NoContainer(f"container {_container(task)[:12]} no longer exists") from None
        raise


def _said(state: dict) -> str:
    return f"{state.get('Status')}, exit code {state.get('ExitCode')}"


def _gone_why(task: Task) -> str:
    if task.data.get("rm"):
        return "run with --rm, it was removed when it stopped"
    return "removed since"


def _timestamp(text: str | None) -> float | None:
    """Seconds since the epoch of an engine's time ('2026-05-01T10:00:00.123456789Z');
    None for its zero time ('0001-01-01T00:00:00Z') or anything unreadable."""
    found = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text or "")
    if not found or found[1].startswith("0001"):
        return None
    zone = found[3] if found[3] and found[3] != "Z" else "+00:00"
    moment = datetime.datetime.fromisoformat(found[1] + zone)
    return moment.timestamp() + float(found[2] or 0)
