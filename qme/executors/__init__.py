"""The executor registry: which executor runs a command, and lookup by name.

Built-ins are named here as "module:Class" and imported only when used.
"""

from __future__ import annotations

import importlib
import re

from qme.config import Settings
from qme.errors import UnknownExecutor
from qme.executors.base import Executor

BUILTIN: dict[str, str] = {"shell": "qme.executors.shell:ShellExecutor"}
DEFAULT = "shell"


def names() -> list[str]:
    return list(BUILTIN)


def executor_class(name: str) -> type[Executor]:
    try:
        module, _, attr = BUILTIN[name].partition(":")
    except KeyError:
        raise UnknownExecutor(name, names()) from None
    return getattr(importlib.import_module(module), attr)


def get(name: str, config: Settings) -> Executor:
    return executor_class(name)(config)


def for_command(command: str, config: Settings) -> Executor:
    """The first executor whose match rule fits the command, else the default."""
    for name in names():
        cls = executor_class(name)
        if cls.match and re.match(cls.match, command):
            return cls(config)
    return get(DEFAULT, config)
