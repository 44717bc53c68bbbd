"""Files only their owner may read: `$QME_HOME` and everything qme writes in it.

Records hold every command and its output, so they are kept as private as
`~/.bash_history`: folders 0700, files 0600, whatever the umask. Every module
that creates a folder or a file under `$QME_HOME` goes through these helpers
(the store, the spool, the writer child, pending/, the executors' cache,
config.ini, the dashboard's log), so that the rule lives in one place.

Standard library only and no imports beyond `os`: `qme run` calls `open_file`
on its start-up path (qme/pending.py).
"""

from __future__ import annotations

import os

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_dir(path: str | os.PathLike) -> None:
    """Create path and its missing parents as private folders (0700, whatever the
    umask); a folder that exists already is left as it is (see tighten())."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if parent != path:
        make_dir(parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return
    os.chmod(path, DIR_MODE)  # a umask such as 0o277 would have taken more away


def open_file(path: str | os.PathLike, flags: int, mode: int = FILE_MODE) -> int:
    """os.open(path, flags) with O_CLOEXEC; a file it creates is 0600 (the umask can
    only take bits away from that). For a file that may exist already with other
    modes, see tighten()."""
    return os.open(path, flags | os.O_CLOEXEC, mode)


def write_file(path: str | os.PathLike, data: bytes) -> None:
    """Replace path's contents atomically (a temporary file renamed over it), as a
    private file; its folder is created private if missing."""
    path = os.fspath(path)
    make_dir(os.path.dirname(os.path.abspath(path)))
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def tighten(path: str | os.PathLike) -> bool:
    """Make an existing folder 0700 or file 0600 if it allows more (group or others
    may read or enter it). Returns whether anything changed; errors are ignored
    (a file owned by someone else stays as it is)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    wanted = DIR_MODE if os.path.isdir(path) else FILE_MODE
    if mode & 0o777 & ~wanted == 0:
        return False
    try:
        os.chmod(path, mode & 0o777 & wanted)
    except OSError:
        return False
    return True


def tighten_home(home: str | os.PathLike) -> int:
    """Make an existing home private (see tighten()) once: when its folder lets
    others in (a home made by an older qme, with the usual umask), every folder and
    file in it is tightened. Returns how many changed (0: nothing to do, which one
    stat of the home tells)."""
    home = os.fspath(home)
    try:
        mode = os.stat(home).st_mode
    except OSError:
        return 0
    if mode & 0o077 == 0 or not os.path.isdir(home):  # private, or no home at all
        return 0
    changed = int(tighten(home))
    for folder, folders, files in os.walk(home):
        for name in folders + files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                changed += tighten(path)
    return changed


def tighten_home_and_say(home: str | os.PathLike, say) -> None:
    """tighten_home(), and one line through say() when anything changed."""
    changed = tighten_home(home)
    if changed:
        say(
            f"made {os.fspath(home)} private: {changed} folder(s) and file(s) that others "
            "could read are now yours only (folders 0700, files 0600)"
        )
