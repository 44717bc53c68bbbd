"""QueueMe's plain-files store: `<root>/<executor>/<id>.json`, one file per task.

Streams are kept inside the JSON as text; bytes that are not UTF-8 travel as
escaped surrogates, so what comes back out is byte for byte what went in.
Listing and searching read every file: fine for thousands of tasks, slow beyond.

A QueueMe 0.0.14 store is read where it is: its files sit where qme's own would
and are read as tasks (qme/store/queueme.py). Such a file is left as it is until
that very task is changed (an action that updates it): the first change keeps
the original beside it, as `<id>.json.queueme`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path

from qme import private
from qme.errors import NoSuchTask, StoreError
from qme.store import jsonfile, queueme
from qme.store.base import ANNOTATIONS, SearchHit, Store, TaskQuery
from qme.task import STREAMS, Task
from qme.text import first_match, searchable, word_pattern

_FIELDS = [name for name in Task.FIELDS if name != "queue"]


class FilesystemStore(Store):
    name = "filesystem"

    def __init__(self, root: str | os.PathLike, create: bool = True):
        """create=False: a reader's store, which creates no folder until something
        is written (a missing folder reads as an empty store)."""
        self.root = Path(root)
        if create:
            try:
                private.make_dir(self.root)
            except OSError as exc:
                raise StoreError(f"cannot create the filesystem store {self.root}: {exc}") from None
        self._open: dict[str, Task] = {}  # tasks this process is writing, streams loaded
        # id -> identity of the file this process last wrote: another identity means
        # another process has written it since (a note, a tag).
        self._written: dict[str, tuple[int, int]] = {}
        # path -> (file identity, task without streams): listing again (a live view
        # polls) re-reads only the files that changed since.
        self._summaries: dict[Path, tuple[tuple[int, int, int], Task]] = {}

    # -- files --------------------------------------------------------------------------

    def _path(self, task_id: str) -> Path:
        executor = task_id.split("-", 1)[0]
        if not executor or "/" in task_id or task_id.startswith("."):
            raise NoSuchTask(task_id)
        return self.root / executor / f"{task_id}.json"

    def _files(self):
        return self.root.glob("*/*.json")

    def _write(self, task: Task) -> None:
        record = {name: getattr(task, name) for name in _FIELDS}
        for stream in STREAMS:
            record[stream] = (record[stream] or b"").decode("utf-8", "surrogateescape")
        path = self._path(task.id)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            private.make_dir(path.parent)
            fd = private.open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with open(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(record, indent=4))
                stat = os.fstat(handle.fileno())
            os.replace(tmp, path)
            self._written[task.id] = (stat.st_ino, stat.st_mtime_ns)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write {path}: {exc}") from None

    @contextlib.contextmanager
    def _opened(self, path: Path):
        """The task file open for reading as text, a store's errors raised for it."""
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                yield handle
        except FileNotFoundError:
            raise NoSuchTask(path.stem) from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from None

    def _read(self, path: Path, streams: bool = True) -> Task:
        """The task in path; without streams, only the file's head is read and
        parsed (a QueueMe record, in another layout, is read whole)."""
        with self._opened(path) as handle:
            record = None if streams else jsonfile.head(handle)
            if record is None:
                handle.seek(0)
                record = json.load(handle)
        if queueme.is_record(record):
            task = queueme.to_task(record)
        else:
            for stream in STREAMS:
                record[stream] = record.get(stream, "").encode("utf-8", "surrogateescape")
            task = Task(**{k: v for k, v in record.items() if k in _FIELDS})
        if not streams:
            task.output = task.error = None
        return task

    def _listing(self) -> list[Task]:
        """Every task without its streams."""
        known, self._summaries = self._summaries, {}
        for path in self._files():
            try:
                stat = path.stat()
                identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                cached = known.get(path)
                fresh = cached is None or cached[0] != identity
                task = self._read(path, streams=False) if fresh else cached[1]
            except (FileNotFoundError, NoSuchTask):
                continue  # deleted while we were listing
            self._summaries[path] = (identity, task)
        return [task.copy() for _, task in self._summaries.values()]

    def _all(self) -> list[Task]:
        tasks = []
        for path in self._files():
            try:
                tasks.append(self._read(path))
            except NoSuchTask:
                continue  # deleted while we were listing
        return tasks

    # -- contract -----------------------------------------------------------------------

    def add(self, task: Task) -> None:
        task.output, task.error = task.output or b"", task.error or b""
        self._open[task.id] = task
        self._write(task)

    def _writing(self, task_id: str) -> Task:
        """The task this process is writing (read when it is not), with the note and
        tags another process may have given it since this one last wrote it."""
        path = self._path(task_id)
        task = self._open.get(task_id)
        if task is None:
            return self._read(path)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return task
        if (stat.st_ino, stat.st_mtime_ns) != self._written.get(task_id):
            fresh = self._read(path)
            for name in ANNOTATIONS:
                setattr(task, name, getattr(fresh, name))
        return task

    @contextlib.contextmanager
    def _locked(self, task_id: str):
        """Held while a task's file is read and written back: another process's
        update (a reader marking a task lost, a note) must not write back output
        it read before this writer's last append (a lost write)."""
        folder = self._path(task_id).parent
        try:
            private.make_dir(folder)
            fd = private.open_file(folder / ".lock", os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise StoreError(f"cannot lock {folder}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def append(self, task_id: str, stream: str, data: bytes) -> None:
        with self._locked(task_id):
            task = self._writing(task_id)
            self._open[task_id] = task
            setattr(task, stream, getattr(task, stream) + data)
            self._write(task)

    def update(self, task: Task) -> None:
        with self._locked(task.id):
            stored = self._writing(task.id)
            self._keep_queueme_original(self._path(task.id))
            for name in _FIELDS:
                if name not in (*STREAMS, *ANNOTATIONS):  # those: annotate()
                    setattr(stored, name, getattr(task, name))
            self._write(stored)

    def annotate(self, task_id: str, *, message=None, tags=None) -> None:
        path = self._path(task_id)
        with self._locked(task_id):
            stored = self._read(path)
            self._keep_queueme_original(path)
            if message is not None:
                stored.message = message or None
            if tags is not None:
                stored.tags = list(tags)
            self._write(stored)
        if task_id in self._open:
            self._open[task_id].message, self._open[task_id].tags = stored.message, stored.tags

    def replace(self, task: Task) -> None:
        path = self._path(task.id)
        if not path.exists():
            raise NoSuchTask(task.id)
        self._keep_queueme_original(path)
        task = task.copy()
        task.output, task.error = task.output or b"", task.error or b""
        self._open.pop(task.id, None)
        self._write(task)

    def _keep_queueme_original(self, path: Path) -> None:
        """Before a QueueMe record is first written over in qme's format, keep it."""
        kept = path.with_name(path.name + ".queueme")
        if kept.exists() or _queueme_id(path) is None:
            return
        try:
            shutil.copy2(path, kept)
        except OSError as exc:
            raise StoreError(f"cannot keep QueueMe's record {path} as {kept}: {exc}") from None

    def get(self, task_id: str, streams: bool = True) -> Task:
        return self._read(self._path(task_id), streams)

    def stream(self, task_id: str, stream: str, size: int):
        # Decoded from the file as it is read: the JSON holds the stream as one
        # string, which json.load would make whole (and base.read re-read per piece).
        path = self._path(task_id)
        with self._opened(path) as handle:
            if jsonfile.own_layout(handle):
                yield from jsonfile.string_value(handle, stream, size)
                return
        data = getattr(self._read(path), stream)  # a QueueMe record: read whole
        for start in range(0, len(data), size):
            yield data[start : start + size]

    def match(self, prefix: str, limit: int) -> list[str]:
        ids = sorted(
            p.stem
            for p in self._files()
            if p.stem.startswith(prefix) or p.stem.split("-", 1)[-1].startswith(prefix)
        )
        return ids[:limit]

    def list(self, query: TaskQuery, newest_first: bool = True) -> list[Task]:
        tasks = [t for t in self._listing() if _matches(t, query)]
        tasks.sort(key=lambda t: t.started, reverse=newest_first)
        start = query.offset or 0
        return tasks[start : None if query.limit is None else start + query.limit]

    def recent(self, since: float) -> list[Task]:
        tasks = [t for t in self._listing() if t.started >= since or not t.finished]
        return sorted(tasks, key=lambda t: t.started)

    def data_version(self) -> object:
        # Every write renames a file into <root>/<executor>/, which changes that
        # folder's modification time; a new executor's folder changes the root's.
        try:
            folders = [self.root, *(p for p in self.root.iterdir() if p.is_dir())]
            return tuple((p.name, p.stat().st_mtime_ns) for p in folders)
        except OSError:
            return None

    def search(
        self,
        words,
        *,
        executor=None,
        limit=20,
        rank=False,
        status=None,
        offset=0,
        cwd=None,
        session=None,
        host=None,
    ) -> list[SearchHit]:
        patterns = [word_pattern(w) for w in words]
        hits = []
        for task in sorted(self._all(), key=lambda t: t.started, reverse=True):
            wanted = {"executor": executor, "status": status, "cwd": cwd}
            wanted.update(session=session, host=host)
            if any(value and getattr(task, name) != value for name, value in wanted.items()):
                continue
            texts = {
                "command": task.command,
                "message": task.message or "",
                "tags": " ".join(task.tags),
                **{s: searchable(getattr(task, s)) for s in STREAMS},
            }
            if not all(any(p.search(t) for t in texts.values()) for p in patterns):
                continue
            task.output = task.error = None
            hits.append(_first_hit(task, texts, patterns))
        if rank:
            hits.sort(key=lambda h: -sum(len(p.findall(h.line)) for p in patterns))
        return hits[offset : offset + limit]

    def delete(self, task_ids: list[str]) -> int:
        deleted = 0
        for task_id in task_ids:
            try:
                self._path(task_id).unlink()
                deleted += 1
            except (FileNotFoundError, NoSuchTask):
                pass
        return deleted

    def clear(self, executor: str | None = None) -> int:
        if not self.root.is_dir():
            return 0
        folders = [self.root / executor] if executor else list(self.root.iterdir())
        count = 0
        for folder in folders:
            if folder.is_dir():
                count += sum(1 for _ in folder.glob("*.json"))
                shutil.rmtree(folder)
        return count


def _queueme_id(path: Path) -> str | None:
    """The id of the QueueMe record in path; None when it is qme's own (or gone)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
        record = json.loads(path.read_text(encoding="utf-8")) if b'"uid"' in head else None
    except (OSError, ValueError):
        return None
    return record["uid"] if queueme.is_record(record) else None


def _matches(task: Task, query: TaskQuery) -> bool:
    return (
        all(
            getattr(query, c) is None or getattr(query, c) == getattr(task, c)
            for c in ("executor", "status", "cwd", "session", "host", "user")
        )
        and (query.since is None or task.started >= query.since)
        and (query.until is None or task.started < query.until)
        and (query.tag is None or query.tag in task.tags)
    )


def _first_hit(task: Task, texts: dict[str, str], patterns) -> SearchHit:
    return SearchHit(task, *(first_match(texts, patterns) or ("command", task.command)))
