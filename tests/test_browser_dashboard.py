"""The dashboard in a real headless Chromium: notes and tags edited in place, the
statistics page (screenshot in docs/img/)."""

from __future__ import annotations

import time
from pathlib import Path

from test_browser import Watched, browser, dashboard, expect, page, queue  # noqa: F401
from test_web import record

IMG = Path(__file__).resolve().parent.parent / "docs" / "img"


def test_a_note_and_tags_edited_in_place(page, queue, dashboard):  # noqa: F811
    task = record(queue, "make deploy", output=b"done\n")
    page.goto(f"{dashboard.base}/tasks/{task.id}")
    page.wait_for_selector('#live[data-state="live"]')
    page.click("#note-editor summary")
    page.fill("#note-text", "flaky on <b>Mondays</b>")
    page.click("#note-form button")
    expect(page.locator(".headline ~ .message")).to_have_text("flaky on <b>Mondays</b>")
    page.fill("#tag-input", "CI release")
    page.press("#tag-input", "Enter")
    expect(page.locator("#tags .tag")).to_have_count(2)
    page.click('#tags .tag:has-text("ci") button')
    expect(page.locator("#tags .tag")).to_have_count(1)

    stored = queue.get(task.id, streams=False)
    assert (stored.message, stored.tags) == ("flaky on <b>Mondays</b>", ["release"])
    page.reload()
    page.wait_for_selector("#tags .tag")
    assert page.inner_text(".headline ~ .message") == "flaky on <b>Mondays</b>"
    assert page.locator("#tags .tag .name").all_inner_texts() == ["release"]
    assert page.input_value("#note-text") == "flaky on <b>Mondays</b>"

    queue.tag(task.id, ["nightly"])  # changed elsewhere: the page follows
    expect(page.locator("#tags .tag")).to_have_count(2)
    page.goto(dashboard.base)
    expect(page.locator("tbody tr .tags .tag")).to_have_text(["release", "nightly"])


def test_the_statistics_page(page, queue, dashboard):  # noqa: F811
    now = time.time()
    record(queue, "make test", started=now - 60, ended=now - 50, status="failed", returncode=2)
    record(queue, "make test", started=now - 40, ended=now - 38, returncode=0)
    record(queue, "sleep 30", started=now - 35, ended=now - 5, returncode=0, host="gpu1")
    record(queue, "make old", started=now - 100 * 86400, ended=now - 100 * 86400 + 1)
    stats = queue.stats()
    assert (stats.tasks, stats.failed) == (3, 1)
    assert stats.days == [(time.strftime("%Y-%m-%d"), 3, 1)]
    assert stats.most_run[0] == ("make test", 2, 1)
    assert stats.slowest[0][:2] == ("sleep 30", 1) and round(stats.slowest[0][2]) == 30
    assert {h: (n, bad) for h, n, bad in stats.hosts} == {"box": (2, 1), "gpu1": (1, 0)}
    assert queue.stats(host="gpu1").most_run == [("sleep 30", 1, 0)]

    page.click("text=Statistics")
    page.wait_for_selector("svg.chart")
    assert "3 tasks, 1 failed, in the last 90 days" in page.inner_text(".summary")
    assert page.locator("svg.chart").count() == 4
    assert "make test" in page.inner_text(".charts")
    page.screenshot(path=str(IMG / "dashboard-stats.png"), full_page=True)
    page.click("a.host:has-text('gpu1')")
    expect(page.locator(".summary")).to_contain_text("1 tasks, 0 failed")
