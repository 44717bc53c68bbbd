"""The HTML pages: the task table and one page per task.

Templates are Bottle's SimpleTemplate, which escapes every `{{value}}`; task
data reaches the scripts as JSON in an escaped data attribute, and the scripts
put it into the page as text (textContent), never as markup.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import bottle
from bottle import redirect, request

from qme import __version__
from qme.api import Queue
from qme.errors import NoSuchTask
from qme.task import STATUSES
from qme.web import actions
from qme.web.hub import summary
from qme.web.rest import page_links, page_of_tasks

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

    @app.get("/executor/<task_id>")
    def queueme_task_page(task_id):  # QueueMe's address for a task's page
        redirect(f"/tasks/{queue.resolve(task_id)}", 301)
