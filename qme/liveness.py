"""Is the qme process that records a task still alive?

A recorder is identified by the machine's boot id, its pid and its start time,
so neither a reboot nor a reused pid makes a dead recorder look alive.
"""

from __future__ import annotations

import os

_BOOT_ID = "/proc/sys/kernel/random/boot_id"


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def _boot_id() -> str:
    return _read(_BOOT_ID).strip()


def _start_ticks(pid: int) -> str:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return ""
    # Field 22 (starttime); the command name in field 2 may itself contain spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def token(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{_boot_id()}:{pid}:{_start_ticks(pid)}"


def is_alive(recorder: str | None) -> bool:
    """For a token written on this machine: does that process still exist?"""
    if not recorder:
        return False
    boot_id, pid, ticks = recorder.split(":")
    if boot_id != _boot_id():
        return False
    if ticks:
        return _start_ticks(int(pid)) == ticks
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
