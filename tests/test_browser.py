"""The dashboard end to end in a real headless Chromium (Debian's, driven by Playwright).

Each test starts `qme start` on a free port, records tasks from outside with
`qme run` (or straight into the store), and watches the page change without a
reload. Every request to anything but this machine is blocked and reported: the
dashboard must work with no internet at all. Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import unavailable
from test_web import HOSTILE, Dashboard, record, wait_for

from qme import Queue

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # reported by the browser fixture: a failure under CI
    expect = sync_playwright = None

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 8000


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        unavailable("Python Playwright is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def dashboard(qme_home):
    served = Dashboard(qme_home, env={"QME_SOCKET_UPDATE_SECONDS": "1"})
    yield served
    assert served.stop() == 0


@pytest.fixture
def queue(qme_home):
    q = Queue(config_dir=qme_home)
    yield q
    q.close()


class Watched:
    """A page plus what must never happen on it: requests leaving this machine,
    dialogs (alert, confirm) and script errors."""

    def __init__(self, page):
        self.page = page
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.route("**/*", self._only_local)
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.set_default_timeout(TIMEOUT_MS)

    def _only_local(self, route):
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()


@pytest.fixture
def page(browser, dashboard):
    context = browser.new_context(viewport={"width": 1440, "height": 860})
    watched = Watched(context.new_page())
    watched.page.goto(dashboard.url)  # the printed URL: token -> cookie -> the table
    assert watched.page.url == dashboard.base + "/"
    watched.page.wait_for_selector('#live[data-state="live"]')
    yield watched.page
    context.close()
    assert watched.outside == [], "the dashboard asked for something off this machine"
    assert watched.dialogs == [] and watched.errors == []


def qme_run(qme_home: Path, *command: str) -> subprocess.Popen:
    """`qme run COMMAND` from outside the dashboard, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "qme", "run", *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "QME_HOME": str(qme_home)},
    )


def test_tasks_appear_and_change_live(page, qme_home, tmp_path):
    page.wait_for_selector("#empty:not([hidden])")
    page.evaluate("window.notReloaded = true")
    slow = qme_run(qme_home, "sh", "-c", "sleep 1.5; echo done")
    page.wait_for_selector('tr[data-status="running"]')
    assert slow.wait(timeout=10) == 0
    page.wait_for_selector('tr[data-status="complete"]')
    assert qme_run(qme_home, "false").wait(timeout=10) == 1
    failed = page.wait_for_selector('tr[data-status="failed"]')
    assert failed.inner_text().split("\t")[:3] == ["failed", "1", "shell"]
    rows = page.locator("tbody tr")
    assert rows.count() == 2 and "false" in rows.nth(0).inner_text()  # newest first
    assert page.inner_text(".pager .count") == "1–2 of 2"
    assert page.evaluate("window.notReloaded") is True

    # A few more, for a screenshot that shows what a table looks like.
    qme_run(qme_home, "-m", "nightly backup", "sh", "-c", "echo copied").wait(timeout=10)
    qme_run(qme_home, "ls", "-la", "/").wait(timeout=10)
    running = qme_run(qme_home, "sh", "-c", "echo compiling; sleep 30")
    try:
        expect(page.locator("tbody tr")).to_have_count(5)
        page.wait_for_selector('tr[data-status="running"] >> text=compiling')
        page.screenshot(path=str(tmp_path / "dashboard-table.png"))
    finally:
        running.terminate()
        running.wait(timeout=10)


def test_output_of_a_running_task_grows_on_its_page(page, qme_home, queue, dashboard, tmp_path):
    script = 'for i in 1 2 3 4 5 6 7 8; do echo "line $i"; sleep 0.3; done; echo oops >&2'
    runner = qme_run(qme_home, "sh", "-c", script)
    task = wait_for(lambda: queue.list(status="running"), what="the task")[0]
    page.goto(f"{dashboard.base}/tasks/{task.id}")
    expect(page.locator("#output")).to_contain_text("line 2")
    early = page.inner_text("#output")
    assert "line 8" not in early
    expect(page.locator("#output")).to_contain_text("line 8")
    expect(page.locator("#error")).to_contain_text("oops")
    page.wait_for_selector('.headline .status[data-status="complete"]')
    assert runner.wait(timeout=10) == 0
    lines = page.inner_text("#output").splitlines()
    assert lines == [f"line {i}" for i in range(1, 9)]  # each once, in order
    assert len(early) < len(page.inner_text("#output"))
    page.screenshot(path=str(tmp_path / "dashboard-task-live.png"))


def test_search_highlights_and_colours_render(page, queue, dashboard, tmp_path):
    output = (
        b"\x1b[1;32mok\x1b[0m compiled 12 files\r\n"
        b"\x1b[31merror\x1b[0m: disk full on /dev/sda1\r\n"
        b"retrying in 5s\r\n"
        b"\x1b[38;5;208mwarning\x1b[0m: the error above repeats\r\n"
    )
    task = record(queue, "make deploy", output=output, error=b"Error: exit 2\n", returncode=2)
    page.goto(f"{dashboard.base}/tasks/{task.id}")
    expect(page.locator("#output")).to_contain_text("retrying")
    assert page.inner_text("#output").splitlines()[1] == "error: disk full on /dev/sda1"
    colour = page.eval_on_selector(
        "#output .line:nth-of-type(1) span", "e => getComputedStyle(e).color"
    )
    assert colour == "rgb(140, 194, 101)"  # SGR 32, green
    page.fill("#find", "error")
    assert page.inner_text("#find-count") == "3 matches"  # two in output, one in error
    marks = page.locator("#output mark")
    assert marks.count() == 2 and marks.nth(0).inner_text() == "error"
    yellow = marks.nth(0).evaluate("e => getComputedStyle(e).backgroundColor")
    assert yellow == "rgb(255, 225, 77)"
    page.press("#find", "Enter")
    assert page.locator("mark.current").count() == 1
    page.fill("#find", "")
    assert page.locator("mark").count() == 0
    page.fill("#find", "disk")
    page.screenshot(path=str(tmp_path / "dashboard-task.png"))


def test_rerun_and_delete_from_the_table(page, qme_home, queue):
    assert qme_run(qme_home, "echo", "again").wait(timeout=10) == 0
    page.wait_for_selector("tbody tr")
    page.click('tbody tr button[data-action="rerun"]')
    page.wait_for_selector(".notice >> text=rerunning task")
    expect(page.locator("tbody tr")).to_have_count(2)
    tasks = queue.list()
    assert len(tasks) == 2 and tasks[0].rerun_of == tasks[1].id
    page.wait_for_selector(f'tr[data-id="{tasks[0].id}"][data-status="complete"]')

    page.click(f'tr[data-id="{tasks[1].id}"] button[data-action="delete"]')
    dialog = page.wait_for_selector("dialog#confirm[open]")
    assert "Delete task" in dialog.inner_text() and "echo again" in dialog.inner_text()
    page.click('dialog#confirm button[value="cancel"]')  # changed my mind
    assert page.locator("tbody tr").count() == 2
    page.click(f'tr[data-id="{tasks[1].id}"] button[data-action="delete"]')
    page.click('dialog#confirm button[value="ok"]')
    page.wait_for_selector(f".notice >> text=deleted task {tasks[1].short_id}")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert [t.id for t in queue.list()] == [tasks[0].id]


def test_cancel_from_the_task_page(page, qme_home, queue, dashboard):
    runner = qme_run(qme_home, "sleep", "60")
    task = wait_for(lambda: queue.list(status="running"), what="the task")[0]
    page.goto(f"{dashboard.base}/tasks/{task.id}")
    page.click('button[data-action="cancel"]')
    page.wait_for_selector(".notice >> text=sent SIGTERM")
    page.wait_for_selector('.headline .status[data-status="cancelled"]')
    assert runner.wait(timeout=10) == 128 + 15
    assert page.locator('button[data-action="cancel"]').is_hidden()


def test_a_hostile_task_runs_nothing_in_the_browser(page, queue, dashboard, tmp_path):
    payload = HOSTILE.replace("alert(", "window.pwned=(")
    escapes = (
        b"\x1b]0;pwned title\x07"  # set the window title
        b"\x1b]8;;javascript:window.pwned=1\x07click\x1b]8;;\x07"  # a hyperlink
        b"\x1b]52;c;cHduZWQ=\x07"  # write the clipboard
        b"\x1b[2J\x1b[H"  # clear the screen
    )
    task = record(
        queue,
        f"echo '{payload}'",
        output=payload.encode() + b"\n" + escapes + b"after\n",
        error=b"</pre><script>window.pwned=1</script>",
        message=payload,
        cwd=str(tmp_path / payload.replace("/", "|")),
        host='"><svg onload=window.pwned=1>',
    )
    for url in ("/", "/?q=pwned", f"/tasks/{task.id}"):
        page.goto(dashboard.base + url)
        page.wait_for_selector('#live[data-state="live"]')
        assert page.evaluate("window.pwned") is None
        assert page.locator("main script, main img, main svg, main iframe").count() == 0
        assert page.locator('a[href^="javascript"]').count() == 0
        assert page.title().endswith("· qme") and "pwned title" not in page.title()
    assert page.inner_text("#output").startswith(payload)  # shown as the text it is
    assert "click" in page.inner_text("#output") and "after" in page.inner_text("#output")
    assert page.inner_text("#error") == "</pre><script>window.pwned=1</script>"
    assert page.inner_text(".message") == payload


def test_the_api_link_and_a_missing_task(page, dashboard):
    page.click("text=API")
    assert '"tasks"' in page.inner_text("body")
    page.goto(f"{dashboard.base}/tasks/shell-00000000")
    assert "no task matches" in page.inner_text("body")


def test_narrow_window_stacks_the_columns(page, queue, dashboard):
    task = record(queue, "ls", output=b"a\nb\n")
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(f"{dashboard.base}/tasks/{task.id}")
    output, error = (page.locator(f"#{s}").bounding_box() for s in ("output", "error"))
    assert error["y"] > output["y"]  # one above the other


def test_slurm_page_shows_the_job_and_runs_its_actions(page, queue, dashboard, tmp_path):
    output_file = tmp_path / "slurm-4242.out"
    output_file.write_text("hello from the job\n")
    job = {"state": "COMPLETED", "partition": "debug", "exitcode": "0:0"}
    task = record(
        queue,
        "sbatch job.sh",
        executor="slurm",
        output=b"Submitted batch job 4242\n",
        data={"jobid": "4242", "job": job, "outputfile": str(output_file)},
        returncode=0,
    )
    page.goto(f"{dashboard.base}/tasks/{task.id}")
    expect(page.locator(".job h2")).to_have_text("Slurm job 4242")
    expect(page.locator("#data")).to_contain_text("job state")
    expect(page.locator("#data")).to_contain_text("COMPLETED")
    expect(page.locator("#output")).to_have_text("Submitted batch job 4242")
    assert page.locator('button[data-action="cancel"]').is_hidden()  # it has ended
    page.click('button[data-executor-action="output"]')
    expect(page.locator("#action-result pre")).to_have_text("hello from the job\n")
    expect(page.locator("#action-result h2")).to_have_text("output")


def test_slurm_reason_in_the_table_and_accounting_on_the_page(page, queue, dashboard, tmp_path):
    """A real Slurm (tests/test_slurm.py's): a held job's reason under its status;
    a finished job's archived accounting in its page's Accounting section."""
    from test_slurm import answers

    if not answers():
        unavailable("Slurm is not running (scripts/slurm.sh start)")
    (tmp_path / "fifty.py").write_text("import time; b = bytearray(50 * 2**20); time.sleep(2)")
    ran = queue.run(["sbatch", "--mem=100M", "--wrap", "python3 fifty.py"], cwd=str(tmp_path))
    held = queue.run(["sbatch", "--hold", "--wrap", "true"], cwd=str(tmp_path))
    try:
        wait_for(lambda: "accounting" in queue.get(ran.id, streams=False).data, timeout=30)
        wait_for(lambda: queue.get(held.id, streams=False).data.get("reason"), timeout=15)
        page.goto(dashboard.base + "/")
        expect(page.locator(f'tr[data-id="{held.id}"] .reason')).to_have_text("JobHeldUser")
        page.goto(f"{dashboard.base}/tasks/{ran.id}")
        section = page.locator("#accounting")
        expect(section).to_be_visible()
        expect(section).to_contain_text("COMPLETED (exit code 0:0)")
        expect(section.locator("dt", has_text="MaxRSS")).to_be_visible()
        expect(section).to_contain_text("100.0 MiB")  # the memory it was given
        assert "accounting" not in page.inner_text("#data")  # shown once, in its section
    finally:
        subprocess.run(["scancel", held.data["jobid"]], capture_output=True)


# -- notifications ------------------------------------------------------------------------

# Wraps window.Notification before the page's scripts run: what the page shows is kept.
CAPTURE_NOTIFICATIONS = """
window.shownNotifications = [];
const RealNotification = window.Notification;
class CapturedNotification extends RealNotification {
  constructor(title, options) {
    window.shownNotifications.push({ title, ...options });
    super(title, options);
  }
}
Object.defineProperty(CapturedNotification, "permission", {
  get: () => RealNotification.permission,
});
CapturedNotification.requestPermission = (...a) => RealNotification.requestPermission(...a);
window.Notification = CapturedNotification;
"""


def test_a_task_that_ends_shows_a_browser_notification(browser, qme_home):
    served = Dashboard(
        qme_home,
        env={
            "QME_SOCKET_UPDATE_SECONDS": "1",
            "QME_NOTIFY_AFTER": "1",
            "QME_DASHBOARD_URL": "http://dashboard.example:5000",
        },
    )
    context = browser.new_context()
    try:
        context.grant_permissions(["notifications"], origin=served.base)
        context.add_init_script(CAPTURE_NOTIFICATIONS)
        watched = Watched(context.new_page())
        page = watched.page
        page.goto(served.url)
        page.wait_for_selector('#live[data-state="live"]')
        assert page.evaluate("Notification.permission") == "granted"
        assert qme_run(qme_home, "true").wait(timeout=10) == 0  # too quick to notify
        assert qme_run(qme_home, "sh", "-c", "sleep 1.2; exit 130").wait(timeout=10) == 130
        assert qme_run(qme_home, "sleep", "1.5").wait(timeout=10) == 0
        wait_for(lambda: page.evaluate("window.shownNotifications.length"), 10, "a notification")
        page.wait_for_timeout(2500)  # two more polls: nothing else, nothing twice
        shown = page.evaluate("window.shownNotifications")
        assert len(shown) == 1, shown
        assert shown[0]["title"] == "qme: complete, exit 0"
        assert shown[0]["body"].startswith("sleep 1.5\ncomplete, exit 0 after 1.")
        task_id = Queue(config_dir=qme_home).get(streams=False).id
        assert shown[0]["tag"] == f"qme-{task_id}"
        assert shown[0]["body"].endswith(f"http://dashboard.example:5000/tasks/{task_id}")
        assert watched.dialogs == [] and watched.errors == []
    finally:
        context.close()
        assert served.stop() == 0
