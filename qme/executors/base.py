"""What every executor is: a name, a rule saying which commands it takes, its
settings, and hooks around running a command."""

from __future__ import annotations

from qme.config import Settings
from qme.task import Task


class Executor:
    name: str
    # A regular expression matched against the start of the command line; None
    # for the fallback executor, which takes whatever no other executor claims.
    match: str | None = None
    # Setting name -> help, for `qme config --set NAME KEY VALUE` and QME_NAME_KEY.
    settings: dict[str, str] = {}  # noqa: RUF012 - read-only class data

    def __init__(self, config: Settings):
        self.config = config

    def setting(self, key: str, default: str | None = None) -> str | None:
        return self.config.executor_setting(self.name, key, default)

    def prepare(self, task: Task) -> None:
        """Called before the command starts; may fill task.data."""

    def finish(self, task: Task) -> None:
        """Called when the command has ended, before the task is saved."""
