"""The REST API (described by qme/web/openapi.json, served at /api/openapi.json).

    GET    /api/tasks                      a page of tasks: limit, offset, executor, status, q
    GET    /api/tasks/executor/NAME        the same, for one executor
    GET    /api/tasks/ID                   one task (ID: full id or unique prefix)
    GET    /api/tasks/ID/output|error      its raw bytes (text/plain), from ?offset=N
    PATCH  /api/tasks/ID                   its note and tags: {"note": "…", "tags": […]}
    DELETE /api/tasks/ID                   delete it

ID may also be a reference: @1 the most recent task, @2 the one before.
    POST   /api/tasks/ID/rerun|cancel      rerun it (in the background) / cancel it
    POST   /api/tasks/ID/actions/NAME      run one of its executor's actions

Errors are JSON, `{"error": "…"}`, with a status code (see qme/web/app.py).

QueueMe 0.0.14's three routes answer in its shape with `?format=queueme`: the
lists as `[{taskid, command, html_url, api_url}]` (every task, oldest first), one
task as its `task.export()` (`{pwd, user, timestamp, output: [lines], …}`).
"""

from __future__ import annotations

import json
from importlib import resources
from urllib.parse import urlencode

from bottle import HTTPResponse, request

from qme.api import Queue
from qme.errors import QmeError, UnknownExecutor
from qme.task import STATUSES
from qme.text import words
from qme.web import actions
from qme.web.hub import Hub, summary

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Far past any store, and within what every store's integers hold (SQLite: 2**63).
MAX_OFFSET = 10**15
STREAMS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
# Counting stops this far past the page shown: a million tasks are counted as
# "more than" rather than one by one on every page.
COUNT_CAP = 10_000
MAX_BODY = 64 << 10  # bytes of a PATCH body: a note, some tags


class BadRequest(QmeError):
    """A parameter the API cannot use (HTTP 400)."""


def json_response(data, status: int = 200) -> HTTPResponse:
    body = json.dumps(data, default=str)
    return HTTPResponse(body, status, {"Content-Type": "application/json"})


def page_of_tasks(queue: Queue, params, executor: str | None = None) -> dict:
    """One page of tasks, newest first, for the table and GET /api/tasks."""
    limit = _number(params, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    offset = _number(params, "offset", 0, 0, MAX_OFFSET)
    status = params.get("status") or None
    session = params.get("session") or None  # a shell session's id (qme on)
    text = (params.get("q") or "").strip()
    known = queue.executor_names()
    if executor is not None and executor not in known:
        raise UnknownExecutor(executor, known)  # in the path: 404
    named = params.get("executor") or None
    if executor is None and named is not None and named not in known:
        raise BadRequest(str(UnknownExecutor(named, known)))  # a parameter: 400
    executor = executor or named
    if status is not None and status not in STATUSES:
        raise BadRequest(f"unknown status '{status}' (one of {', '.join(STATUSES)})")
    total = None
    if words(text):
        hits = queue.search(
            text, executor=executor, status=status, session=session, limit=limit + 1, offset=offset
        )
        tasks = [{**summary(h.task), "match": {"field": h.field, "line": h.line}} for h in hits]
        total = queue.search_count(
            text, executor=executor, status=status, session=session, limit=offset + COUNT_CAP
        )
    else:
        found = queue.list(executor, status=status, session=session, limit=limit + 1, offset=offset)
        tasks = [summary(t) for t in found]
        total = queue.count(executor, status=status, session=session, limit=offset + COUNT_CAP)
    return {
        "tasks": tasks[:limit],
        "offset": offset,
        "limit": limit,
        "more": len(tasks) > limit,
        "total": total,
        "total_exact": total < offset + COUNT_CAP,
        "filters": {"executor": executor, "status": status, "session": session, "q": text or None},
    }


def queueme_rows(queue: Queue, executor: str | None) -> list[dict]:
    """Every task (of an executor), oldest first, as QueueMe 0.0.14's API listed them."""
    root = "{}://{}/".format(*request.urlparts[:2])
    return [
        {
            "taskid": task.id,
            "command": task.command,
            "html_url": f"{root}executor/{task.id}",
            "api_url": f"{root}api/tasks/{task.id}",
        }
        for task in queue.list(executor, newest_first=False)
    ]


def page_links(path: str, page: dict) -> dict:
    """URLs of the next and previous pages (None where there is none)."""
    kept = {k: v for k, v in page["filters"].items() if v}
    if page["limit"] != PAGE_SIZE:
        kept["limit"] = page["limit"]

    def link(offset: int) -> str:
        query = urlencode({**kept, **({"offset": offset} if offset else {})})
        return f"{path}?{query}" if query else path

    offset, limit = page["offset"], page["limit"]
    return {
        "next": link(offset + limit) if page["more"] else None,
        "previous": link(max(0, offset - limit)) if offset else None,
    }


def _number(params, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        shown = raw if len(raw) <= 40 else f"{raw[:40]}…"
        raise BadRequest(f"{name} must be a whole number, not '{shown}'") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def _annotations(body: bytes) -> tuple[str | None, list[str] | None]:
    """(note, tags) from a PATCH body: a JSON object with "note" (a string; "" or
    null removes it) and/or "tags" (a list of strings: the task's tags from now on)."""
    if len(body) > MAX_BODY:
        raise BadRequest(f"the body is larger than {MAX_BODY} bytes")
    try:
        given = json.loads(body or b"null")
    except ValueError:
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(given, dict) or not given or set(given) - {"note", "tags"}:
        raise BadRequest('the body must be a JSON object with "note" and/or "tags"')
    note, tags = given.get("note", ...), given.get("tags")
    if note is not ... and note is not None and not isinstance(note, str):
        raise BadRequest('"note" must be a string or null')
    if "tags" in given and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise BadRequest('"tags" must be a list of strings')
    return (None if note is ... else note or ""), tags


def _streams(params) -> bool:
    raw = params.get("streams") or "1"
    if raw not in STREAMS:
        raise BadRequest(f"streams must be one of {', '.join(STREAMS)}")
    return STREAMS[raw]


def _queueme(params) -> bool:
    """Whether ?format= asks for QueueMe 0.0.14's shape (qme's is the default)."""
    wanted = params.get("format") or "qme"
    if wanted not in ("qme", "queueme"):
        raise BadRequest("format must be qme or queueme")
    return wanted == "queueme"


def install(app, queue: Queue, hub: Hub) -> None:
    def listing(executor: str | None = None):
        if _queueme(request.query):
            return json_response(queueme_rows(queue, executor))
        page = page_of_tasks(queue, request.query.decode(), executor)
        return json_response({**page, **page_links(request.path, page)})

    app.get("/api/tasks", callback=listing)
    app.get("/api/tasks/executor/<executor>", callback=listing)

    @app.get("/api/tasks/<task_id>")
    def one_task(task_id):
        streams = _streams(request.query)
        if _queueme(request.query):
            return json_response(queue.queueme_record(queue.get(task_id))["data"])
        task = queue.get(task_id, streams=streams)
        record = {**task.to_dict(streams), "short_id": task.short_id}
        return json_response({**record, "actions": actions.executor_actions(queue, task)})

    @app.get("/api/tasks/<task_id>/<stream:re:output|error>")
    def stream_bytes(task_id, stream):
        offset = _number(request.query, "offset", 0, 0, MAX_OFFSET)
        data = queue.read(task_id, stream, offset)
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            # Raw bytes of a command: never rendered as a document, never run.
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "X-Qme-Offset": str(offset),
        }
        return HTTPResponse(data, 200, headers)

    @app.route("/api/tasks/<task_id>", method="PATCH")
    def annotate(task_id):
        note, tags = _annotations(request.body.read(MAX_BODY + 1))
        task = queue.get(task_id, streams=False)
        if note is not None:
            task = queue.note(task, note)
        if tags is not None:
            task = queue.tag(task, tags, replace=True)
        hub.annotated(task)
        return json_response(summary(task))

    @app.delete("/api/tasks/<task_id>")
    def delete(task_id):
        task = queue.get(task_id, streams=False)
        message = actions.delete(queue, task)
        hub.deleted([task.id])
        return json_response({"message": message, "deleted": task.id})

    @app.post("/api/tasks/<task_id>/rerun")
    def rerun(task_id):
        task = queue.get(task_id, streams=False)
        new = actions.rerun(queue, task)
        message = (
            f"rerunning task {task.short_id} as {new.short_id}"
            if new
            else f"rerunning task {task.short_id}"
        )
        result = {"message": message, "rerun_of": task.id, "task": new and summary(new)}
        return json_response(result, 202)

    @app.post("/api/tasks/<task_id>/cancel")
    def cancel(task_id):
        task = queue.get(task_id, streams=False)
        message, result = queue.cancel(task)
        return json_response({"message": message, "id": task.id, "result": result}, 202)

    @app.post("/api/tasks/<task_id>/actions/<name>")
    def executor_action(task_id, name):
        task = queue.get(task_id, streams=False)
        result = task.run_action(name)  # NoSuchAction (404) when the executor has none
        return json_response({"id": task.id, "action": name, "result": result})

    @app.get("/api/openapi.json")
    def openapi():
        text = resources.files("qme.web").joinpath("openapi.json").read_text("utf-8")
        return HTTPResponse(text, 200, {"Content-Type": "application/json"})
