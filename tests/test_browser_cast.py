"""`qme export --as cast` played by asciinema-player, the official web player (the
npm package scripts/player.sh installs), in a real headless Chromium: the file
must parse, play to the end with the recorded output on the terminal, and last
as long as the commands did."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import ok, unavailable
from test_browser import TIMEOUT_MS, browser, queue  # noqa: F401 - fixtures

BUNDLE = (
    Path(__file__).parent.parent
    / ".work/asciinema-player/node_modules/asciinema-player/dist/bundle"
)
PAGE = """<!doctype html>
<link rel="stylesheet" href="asciinema-player.css">
<div id="player"></div>
<script src="asciinema-player.min.js"></script>
<script>
  window.logged = [];
  const log = (level) => (...args) => window.logged.push([level, args.map(String).join(" ")]);
  const logger = {log: log("log"), debug: log("debug"), info: log("info"),
                  warn: log("warn"), error: log("error")};
  window.ended = false;
  window.player = AsciinemaPlayer.create("session.cast", document.getElementById("player"),
                                         {speed: 4, logger});
  window.player.addEventListener("ended", () => { window.ended = true; });
</script>
"""


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A folder with the player and a page that plays session.cast, over HTTP on
    this machine (the player fetches the recording as it would on a web site)."""
    if not (BUNDLE / "asciinema-player.min.js").exists():
        unavailable(f"asciinema-player is not installed in {BUNDLE} (bash scripts/player.sh)")
    site = tmp_path / "site"
    site.mkdir()
    for name in ("asciinema-player.min.js", "asciinema-player.css"):
        shutil.copy(BUNDLE / name, site)
    (site / "index.html").write_text(PAGE)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=site)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_port}/index.html"
    server.shutdown()
    server.server_close()


def _played(browser, url: str):  # noqa: F811 - the fixture's value
    """Play the page's recording to its end: (the terminal's rows, the player's
    duration in seconds, what the player logged, the page's script errors)."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.evaluate("window.player.play()")
    page.wait_for_function("window.ended", timeout=TIMEOUT_MS)
    rows = [row.rstrip() for row in page.locator(".ap-term-text .ap-line").all_text_contents()]
    duration = page.evaluate("window.player.getDuration()")
    logged = page.evaluate("window.logged")
    page.close()
    return rows, duration, logged, errors


def test_the_official_player_plays_an_exported_cast(browser, queue, served, qme_home):  # noqa: F811
    site, url = served
    script = "echo one; sleep 0.4; printf 'caf\\351 two\\n'; sleep 0.4; echo three; exit 3"
    task = queue.run(["sh", "-c", script])
    cast = site / "session.cast"
    ok(_qme_export(task.id, cast))
    lines = cast.read_text().splitlines()
    recorded = sum(json.loads(line)[0] for line in lines[1:])
    assert abs(recorded - (task.ended - task.started)) < 0.05

    rows, duration, logged, errors = _played(browser, url)
    assert errors == [] and [m for level, m in logged if level in ("warn", "error")] == []
    assert rows[0].startswith("$ sh -c 'echo one;")  # wrapped at 80 columns
    assert rows[2:6] == ["one", "caf\ufffd two", "three", ""]
    assert duration == pytest.approx(recorded, abs=0.01)


def _qme_export(task_id: str, path: Path):
    return subprocess.run(
        [sys.executable, "-m", "qme", "export", "--as", "cast", "-o", str(path), task_id],
        capture_output=True,
    )
