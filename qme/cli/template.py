"""--format templates of qme ls and qme search: one line per task, with atuin's
placeholders ({command} {exit} {duration} {directory} {time} {host}) and qme's
({id} {short_id} {status} {user} {session} {executor} {message})."""

from __future__ import annotations

from qme.cli.env import USAGE
from qme.errors import QmeError

PLACEHOLDERS = {
    "command": "the command line",
    "exit": "its exit code (empty while it runs)",
    "duration": "how long it ran (9ms, 1.3s, 2m05s)",
    "directory": "where it ran",
    "time": "when it started, local time (2026-11-24 09:30:01)",
    "host": "the machine it ran on",
    "id": "the task's full id",
    "short_id": "the id as qme ls shows it",
    "status": "complete, failed, running, …",
    "user": "who ran it",
    "session": "the shell session it was typed in (qme on), or empty",
    "executor": "shell, slurm, docker, …",
    "message": "its message (-m), or empty",
}
HELP = (
    "a template, one line per task: "
    + " ".join("{" + name + "}" for name in PLACEHOLDERS)
    + r" ({{ and }} for braces, \t for a tab)"
)


class TemplateError(QmeError):
    exit_code = USAGE  # a mistake in the arguments


def chosen(fmt: str, named: tuple[str, ...]) -> str | None:
    """A --format: one of the named formats (returned as None), or a template made
    ready by check(); TemplateError for anything else."""
    if fmt in named:
        return None
    if "{" not in fmt and "}" not in fmt:
        takes = f"{', '.join(named)}, or a template" if named else "a template"
        raise TemplateError(
            f"unknown format '{fmt}' (--format takes {takes} such as '{{time}} {{exit}} "
            "{command}')"
        )
    return check(fmt)


def check(template: str) -> str:
    """The template made ready (\\t, \\n as tab and newline); TemplateError, one line,
    for an unknown placeholder or a brace out of place."""
    import string

    known = " ".join("{" + name + "}" for name in PLACEHOLDERS)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"--format {template!r}: {exc} (placeholders: {known})") from None
    for _, field, _, _ in parsed:
        if field is not None and field not in PLACEHOLDERS:
            shown = "{" + field + "}" if field else "{}"
            raise TemplateError(f"unknown placeholder {shown} in --format (placeholders: {known})")
    return template.replace("\\t", "\t").replace("\\n", "\n")


def render(template: str, task) -> str:
    """One task through a template made ready by check()."""
    import time

    from qme.cli.render import duration, safe

    values = {
        "command": task.command,
        "exit": "" if task.returncode is None else str(task.returncode),
        "duration": duration(task.duration) if task.ended else "",
        "directory": task.cwd,
        "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(task.started)),
        "host": task.host,
        "id": task.id,
        "short_id": task.short_id,
        "status": task.status,
        "user": task.user,
        "session": task.session or "",
        "executor": task.executor,
        "message": task.message or "",
    }
    return template.format_map({k: safe(str(v or "")) for k, v in values.items()})
