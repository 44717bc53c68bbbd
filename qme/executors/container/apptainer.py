"""The apptainer executor: `qme run apptainer|singularity exec|run IMAGE …`.

Such a container is a process of its own, with no daemon and no container id:
qme records it as it records any command (output, exit, resources; the Cancel
button signals it), and keeps the image, the command run in it and the bind
mounts. Its one action inspects the image. Untested here: apptainer cannot be
installed on the machines qme is developed on.
"""

from __future__ import annotations

import json
import os
import subprocess

from qme.errors import QmeError
from qme.executors.base import Executor, action
from qme.executors.container import cli
from qme.executors.container.engine import first_line
from qme.task import Task

REMOTE = (
    "docker://",
    "docker-archive:",
    "oci://",
    "oci-archive:",
    "library://",
    "oras://",
    "shub://",
)


class ApptainerExecutor(Executor):
    """`apptainer exec|run` (and `singularity`): the image, command and binds."""

    name = "apptainer"
    match = (
        r"^(?:\S*/)?(?:apptainer|singularity)(?:\s+-\S*(?:\s+[^-\s]\S*)?)*?\s+(?:exec|run)(?:\s|$)"
    )

    def prepare(self, task: Task) -> None:
        data = cli.apptainer_run(task.argv)
        if data is None:  # forced with --executor: recorded as the shell does
            return
        image = data["image"]
        if image and not image.startswith(REMOTE):
            data["image_path"] = os.path.join(task.cwd, image)
        task.data.update(data)

    @action("the image's labels, definition file and metadata (apptainer inspect)")
    def inspect(self, task: Task) -> dict | str:
        data = task.data
        image = data.get("image_path") or data.get("image")
        if not image:
            raise QmeError(f"task {task.short_id} names no image ({task.command})")
        argv = [data.get("engine", "apptainer"), "inspect", "--json", "--all", image]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        except FileNotFoundError:
            raise QmeError(f"{argv[0]} is not installed here (not on PATH)") from None
        if done.returncode != 0:
            raise QmeError(first_line(done.stderr) or f"{argv[0]} inspect failed")
        try:
            return json.loads(done.stdout)
        except ValueError:
            return done.stdout
