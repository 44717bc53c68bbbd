"""QueueMe 0.0.14's exceptions, for `from qme.main import Queue` and scripts written
for QueueMe (`from qme.exceptions import NotSupportedError`): the same classes,
bases and messages. qme's own library raises `qme.errors.QmeError` and its kinds;
`qme.main` turns those into these.

After QueueMe 0.0.14 by Vanessa Sochat (Mozilla Public License 2.0).
"""

from __future__ import annotations


class MissingEnvironmentVariable(RuntimeError):
    """Thrown if a required environment variable is not provided."""

    def __init__(self, varname, *args):
        super().__init__(*args)
        self.varname = varname

    def __str__(self):
        return f"Missing environment variable '{self.varname}' is required"


class InvalidDatabaseFilename(ValueError):
    pass


class DirectoryNotFoundError(FileNotFoundError):
    """Thrown if a directory is not found"""

    def __init__(self, dirname, reason, *args):
        super().__init__(*args)
        self.dirname, self.reason = dirname, reason

    def __str__(self):
        return f"{self.dirname} {self.reason}."


class TaskError(RuntimeError):
    """Abstract base class for any kind of TaskError."""

    def __init__(self, taskid=None, reason=None, *args):
        super().__init__(*args)
        self.taskid = taskid or ""
        self.reason = reason or "There was a problem with task"

    def __str__(self):
        return f"{self.reason} {self.taskid}"


class MultipleTasksExistError(TaskError):
    """Thrown if multiple tasks exist."""

    def __init__(self, taskid, *args):
        super().__init__(taskid, "More than one task found for", *args)


class TaskNotFoundError(TaskError):
    """Thrown if task does not exist."""

    def __init__(self, taskid, *args):
        super().__init__(taskid, "Cannot find task", *args)


class NoTasksError(TaskError):
    """Thrown if tasks are requested, but there are none"""

    def __init__(self, *args):
        super().__init__(None, "There are no tasks in the database.", *args)


class MissingImportError(ImportError):
    """Thrown if a library is missing."""

    def __init__(self, name, reason, *args):
        super().__init__(*args)
        self.name, self.reason = name, reason

    def __str__(self):
        return f"{self.name} {self.reason}."


class NotSupportedError(NotImplementedError):
    """Thrown if functionality isn't supported, and not implemented."""

    def __init__(self, reason, *args):
        super().__init__(*args)
        self.reason = reason

    def __str__(self):
        return self.reason


class UnrecognizedTargetError(ValueError):
    """Thrown if an unrecognized target is given for an action"""

    def __init__(self, name, reason="", *args):
        super().__init__(*args)
        self.name, self.reason = name, reason

    def __str__(self):
        return f"Unrecognized target {self.name} {self.reason}."


class UnrecognizedExecutorError(UnrecognizedTargetError):
    """Thrown if an unrecognized executor is asked for"""

    def __init__(self, name, reason="is not a known executor", *args):
        super().__init__(name, reason, *args)


class OutputParsingError(ValueError):
    """Thrown if an output cannot be correctly parsed"""

    def __init__(self, reason="", *args):
        super().__init__(*args)
        self.reason = reason

    def __str__(self):
        return self.reason


class MissingDatabaseString(RuntimeError):
    """Thrown if a database string is required and not provided"""

    def __init__(self, reason=None, *args):
        super().__init__(*args)
        self.reason = reason

    def __str__(self):
        return self.reason or (
            "A database url must be defined to use a relational database. "
            "Set with qme config --database"
        )


class DatabaseStringFormatError(RuntimeError):
    """Thrown if database prefix is not supported"""

    def __str__(self):
        return "Database must start with sqlite, filesystem, mysql+pymysql, or postgres."
