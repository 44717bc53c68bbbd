"""The HTML pages: the task table and one page per task.

Templates are Bottle's SimpleTemplate, which escapes every `{{value}}`; task
data reaches the scripts as JSON in an escaped data attribute, and the scripts
put it into the page as text (textContent), never as markup.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import urlencode

import bottle
from bottle import redirect, request

from qme import __version__
from qme.api import Queue
from qme.errors import NoSuchTask
from qme.task import STATUSES
from qme.web import actions, charts
from qme.web.hub import summary
from qme.web.rest import BadRequest, page_links, page_of_tasks

TEMPLATES = Path(__file__).parent / "templates"
EXECUTOR_NAME = re.compile(r"[a-z0-9_]+")
SESSION_LIMIT = 2000  # commands a session page shows, oldest first


def render(name: str, **values) -> str:
    return bottle.template(name, template_lookup=[str(TEMPLATES)], version=__version__, **values)


def task_template(executor: str) -> str:
    """`executor_NAME` when the executor has its own page template, else the shell's."""
    name = f"executor_{executor}"
    if EXECUTOR_NAME.fullmatch(executor) and (TEMPLATES / f"{name}.tpl").is_file():
        return name
    return "executor_shell"


def install(app, queue: Queue) -> None:
    @app.get("/")
    def table():
        params = request.query.decode()
        page = page_of_tasks(queue, params)
        return render(
            "table",
            title="tasks",
            store=queue.database,
            page=page,
            page_json=json.dumps(page),
            links=page_links("/", page),
            executors=queue.executor_names(),
            statuses=STATUSES,
        )

    @app.get("/tasks/<task_id>")
    def task_page(task_id):
        task = queue.get(task_id, streams=False)
        record = {**summary(task), "actions": actions.executor_actions(queue, task)}
        return render(
            task_template(task.executor),
            title=task.command,
            store=queue.database,
            task=task,
            task_json=json.dumps(record),
            executor_actions=record["actions"],
        )

    @app.get("/sessions/<session_id>")
    def session_page(session_id):
        tasks = queue.list(session=session_id, newest_first=False, limit=SESSION_LIMIT)
        if not tasks:
            raise NoSuchTask(f"no task of session '{session_id}'")
        return render(
            "session",
            title=f"session {session_id[:8]}",
            store=queue.database,
            session=session_id,
            tasks=tasks,
            tasks_json=json.dumps([summary(task) for task in tasks]),
        )

    @app.get("/stats")
    def stats_page():
        params = request.query.decode()
        days = _days(params.get("days"))
        host = params.get("host") or None
        found = queue.stats(since=time.time() - days * 86400, host=host)
        daily = [(d[5:], n) for d, n, _ in found.days]
        rate = [(d[5:], 100 * bad / n) for d, n, bad in found.days]
        return render(
            "stats",
            title="statistics",
            store=queue.database,
            stats=found,
            days=days,
            host=host,
            urlencode=urlencode,
            host_links=[
                (name, runs, "/stats?" + urlencode({"days": days, "host": name}))
                for name, runs, _ in found.hosts
            ],
            per_day=charts.columns(
                daily, "tasks per day", overlay=[bad for _, _, bad in found.days]
            ),
            failure_rate=charts.line(rate, "failure rate per day", lambda v: f"{v:.0f}%"),
            most_run=charts.bars([(c, n) for c, n, _ in found.most_run], "most-run commands"),
            slowest=charts.bars(
                [(c, mean) for c, _, mean, _ in found.slowest],
                "slowest commands (mean)",
                lambda v: f"{v:.1f} s",
                color="#c08a1e",
            ),
        )

    @app.get("/executor/<task_id>")
    def queueme_task_page(task_id):  # QueueMe's address for a task's page
        redirect(f"/tasks/{queue.resolve(task_id)}", 301)


def _days(raw) -> int:
    """The ?days= window of the statistics page: 1 to 3650, 90 when not given."""
    if raw in (None, ""):
        return 90
    if not raw.isdigit() or not 1 <= int(raw) <= 3650:
        raise BadRequest("days must be a number from 1 to 3650")
    return int(raw)
