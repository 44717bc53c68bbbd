"""QueueMe 0.0.14's own test suite, unchanged, against this qme.

The tests come from QueueMe's sdist on PyPI, pinned by version and sha256
(scripts/queueme.sh); only their invocation is ours: pytest run from a folder of
its own, on this Python (the installed qme), with no configuration but theirs.
"""

from __future__ import annotations

import os
import subprocess
import sys

from queueme014 import prepared

QUEUEME_TESTS = {
    "test_executor_shell.py": 1,
    "test_executor_slurm.py": 1,
    "test_filesystem.py": 2,
    "test_relational.py": 2,
}


def test_queueme_0_0_14_own_suite_passes(tmp_path):
    suite = prepared() / "suite"
    assert sorted(p.name for p in suite.glob("test_*.py")) == sorted(QUEUEME_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # none of qme's settings
    env = {**os.environ, "HOME": str(tmp_path)}  # QueueMe's default home, ~/.qme
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(suite),
            str(suite),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    wanted = sum(QUEUEME_TESTS.values())
    assert f"{wanted} passed" in report and "skipped" not in report, report
