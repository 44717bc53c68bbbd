"""The dashboard in a real headless Chromium: notes and tags edited in place, the
statistics page (screenshot in docs/img/)."""

from __future__ import annotations

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
