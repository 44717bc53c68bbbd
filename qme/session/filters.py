"""Which typed commands a session does not record: a leading space, qme's own
commands (they record themselves), the ignore list, and the secrets filter."""

from __future__ import annotations

import os
import re

from qme import redact

# In the spirit of atuin's secrets_filter: tokens with a recognisable shape, and
# values given to options or variables whose name says they are secret. One list
# with what the writer redacts from every record (qme/redact.py).
SECRET_PATTERNS = redact.SECRET_PATTERNS
_SECRETS = re.compile("|".join(f"(?:{p})" for p in SECRET_PATTERNS))
_ASSIGNMENT = re.compile(r"\w+=")


def first_program(command: str) -> str:
    """The program a command line starts with, past VAR=value words and sudo."""
    for word in command.split():
        if _ASSIGNMENT.match(word) or word in ("sudo", "command", "exec", "nohup", "time"):
            continue
        return os.path.basename(word)
    return ""


class CommandFilter:
    def __init__(self, ignore: list[str], secrets_filter: bool):
        self.ignore = set(ignore)
        self.secrets_filter = secrets_filter

    def reason_to_skip(self, command: str) -> str | None:
        if not command.strip():
            return "empty"
        if command[0].isspace():
            return "starts with a space"
        program = first_program(command)
        if program == "qme":
            return "qme records its own commands"
        if program in self.ignore:
            return f"{program} is in the ignore list"
        if self.secrets_filter and _SECRETS.search(command):
            return "looks like it carries a secret"
        return None
