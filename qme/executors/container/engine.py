"""Talking to a container engine (docker, podman) through its own command line.

The engine is called as the task called it: the same program and global options
(`docker -H …`), and the environment variables that say which daemon or store it
used, as they were when the command ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from qme.errors import QmeError

TIMEOUT = 60.0


class EngineError(QmeError):
    """The engine is missing, or refused a request."""


class Engine:
    def __init__(self, data: dict):
        self.program = data.get("engine") or "docker"
        self.args = list(data.get("engine_args") or [])
        self.overrides = dict(data.get("engine_env") or {})
        self.env = {**os.environ, **self.overrides}

    @property
    def key(self) -> tuple:
        """Containers of engines with equal keys can be asked about in one call."""
        return (self.program, tuple(self.args), tuple(sorted(self.overrides.items())))

    def argv(self, *args: str) -> list[str]:
        return [self.program, *self.args, *args]

    def run(self, *args: str, check: bool = True, timeout: float = TIMEOUT):
        """The finished `ENGINE ARGS…` (stdout and stderr as text)."""
        try:
            done = subprocess.run(
                self.argv(*args),
                capture_output=True,
                text=True,
                errors="replace",
                env=self.env,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
            )
        except FileNotFoundError:
            raise EngineError(f"{self.program} is not installed here (not on PATH)") from None
        except subprocess.TimeoutExpired:
            raise EngineError(
                f"{self.program} {args[0]} did not answer in {timeout:.0f} s"
            ) from None
        if check and done.returncode != 0:
            raise EngineError(first_line(done.stderr) or f"{self.program} {args[0]} failed")
        return done

    def open(self, *args: str) -> subprocess.Popen:
        """`ENGINE ARGS…` started, its stdout and stderr on one pipe (for streaming)."""
        try:
            return subprocess.Popen(
                self.argv(*args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        except FileNotFoundError:
            raise EngineError(f"{self.program} is not installed here (not on PATH)") from None

    def inspect(self, containers: list[str]) -> dict[str, dict]:
        """Container (as given) -> its `inspect` record, for those that exist."""
        done = self.run("container", "inspect", *containers, check=False)
        try:
            records = json.loads(done.stdout or "[]")
        except ValueError:
            records = None
        if not isinstance(records, list):
            raise EngineError(first_line(done.stderr) or f"{self.program} inspect failed")
        found = {}
        for wanted in containers:
            for record in records:
                name = record.get("Name", "").lstrip("/")
                if record.get("Id", "").startswith(wanted) or name == wanted:
                    found[wanted] = record
        return found

    def exit_code_from_events(self, container: str, since: float) -> int | None:
        """The exit code the engine's event log has for a container that is gone."""
        done = self.run(*self.events_args(container, since), check=False)
        for line in reversed(done.stdout.splitlines()):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("Status") == "died" and event.get("ContainerExitCode") is not None:
                return int(event["ContainerExitCode"])  # podman
            code = event.get("Actor", {}).get("Attributes", {}).get("exitCode")  # docker
            if event.get("Action") == "die" and code is not None:
                return int(code)
        return None

    def events_args(self, container: str, since: float) -> list[str]:
        """Past events about one container as JSON lines, without waiting for more."""
        filters = ["--filter", f"container={container}", "--format", "{{json .}}"]
        if os.path.basename(self.program).startswith("podman"):
            filters[-1] = "json"
            return ["events", "--stream=false", "--since", str(int(since)), *filters]
        return [
            "events",
            "--since",
            str(int(since)),
            "--until",
            str(int(time.time()) + 1),
            *filters,
        ]


def first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
