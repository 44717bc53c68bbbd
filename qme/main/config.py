"""QueueMe 0.0.14's `Config`: its home and `config.ini`, as `qme.main.Queue.config`.

Like QueueMe's, it creates the home and, when there is none, QueueMe's default
`config.ini` (`database = filesystem`), which qme reads too. Unlike QueueMe's,
its default home honours `QME_HOME`, as qme does.
"""

from __future__ import annotations

import configparser
import io
import os

from qme import private
from qme.config import default_home

DEFAULT_CONFIG = """[DEFAULT]
database = filesystem
databaseconnect =

[executor.shell]

[executor.slurm]
sacct_format = jobid,jobname,partition,alloccpus,elapsed,state,exitcode
"""


class Config:
    def __init__(self, config_dir: str | None = None, load: bool = True):
        home = config_dir or default_home()
        private.make_dir(home)
        self.configfile = os.path.join(home, "config.ini")
        if not os.path.exists(self.configfile):
            private.write_file(self.configfile, DEFAULT_CONFIG.encode())
        if load:
            self.read()

    def get(self, section: str, key: str, fallback=None):
        """config.get(section, key); None (or fallback) when it is not set."""
        return self.config.get(section, key, fallback=fallback)

    def update(self, section: str, key: str, value: str, save: bool = False) -> None:
        if section not in self.config:
            self.config[section] = {}
        self.config[section][key] = value
        if save:
            self.save()

    def save(self) -> None:
        text = io.StringIO()
        self.config.write(text)
        private.write_file(self.configfile, text.getvalue().encode())

    def read(self, configfile: str | None = None) -> None:
        config = configparser.ConfigParser(interpolation=None)
        config.read(configfile or self.configfile, encoding="utf-8")
        self.config = config
