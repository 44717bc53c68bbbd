"""Moving a whole history between stores: `qme export` and `qme import`.

An export is JSON Lines by default: a header line, then one task per line, oldest
first, so any size streams through in constant memory and two exports can be
joined with `cat`. With `as_json`, the same content is one JSON document,
`{"format": …, "tasks": […]}`. Every field of a task is kept, and a stream is
kept as text (`output`) when it is valid UTF-8, else as base64
(`output_base64`), so ids, times, output, error and executor data survive a
round trip through any store byte for byte.
"""

from __future__ import annotations

import base64
import json
import time
from collections import namedtuple
from collections.abc import Iterable, Iterator
from typing import IO

from qme.errors import NoSuchTask, QmeError
from qme.store.base import Store, TaskQuery
from qme.task import STREAMS, Task
from qme.version import __version__

FORMAT = "qme-export"
VERSION = 1
PAGE = 500  # tasks read from the source store at a time

# What an import did: tasks written, tasks skipped because their id was there.
Imported = namedtuple("Imported", "added skipped")


class BadExport(QmeError):
    pass


def export(
    store: Store,
    out: IO[str],
    query: TaskQuery | None = None,
    as_json: bool = False,
    tasks: Iterable[Task] | None = None,
):
    """Write the tasks of store matching query (all by default), or these tasks
    (read again with their streams), to out; returns how many."""
    header = {"format": FORMAT, "version": VERSION, "qme": __version__, "exported": time.time()}
    if as_json:  # the header's object, with "tasks" added
        out.write(json.dumps(header)[:-1] + ', "tasks": [')
    else:
        out.write(json.dumps(header) + "\n")
    count = 0
    chosen = _oldest_first(store, query or TaskQuery()) if tasks is None else _read(store, tasks)
    for task in chosen:
        line = json.dumps(to_record(task))
        if as_json:
            out.write(("," if count else "") + "\n  " + line)
        else:
            out.write(line + "\n")
        count += 1
    if as_json:
        out.write("\n]}\n" if count else "]}\n")
    return count


def _oldest_first(store: Store, query: TaskQuery) -> Iterator[Task]:
    """Every task matching query, with its streams, a page at a time."""
    offset, wanted = 0, query.limit
    while wanted is None or offset < wanted:
        size = PAGE if wanted is None else min(PAGE, wanted - offset)
        page = store.list(query._replace(limit=size, offset=offset), newest_first=False)
        for listed in page:
            try:
                yield store.get(listed.id)
            except NoSuchTask:  # deleted since it was listed
                continue
        if len(page) < size:
            return
        offset += size


def _read(store: Store, tasks: Iterable[Task]) -> Iterator[Task]:
    for task in tasks:
        try:
            yield store.get(task.id)
        except NoSuchTask:  # deleted since it was chosen
            continue


def to_record(task: Task) -> dict:
    record = {name: getattr(task, name) for name in Task.FIELDS if name != "queue"}
    for stream in STREAMS:
        data = record.pop(stream) or b""
        try:
            record[stream] = data.decode("utf-8")
        except UnicodeDecodeError:
            record[f"{stream}_base64"] = base64.b64encode(data).decode("ascii")
    return record


def from_record(record: dict) -> Task:
    record = dict(record)
    for stream in STREAMS:
        encoded = record.pop(f"{stream}_base64", None)
        text = record.pop(stream, None)
        record[stream] = base64.b64decode(encoded) if encoded is not None else (text or "").encode()
    return Task(**record)


def read_export(lines: Iterable[str]) -> Iterator[Task]:
    """The tasks of an export in either format, checked as they are read."""
    lines = iter(lines)
    first = next(lines, "")
    if not first.strip():
        raise BadExport("not a qme export: it is empty")
    try:
        header = json.loads(first)
    except ValueError:  # the start of a JSON document written over several lines
        header = _parse(first + "".join(lines), 1)
    _check_header(header)
    if "tasks" in header:
        records = header["tasks"]
        if not isinstance(records, list):
            raise BadExport("not a qme export: its 'tasks' is not a list")
        numbered: Iterable = enumerate(records, start=1)
    else:  # JSON Lines: a task per line after the header
        numbered = ((n, _parse(line, n)) for n, line in enumerate(lines, start=2) if line.strip())
    for number, record in numbered:
        yield _task(record, number)


def _parse(text: str, number: int):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadExport(f"not a qme export: line {number} is not JSON ({exc})") from None


def _check_header(header) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BadExport(f"not a qme export: it does not start with a '{FORMAT}' header")
    if header.get("version", 0) > VERSION:
        raise BadExport(
            f"this export has format version {header['version']}; this qme reads up to "
            f"{VERSION}, upgrade qme to import it"
        )


def _task(record, number: int) -> Task:
    try:
        if not isinstance(record, dict):
            raise TypeError("not an object")
        return from_record(record)
    except (TypeError, ValueError) as exc:
        raise BadExport(f"task {number} of the export is not a task ({exc})") from None


def import_tasks(store: Store, tasks: Iterable[Task], replace: bool = False) -> Imported:
    """Add the tasks to store as they are. A task whose id the store has already
    is skipped (so an interrupted import can simply be run again), or replaced."""
    added = skipped = 0
    for task in tasks:
        if _exists(store, task.id):
            if not replace:
                skipped += 1
                continue
            store.delete([task.id])
        store.add(task.copy(output=None, error=None))
        for stream in STREAMS:
            if getattr(task, stream):
                store.append(task.id, stream, getattr(task, stream))
        store.update(task)
        added += 1
    return Imported(added, skipped)


def _exists(store: Store, task_id: str) -> bool:
    try:
        store.get(task_id, streams=False)
    except NoSuchTask:
        return False
    return True
