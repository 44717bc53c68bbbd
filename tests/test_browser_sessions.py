"""The dashboard's session view and the polish a browser test found missing, in a real
headless Chromium: a page to paste the token into, a layout at 420 px, notices that
leave the buttons free, a cancelled row's exit cell, black text on the dark panel,
ages that move on, a search's count, the shell session in the table.
Screenshots for the docs go to docs/img/."""

from __future__ import annotations

import time
from pathlib import Path

from test_browser import Watched, browser, dashboard, expect, page, queue  # noqa: F401
from test_web import TOKEN, record

IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
SESSION = "5e55a0b1-2c3d-4e5f-8a9b-0c1d2e3f4a5b"


def boxes_overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_a_page_without_the_token_asks_for_it(browser, dashboard):  # noqa: F811
    context = browser.new_context(viewport={"width": 900, "height": 600})
    watched = Watched(context.new_page())
    tab = watched.page
    response = tab.goto(dashboard.base + "/")
    assert response.status == 401
    assert "needs its token" in tab.inner_text("body")
    tab.fill("#token", TOKEN)
    tab.click("button[type=submit]")
    tab.wait_for_selector('#live[data-state="live"]')
    assert tab.url == dashboard.base + "/"  # the cookie set, the token out of the address
    context.close()


def test_session_in_the_table_and_its_page(page, queue, dashboard):  # noqa: F811
    now = time.time() - 300
    steps = [
        ("cd ~/src/app && git pull", b"Already up to date.\n", "complete", 0),
        ("make test", b"\x1b[32m12 passed\x1b[0m, \x1b[31m1 failed\x1b[0m\n", "failed", 2),
        ("vim src/app.py", b"", "complete", 0),
        ("make test", b"\x1b[32m13 passed\x1b[0m in 4.2s\n", "complete", 0),
    ]
    ids = []
    for i, (command, output, status, code) in enumerate(steps):
        task = record(
            queue,
            command,
            output=output,
            status=status,
            returncode=code,
            session=SESSION,
            started=now + i * 60,
            ended=now + i * 60 + 4.2,
            cwd="/home/ada/src/app",
        )
        ids.append(task.id)
    record(queue, "echo outside any session", output=b"x\n")
    page.reload()
    link = page.locator(f'tr[data-id="{ids[1]}"] a.session')
    assert link.inner_text() == f"session {SESSION[:8]}"
    link.click()
    page.wait_for_selector("#cells li")
    assert page.url == f"{dashboard.base}/sessions/{SESSION}"
    cells = page.locator("#cells li")
    assert cells.count() == 4  # in order, the one outside the session left out
    assert [cells.nth(i).get_attribute("data-id") for i in range(4)] == ids
    assert page.locator("#cells pre.term:visible").count() == 0  # folded
    cells.nth(1).locator("summary").click()
    second = cells.nth(1).locator("pre.term")
    expect(second).to_have_text("12 passed, 1 failed")  # fetched once unfolded
    page.click("#unfold")
    page.wait_for_function("document.querySelectorAll('#cells pre.term span').length >= 3")
    page.screenshot(path=str(IMG / "dashboard-session.png"))
    # The table filtered to the session
    page.click("text=as a table")
    page.wait_for_selector("tbody tr")
    assert page.locator("tbody tr").count() == 4


def test_narrow_layout_keeps_the_command_readable(page, queue, dashboard):  # noqa: F811
    record(queue, "rsync -avz --delete site/ web:/var/www/", status="complete", returncode=0)
    cancelled = record(queue, "sleep 600", status="cancelled", signal=15, returncode=None)
    page.set_viewport_size({"width": 420, "height": 800})
    page.reload()
    page.wait_for_selector("tbody tr")
    command = page.locator("tbody tr td.command").first.bounding_box()
    assert command["width"] >= 150, command
    exit_cell = page.locator(f'tr[data-id="{cancelled.id}"] td.exit')
    assert exit_cell.inner_text() == "sig 15"
    assert exit_cell.evaluate("e => e.scrollWidth <= e.clientWidth")  # not cut to "signa…"
    assert page.evaluate("document.documentElement.scrollWidth <= 420")
    page.screenshot(path=str(IMG / "dashboard-narrow.png"))


def test_the_exit_cell_of_a_cancelled_row_is_whole(page, queue, dashboard):  # noqa: F811
    task = record(queue, "sleep 600", status="cancelled", signal=15, returncode=None)
    page.reload()
    cell = page.locator(f'tr[data-id="{task.id}"] td.exit')
    assert cell.inner_text() == "sig 15" and cell.get_attribute("title") == "signal 15"
    assert cell.evaluate("e => e.scrollWidth <= e.clientWidth")


def test_a_notice_leaves_the_buttons_free(page, queue, dashboard):  # noqa: F811
    task = record(queue, "true", host="elsewhere-host", cwd="/no/such/dir")
    page.goto(f"{dashboard.base}/tasks/{task.id}")
    page.click('button[data-action="rerun"]')  # refused here: an error notice
    notice = page.wait_for_selector(".notice")
    for action in ("rerun", "delete"):
        button = page.locator(f'button[data-action="{action}"]').bounding_box()
        assert not boxes_overlap(notice.bounding_box(), button)


def test_black_text_shows_on_the_dark_panel(page, queue, dashboard):  # noqa: F811
    task = record(queue, "ls --color", output=b"\x1b[30mblack text\x1b[0m plain\n")
    page.goto(f"{dashboard.base}/tasks/{task.id}")
    page.wait_for_selector("#output span.line")
    colour = page.locator("#output span.line span").first.evaluate("e => getComputedStyle(e).color")
    background = page.locator("#output").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(122, 128, 144)" and background == "rgb(31, 36, 48)"


def test_ages_move_on_without_a_reload(browser, dashboard, queue):  # noqa: F811
    task = record(queue, "make", started=time.time() - 5, ended=time.time() - 4)
    context = browser.new_context()
    tab = Watched(context.new_page()).page
    tab.clock.install()
    tab.goto(dashboard.url)
    tab.goto(f"{dashboard.base}/tasks/{task.id}")
    tab.wait_for_selector("#meta dd")
    assert "(just now)" in tab.inner_text("#meta")
    tab.clock.run_for(90_000)
    assert "(1m ago)" in tab.inner_text("#meta")
    context.close()


def test_a_search_says_how_many_it_shows(page, queue, dashboard):  # noqa: F811
    for word in ("alpha", "beta"):
        record(queue, f"echo {word} needle", output=b"needle\n")
    page.goto(f"{dashboard.base}/?q=needle")
    page.wait_for_selector("tbody tr")
    assert page.inner_text(".pager .count") == "1–2 of 2 matches"
    for i in range(60):
        record(queue, f"echo many {i}")
    page.goto(f"{dashboard.base}/?q=many")
    page.wait_for_selector("tbody tr")
    assert page.inner_text(".pager .count") == "1–50 of 60 matches"  # past one page too
