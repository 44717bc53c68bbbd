"""The executor registry: which executor runs a command, lookup by name, refresh.

Built-ins are known by name here, with their match rules, and their modules are
imported only when used. Third-party executors come from the entry-point group
`qme.executors` (qme registers its built-ins there too, as datasette does with
its default plugins). Reading entry points costs tens of milliseconds, too much
for every `qme run`, so what was found is cached in `$QME_HOME/executors.json`
and read again only when a directory on sys.path changes (installing or removing
a distribution changes its site-packages directory).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections import namedtuple

from qme import console, private
from qme.config import Settings
from qme.errors import ConfigError, QmeError, UnknownExecutor
from qme.executors.base import Executor
from qme.task import Task

GROUP = "qme.executors"
Entry = namedtuple("Entry", "target match")
BUILTIN: dict[str, Entry] = {
    "shell": Entry("qme.executors.shell:ShellExecutor", None),
    "slurm": Entry("qme.executors.slurm:SlurmExecutor", r"^(?:\S*/)?sbatch(?:\s|$)"),
    "docker": Entry(
        "qme.executors.container.oci:DockerExecutor",
        r"^(?:\S*/)?docker(?:\s+-\S*(?:\s+[^-\s]\S*)?)*?\s+(?:container\s+)?run(?:\s|$)",
    ),
    "podman": Entry(
        "qme.executors.container.oci:PodmanExecutor",
        r"^(?:\S*/)?podman(?:\s+-\S*(?:\s+[^-\s]\S*)?)*?\s+(?:container\s+)?run(?:\s|$)",
    ),
    "apptainer": Entry(
        "qme.executors.container.apptainer:ApptainerExecutor",
        r"^(?:\S*/)?(?:apptainer|singularity)(?:\s+-\S*(?:\s+[^-\s]\S*)?)*?\s+(?:exec|run)(?:\s|$)",
    ),
}
DEFAULT = "shell"
CACHE_FILE = "executors.json"
CACHE_VERSION = 1

_plugins: dict[str, dict[str, Entry]] = {}  # home -> name -> entry, for this process


class Registry:
    """The executors a home knows: built-ins and the plugins cached in that home.

    Owned by a Queue (or a writer child) for its own home, so that no lookup ever
    reads or writes another home's plugin cache."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def names(self) -> list[str]:
        return [*BUILTIN, *sorted(self._plugins())]

    def executor_class(self, name: str) -> type[Executor]:
        entry = BUILTIN.get(name) or self._plugins().get(name)
        if entry is None:
            raise UnknownExecutor(name, self.names())
        return _load(entry.target)

    def get(self, name: str) -> Executor:
        return self.executor_class(name)(self.settings)

    def setting_problems(self) -> list[str]:
        """The settings' problems (Settings.problems), config.ini's [executor.NAME]
        sections checked against these executors' settings."""
        try:
            sections = self.settings.executor_sections()
        except ConfigError:
            sections = {}
        if not sections:  # nothing to judge: the plugins (and their cache) are left alone
            return self.settings.problems()
        known = {}
        for name in self.names():
            try:
                known[name] = list(self.executor_class(name).settings)
            except Exception:  # noqa: BLE001 - a broken plugin: its section is not judged
                known[name] = None
        return [
            line
            for line in self.settings.problems({k: v or () for k, v in known.items()})
            if not any(f"[executor.{k}]" in line for k, v in known.items() if v is None)
        ]

    def for_command(self, command: str) -> Executor:
        """The first executor whose match rule fits the start of the command:
        built-ins first, then plugins by name; else the default."""
        for entries in (BUILTIN, self._plugins()):
            for name, entry in entries.items():
                if entry.match and re.match(entry.match, command):
                    return self.get(name)
        return self.get(DEFAULT)

    def for_task(self, task: Task) -> Executor:
        """The task's executor; chosen by its command when it has none yet."""
        return self.get(task.executor) if task.executor else self.for_command(task.command)

    def refresh(self, tasks: list[Task]) -> list[Task]:
        """Let each executor bring its own tasks up to date, in one batch per
        executor; returns the tasks that changed. A task whose executor is not
        installed here only gets the default check (a dead recorder makes it lost)."""
        groups: dict[str, list[Task]] = {}
        for task in tasks:
            groups.setdefault(task.executor, []).append(task)
        changed: list[Task] = []
        for name, group in groups.items():
            try:
                executor = self.get(name)
            except UnknownExecutor:
                executor = Executor(self.settings)
            try:
                changed += executor.refresh(group)
            except (QmeError, OSError) as exc:
                console.debug(f"could not refresh {name} tasks: {exc}")
        return changed

    def _plugins(self) -> dict[str, Entry]:
        return plugins(self.settings.home)


def plugins(home: str) -> dict[str, Entry]:
    """Executors from other distributions: name -> Entry (cached; see above)."""
    if home not in _plugins:
        path = os.path.join(home, CACHE_FILE)
        found = _read_cache(path, _sys_path_stamp())
        if found is None:
            found = _scan()
            # Stamped after: loading the plugins may have written their __pycache__.
            _write_cache(path, _sys_path_stamp(), found)
        _plugins[home] = found
    return _plugins[home]


def _load(target: str) -> type[Executor]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _sys_path_stamp() -> list[str]:
    """Where distributions can be found, and when each place last changed. The
    current directory is left out: `python -m qme` puts it on sys.path, and it
    changes from one command to the next."""
    try:
        here = os.getcwd()
    except OSError:
        here = ""
    stamp = []
    for entry in sys.path:
        if entry and entry != here:
            try:
                stamp.append(f"{entry}:{os.stat(entry).st_mtime_ns}")
            except OSError:
                pass
    return stamp


def _read_cache(path: str, stamp: list[str]) -> dict[str, Entry] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            cached = json.load(handle)
        if cached["version"] != CACHE_VERSION or cached["sys_path"] != stamp:
            return None
        return {name: Entry(*entry) for name, entry in cached["executors"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: str, stamp: list[str], found: dict[str, Entry]) -> None:
    data = {"version": CACHE_VERSION, "sys_path": stamp, "executors": found}
    text = json.dumps({**data, "executors": {k: list(v) for k, v in found.items()}})
    try:
        private.write_file(path, text.encode())  # its folder private, as the store's
    except OSError as exc:
        console.debug(f"could not cache the executor plugins in {path}: {exc}")


# Run by _scan in a Python of its own; sys.path is this process's.
_SCAN = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from qme.executors import scan_here; print(json.dumps(scan_here()))"
)


def _scan() -> dict[str, Entry]:
    """scan_here() in a Python of its own: entry points and plugin modules cost a
    few MiB that would stay for the life of this process (a writer child, a
    session, the dashboard); here if that Python cannot be run."""
    import subprocess

    try:
        done = subprocess.run(
            [sys.executable, "-c", _SCAN, json.dumps(sys.path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=True,
        )
        found = {name: Entry(*entry) for name, entry in json.loads(done.stdout).items()}
    except (OSError, subprocess.SubprocessError, ValueError, TypeError):
        return scan_here()
    if done.stderr and sys.stderr is not None:  # its warnings: broken plugins
        sys.stderr.write(done.stderr.decode(errors="replace"))
    return found


def scan_here() -> dict[str, Entry]:
    """Load every executor registered in the entry-point group; keep those that
    work. An entry for a built-in name must point at the built-in (qme's own)."""
    from importlib.metadata import entry_points

    found: dict[str, Entry] = {}
    every = entry_points()
    group = every.select(group=GROUP) if hasattr(every, "select") else every.get(GROUP, [])
    for point in group:
        if point.name in BUILTIN:
            if point.value != BUILTIN[point.name].target:
                console.warn(
                    f"ignoring executor plugin {point.name} ({point.value}): "
                    f"'{point.name}' is a built-in executor"
                )
            continue
        try:
            cls = point.load()
            if not (isinstance(cls, type) and issubclass(cls, Executor)):
                raise TypeError("not a subclass of qme.executors.base.Executor")
            if getattr(cls, "name", None) != point.name:
                raise TypeError(f"its name is {getattr(cls, 'name', None)!r}, not {point.name!r}")
            if cls.match:
                re.compile(cls.match)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break qme
            console.warn(f"ignoring executor plugin {point.name} ({point.value}): {exc}")
            continue
        found[point.name] = Entry(point.value, cls.match)
    return found
