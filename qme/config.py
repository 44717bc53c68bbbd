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
    """A general setting: its environment variable, default and help (a plain
    class: `collections` costs `qme run` more start-up time than it is worth)."""

    __slots__ = ("env", "default", "help")

    def __init__(self, env: str, default: str, help: str):
        self.env, self.default, self.help = env, default, help


OPTIONS: dict[str, Option] = {
    "database": Option(
        "QME_DATABASE",
        "sqlite",
        "store: sqlite, sqlite://FILE, filesystem, postgresql, mysql+pymysql (or a full URL)",
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
    ),
    "busy_timeout": Option(
        "QME_BUSY_TIMEOUT", "15", "seconds a write waits for a locked SQLite database"
    ),
    "log_level": Option("QME_LOG_LEVEL", "WARNING", "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    "ignore": Option(
        "QME_IGNORE",
        "vi vim nvim nano emacs less more most man top htop btop tmux screen",
        "programs whose commands a shell session (qme on) does not record",
    ),
    "secrets_filter": Option(
        "QME_SECRETS_FILTER", "on", "on: a shell session skips commands that carry secrets"
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


_CHECKED = ("max_output", "busy_timeout", "log_level", "secrets_filter")


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

    @property
    def max_output(self) -> int:
        return parse_size(self.get("max_output"))

    @property
    def busy_timeout(self) -> float:
        value = self.get("busy_timeout")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if seconds < 0:
            raise ConfigError(f"busy_timeout is a number of seconds, not '{value}'")
        return seconds

    @property
    def log_level(self) -> str:
        level = self.get("log_level").upper()
        if level not in console.LEVELS:
            raise ConfigError(
                f"log level '{level}' is not one of {', '.join(sorted(console.LEVELS))}"
            )
        return level

    def log_level_if_readable(self) -> str | None:
        """log_level, or None when the configuration is broken (a command that needs
        it says so; messages are then filtered at the default level)."""
        try:
            return self.log_level
        except ConfigError:
            return None

    @property
    def ignore(self) -> list[str]:
        return self.get("ignore").replace(",", " ").split()

    @property
    def secrets_filter(self) -> bool:
        value = self.get("secrets_filter").strip().lower()
        if value not in ("on", "off"):
            raise ConfigError(f"secrets_filter is on or off, not '{value}'")
        return value == "on"

    def check(self, key: str, value: str | None) -> None:
        """Raise ConfigError unless key is a general setting and value (None: to be
        removed) one it accepts. The database is checked by the store, which knows
        its kinds (qme.store.describe)."""
        if key not in OPTIONS:
            raise ConfigError(f"unknown setting '{key}' (settings: {', '.join(OPTIONS)})")
        if value is not None and key in _CHECKED:  # each is read through its property
            getattr(Settings(self.home, overrides={key: value}), key)

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
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        parser.write(handle)
    os.replace(tmp, path)
