"""Settings: command-line flag > environment > `$QME_HOME/config.ini` > default.

`config.ini` keeps QueueMe's layout: general keys in `[DEFAULT]`, executor keys
in `[executor.NAME]`. `configparser` is imported only when the file exists, and
paths are plain strings (no pathlib), because `qme run` reads settings on every
command.
"""

from __future__ import annotations

import os

from qme import console
from qme.errors import ConfigError

CONFIG_FILE = "config.ini"
GENERAL_SECTION = "DEFAULT"
EXECUTOR_SECTION_PREFIX = "executor."


class Option:
    """A general setting: its environment variable, default, help, and how a value
    is checked: parse(text) returns the value or raises ValueError, and accepted
    says which values it takes (a plain class: `collections` costs `qme run` more
    start-up time than it is worth)."""

    __slots__ = ("env", "default", "help", "parse", "accepted")

    def __init__(self, env: str, default: str, help: str, parse=str, accepted: str = "any text"):
        self.env, self.default, self.help = env, default, help
        self.parse, self.accepted = parse, accepted


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(text) from None
    if seconds - seconds != 0 or seconds < 0:  # nan, inf (without importing math)
        raise ValueError(text)
    return seconds


def _level(text: str) -> str:
    if text.strip().upper() not in console.LEVELS:
        raise ValueError(text)
    return text.strip().upper()


def _on_off(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("on", "off"):
        raise ValueError(text)
    return value == "on"


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ConfigError:
        raise ValueError(text) from None


def _patterns(text: str) -> list[str]:
    """Regular expressions, one per line (each is compiled to check it)."""
    import re

    found = [line.strip() for line in text.splitlines() if line.strip()]
    for pattern in found:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern}: {exc}") from None
    return found


def _store(text: str) -> str:
    if not text.strip():
        raise ValueError(text)
    return text


def _notify_after(text: str) -> float | None:
    """Seconds, or None for off."""
    return None if text.strip().lower() == "off" else _seconds(text)


def _urls(text: str) -> list[str]:
    """apprise URLs, separated by commas, spaces or lines (each SCHEME://…)."""
    found = text.replace(",", " ").split()
    for url in found:
        if "://" not in url:
            raise ValueError(f"{url} is not a URL")
    return found


def _terminal(text: str) -> str:
    value = text.strip().lower()
    if value not in ("auto", "osc777", "osc9", "bell", "off"):
        raise ValueError(text)
    return value


def _web_url(text: str) -> str:
    value = text.strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(text)
    return value


WATCH_FLOOR = 30.0  # seconds: the watcher asks a scheduler at most this often


def _watch_interval(text: str) -> float:
    seconds = _seconds(text)
    if seconds < WATCH_FLOOR:
        raise ValueError(f"less than {WATCH_FLOOR:g} seconds")
    return seconds


OPTIONS: dict[str, Option] = {
    "database": Option(
        "QME_DATABASE",
        "sqlite",
        "store: sqlite, sqlite://FILE, filesystem, postgresql, mysql+pymysql (or a full URL)",
        _store,
        "sqlite, sqlite://FILE, filesystem, postgresql, mysql+pymysql, or a server's URL",
    ),
    "database_string": Option(
        "QME_DATABASE_STRING",
        "",
        "sqlite: file name in QME_HOME (default qme.db); filesystem: folder (default "
        "database); postgresql, mysql: user:password@host/dbname",
    ),
    "max_output": Option(
        "QME_MAX_OUTPUT",
        "1M",
        "bytes kept per stream (K/M/G suffixes, 0 = everything); head and tail are kept",
        _size,
        "a size of 0 or more: bytes, or with K, M or G (512K, 16M); 0 keeps everything",
    ),
    "busy_timeout": Option(
        "QME_BUSY_TIMEOUT",
        "15",
        "seconds a write waits for a locked SQLite database",
        _seconds,
        "a number of seconds, 0 or more (15, 2.5)",
    ),
    "log_level": Option(
        "QME_LOG_LEVEL",
        "WARNING",
        "DEBUG, INFO, WARNING, ERROR or CRITICAL",
        _level,
        "DEBUG, INFO, WARNING, ERROR or CRITICAL",
    ),
    "ignore": Option(
        "QME_IGNORE",
        "vi vim nvim nano emacs less more most man top htop btop tmux screen",
        "programs whose commands a shell session (qme on) does not record",
    ),
    "secrets_filter": Option(
        "QME_SECRETS_FILTER",
        "on",
        "on: a shell session skips commands that carry secrets",
        _on_off,
        "on or off",
    ),
    "mcp_run": Option(
        "QME_MCP_RUN",
        "off",
        "on: qme mcp offers AI assistants a tool that runs commands as you",
        _on_off,
        "on or off",
    ),
    "redact": Option(
        "QME_REDACT",
        "",
        "your own secrets' patterns (regular expressions, one per line), replaced by "
        "[redacted] in commands and output before they are stored, as the built-in ones are",
        _patterns,
        "regular expressions, one per line",
    ),
    "notify_after": Option(
        "QME_NOTIFY_AFTER",
        "10",
        "a task that ran longer than this many seconds notifies when it ends (0: every "
        "task; off: none)",
        _notify_after,
        "a number of seconds, 0 or more, or off",
    ),
    "notify_cancelled": Option(
        "QME_NOTIFY_CANCELLED",
        "off",
        "on: tasks the user cancelled (Ctrl-C, exit 130 or 143, qme cancel) notify too",
        _on_off,
        "on or off",
    ),
    "notify_urls": Option(
        "QME_NOTIFY_URLS",
        "",
        "apprise URLs a notification goes to (ntfy://…, mailto://…, json://host/path), "
        "separated by commas; needs apprise (pip install 'qme[notify]')",
        _urls,
        "apprise URLs (SCHEME://…), separated by commas or spaces",
    ),
    "notify_terminal": Option(
        "QME_NOTIFY_TERMINAL",
        "auto",
        "how the terminal a command ran in is told: auto (by the terminal), osc777, osc9, "
        "bell or off",
        _terminal,
        "auto, osc777, osc9, bell or off",
    ),
    "dashboard_url": Option(
        "QME_DASHBOARD_URL",
        "",
        "the dashboard's address (http://host:port), for a link to the task in notifications",
        _web_url,
        "an http:// or https:// URL, or nothing",
    ),
    "watch_interval": Option(
        "QME_WATCH_INTERVAL",
        "30",
        "seconds between the watcher's questions to Slurm or a container engine about "
        "the jobs it follows (30 or more)",
        _watch_interval,
        f"a number of seconds, {WATCH_FLOOR:g} or more",
    ),
}


# QueueMe 0.0.14's names for settings qme names otherwise.
QUEUEME_NAMES = {"database_string": "databaseconnect"}


def default_home() -> str:
    return os.path.expanduser(os.environ.get("QME_HOME") or "~/.qme")


def parse_size(text: str) -> int:
    """'8M' -> 8388608. Raises ConfigError for anything else."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    suffix = raw[-1:] if raw[-1:] in units else ""
    number = raw[: len(raw) - len(suffix)]
    try:
        value = int(float(number) * units[suffix])
    except ValueError:
        raise ConfigError(f"'{text}' is not a size (examples: 8M, 512K, 0)") from None
    if value < 0:
        raise ConfigError(f"'{text}' is not a size: it is negative")
    return value


def parse_value(key: str, text: str, source: str):
    """A general setting's value parsed by its Option; ConfigError, one line naming
    the setting, its value, its source and the values it accepts, when it is not
    one of them."""
    option = OPTIONS[key]
    try:
        return option.parse(text)
    except ValueError as exc:
        reason = str(exc) if str(exc) != text else ""
        raise ConfigError(
            f"setting {key} = {text!r} from {source} is not accepted"
            f"{f' ({reason})' if reason else ''}: {key} takes {option.accepted}"
        ) from None


class Settings:
    """The effective configuration and where each value came from."""

    def __init__(self, home: str, overrides: dict[str, str] | None = None):
        self.home = home
        self.overrides = overrides or {}
        self._file_values: dict[str, dict[str, str]] | None = None

    @classmethod
    def load(cls, home: str | os.PathLike | None = None, **overrides: str | None) -> Settings:
        home_path = os.path.expanduser(os.fspath(home)) if home else default_home()
        return cls(
            home=os.path.abspath(home_path),
            overrides={k: v for k, v in overrides.items() if v is not None},
        )

    @property
    def file_values(self) -> dict[str, dict[str, str]]:
        """config.ini's sections, read on first use: a broken file raises ConfigError
        only where it is needed, so `qme run` can still run the command."""
        if self._file_values is None:
            self._file_values = _read_file(self.config_file)
        return self._file_values

    @property
    def config_file(self) -> str:
        return os.path.join(self.home, CONFIG_FILE)

    def lookup(self, key: str) -> tuple[str, str]:
        """Return (value, source) for a general setting."""
        option = OPTIONS[key]
        if key in self.overrides:
            return self.overrides[key], "command line"
        if os.environ.get(option.env):
            return os.environ[option.env], f"environment ({option.env})"
        general = self.file_values.get(GENERAL_SECTION, {})
        if key in general:
            return general[key], f"config file ({self.config_file})"
        if general.get(QUEUEME_NAMES.get(key, "")):  # a config.ini QueueMe 0.0.14 wrote
            return general[QUEUEME_NAMES[key]].lstrip(":/"), f"config file ({self.config_file})"
        return option.default, "default"

    def get(self, key: str) -> str:
        return self.lookup(key)[0]

    def value(self, key: str):
        """A general setting's value, parsed (a size as an int, a level in capitals);
        ConfigError, naming the setting, where it came from and what it accepts,
        when the value is not one it accepts."""
        text, source = self.lookup(key)
        return parse_value(key, text, source)

    @property
    def max_output(self) -> int:
        return self.value("max_output")

    @property
    def busy_timeout(self) -> float:
        return self.value("busy_timeout")

    @property
    def log_level(self) -> str:
        return self.value("log_level")

    def log_level_if_readable(self) -> str | None:
        """log_level, or None when the configuration is broken (a command that needs
        it says so; messages are then filtered at the default level)."""
        try:
            return self.log_level
        except ConfigError:
            return None

    @property
    def redact(self) -> list[str]:
        return self.value("redact")

    @property
    def ignore(self) -> list[str]:
        return self.get("ignore").replace(",", " ").split()

    @property
    def secrets_filter(self) -> bool:
        return self.value("secrets_filter")

    @property
    def mcp_run(self) -> bool:
        return self.value("mcp_run")

    def check(self, key: str, value: str | None, source: str = "--set") -> None:
        """Raise ConfigError unless key is a general setting and value (None: to be
        removed) one it accepts, given by source. The database's kind is checked
        further by the store, which knows its kinds (qme.store.describe)."""
        if key not in OPTIONS:
            raise ConfigError(f"unknown setting '{key}' (settings: {', '.join(OPTIONS)})")
        if value is not None:
            parse_value(key, value, source)

    def problems(self, executors: dict[str, object] | None = None) -> list[str]:
        """One line for each setting whose value is not accepted, wherever it comes
        from, and for each key of config.ini that means nothing: an unknown general
        key, and (given executors: name -> its settings' names) an unknown
        [executor.NAME] section or key. An unreadable config.ini is one line too."""
        try:
            sections = self.file_values
        except ConfigError as exc:
            return [str(exc)]
        found = []
        for key in OPTIONS:
            try:
                self.value(key)
            except ConfigError as exc:
                found.append(str(exc))
        where = f"in {self.config_file}"
        known = set(OPTIONS) | set(QUEUEME_NAMES.values())
        for key in sections.get(GENERAL_SECTION, {}):
            if key not in known:
                found.append(
                    f"unknown setting '{key}' {where}, ignored (settings: {', '.join(OPTIONS)})"
                )
        for section, items in sections.items():
            if section == GENERAL_SECTION:
                continue
            name = section[len(EXECUTOR_SECTION_PREFIX) :]
            if not section.startswith(EXECUTOR_SECTION_PREFIX):
                found.append(f"unknown section [{section}] {where}, ignored")
            elif executors is None:
                continue
            elif name not in executors:
                found.append(
                    f"unknown executor in [{section}] {where}, ignored "
                    f"(executors: {', '.join(executors)})"
                )
            else:
                for key in items:
                    if key not in executors[name]:
                        offered = ", ".join(executors[name]) or "none"
                        found.append(
                            f"unknown setting '{key}' in [{section}] {where}, ignored "
                            f"(its settings: {offered})"
                        )
        return found

    def executor_setting(self, executor: str, key: str, default: str | None = None):
        """QME_<EXECUTOR>_<KEY>, then [executor.NAME] in config.ini, then default."""
        env = f"QME_{executor}_{key}".upper()
        if env in os.environ:
            return os.environ[env]
        return self.file_values.get(EXECUTOR_SECTION_PREFIX + executor, {}).get(key, default)

    def executor_sections(self) -> dict[str, dict[str, str]]:
        prefix = EXECUTOR_SECTION_PREFIX
        return {s[len(prefix) :]: v for s, v in self.file_values.items() if s.startswith(prefix)}

    def save(self, section: str, key: str, value: str | None) -> None:
        """Write one key (None removes it) to config.ini, readable by the owner only."""
        values = {name: dict(items) for name, items in self.file_values.items()}
        if value is None:
            values.get(section, {}).pop(key, None)
        else:
            values.setdefault(section, {})[key] = value
        _write_file(self.config_file, values)
        self._file_values = values


def _parser():
    import configparser

    # A section name nobody uses as the default section, so that [DEFAULT]
    # (QueueMe's section for general keys) does not leak into executor sections.
    return configparser.ConfigParser(interpolation=None, default_section="\0none")


def _read_file(path: str) -> dict[str, dict[str, str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    simple = _read_simple(text)
    if simple is not None:
        return simple
    parser = _parser()
    try:
        parser.read_string(text, source=path)
    except Exception as exc:  # configparser.Error and its many subclasses
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"cannot read {path}: {reason}") from None
    return {section: dict(parser.items(section)) for section in parser.sections()}


def _read_simple(text: str) -> dict[str, dict[str, str]] | None:
    """The sections of a file made only of `[section]`, `key = value`, comments and
    blank lines (what `qme config` writes), read as configparser would, without
    importing it; None for anything else, which configparser reads (and judges)."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0].isspace():
            return None  # a continuation line
        if stripped[0] == "[" and stripped[-1] == "]" and "]" not in stripped[1:-1]:
            name = stripped[1:-1]
            if name in sections or name == "\0none":
                return None
            current = sections[name] = {}
            continue
        key, equals, value = stripped.partition("=")
        key = key.strip().lower()
        if current is None or not equals or not key or ":" in key or key in current:
            return None
        current[key] = value.strip()
    return sections


def _write_file(path: str, values: dict[str, dict[str, str]]) -> None:
    parser = _parser()
    for section, items in values.items():
        parser[section] = items
    from qme import private

    private.make_dir(os.path.dirname(path))
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        parser.write(handle)
    os.replace(tmp, path)
