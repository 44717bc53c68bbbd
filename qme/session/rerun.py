"""Rerunning a command typed in a recorded shell session the way it was typed.

A session task is stored as `SHELL -c COMMAND`, but a new shell started that way
knows none of the aliases and functions the session had (typed by hand, carried
over by `qme on`, or defined by rc files that `-c` does not read). So as each
command starts, the hooks print the definitions of the aliases and functions it
uses, and of those these use in turn (a `D` mark, see marks.py); the session keeps
them with the task (`data["definitions"]`: never variables, which may hold
secrets; only what that command needs). A rerun defines them first:

    bash -c 'shopt -s expand_aliases; alias ll=...; f () { ...; }; eval COMMAND'

(bash and zsh expand an alias only in a line read after it was defined, hence the
eval), zsh assigns `functions[NAME]`, fish sources each `function ... end` as
`functions NAME` printed it. Without that shell on this host, the rerun says so in
one line rather than failing with `command not found`.
"""

from __future__ import annotations

import os
import shlex
import shutil

from qme.errors import QmeError

KEY = "definitions"  # in Task.data: {"shell": kind, "aliases": {..}, "functions": {..}}


def definitions(kind: str, aliases: dict[str, str], functions: dict[str, str]) -> dict:
    """What a task keeps: the aliases' values and the functions' definitions."""
    return {"shell": kind, "aliases": dict(aliases), "functions": dict(functions)}


def rerun_argv(argv: list[str], command: str, data: dict | None) -> list[str]:
    """The argv that reruns a task as it was typed: argv itself unless the task
    used aliases or functions of its session."""
    kept = (data or {}).get(KEY)
    if not kept or len(argv) != 3 or argv[1] != "-c":
        return list(argv)
    kind = kept.get("shell") or os.path.basename(argv[0])
    aliases, functions = kept.get("aliases") or {}, kept.get("functions") or {}
    shell = _find(argv[0])
    if shell is None:
        name, what = _first(aliases, functions, kind)
        raise QmeError(
            f"'{name}' was {what} of that session; qme cannot rerun it here "
            f"({argv[0]} is not on this host, nor {kind} on PATH)"
        )
    return [shell, "-c", script(kind, aliases, functions, command)]


def script(kind: str, aliases: dict[str, str], functions: dict[str, str], command: str) -> str:
    """The -c script: the definitions, then the command."""
    if kind == "fish":  # an alias is a function in fish
        return "".join(f"{text.rstrip()}\n" for text in functions.values()) + command
    lines = []
    if kind == "bash":
        lines.append("shopt -s expand_aliases")
        lines += [f"alias -- {shlex.quote(f'{n}={v}')}" for n, v in aliases.items()]
        lines += [text.rstrip() for text in functions.values()]
    else:  # zsh: a function by name, whatever characters the name has
        lines.append("zmodload zsh/parameter")
        lines += [f"alias -- {shlex.quote(f'{n}={v}')}" for n, v in aliases.items()]
        lines += [f"functions[{shlex.quote(n)}]={shlex.quote(b)}" for n, b in functions.items()]
    lines.append(f"eval {shlex.quote(command)}")
    return "\n".join(lines)


def _find(shell: str) -> str | None:
    if os.path.isabs(shell) and os.access(shell, os.X_OK):
        return shell
    return shutil.which(os.path.basename(shell))


def _first(aliases: dict[str, str], functions: dict[str, str], kind: str) -> tuple[str, str]:
    if aliases:
        return next(iter(aliases)), "an alias"
    name = next(iter(functions), "?")
    if kind == "fish" and f"alias {name} " in functions.get(name, ""):  # its --description
        return name, "an alias"
    return name, "a function"
