"""Which typed commands a session does not record: a leading space, qme's own
commands (they record themselves), the ignore list, and the secrets filter."""

from __future__ import annotations

import os
import re

# In the spirit of atuin's secrets_filter: tokens with a recognisable shape, and
# values given to options or variables whose name says they are secret.
SECRET_PATTERNS = [
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"aws_secret_access_key",
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"glpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack tokens
    r"hooks\.slack\.com/services/",
    r"[sr]k_live_[0-9A-Za-z]{20,}",  # Stripe
    r"AIza[0-9A-Za-z_-]{35}",  # Google API key
    r"npm_[A-Za-z0-9]{36}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+",  # JWT
    r"(?i:authorization:\s*(bearer|basic|token)\s)",
    r"(?i:(password|passwd|secret|token|api[_-]?key|access[_-]?key)\w*\s*[=:]\s*\S)",
    r"(?i:--?(password|passwd|secret|token|api-key)(=|\s+)\S)",
    r"://[^/\s:@]+:[^/\s@]+@",  # credentials in a URL
    r"\bcurl\b.*\s(?:-u|--user|-U|--proxy-user)(?:=|\s*)[^\s:]+:\S",  # curl -u user:password
]
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
