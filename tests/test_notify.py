"""Notifications, with real components: a local HTTP receiver reached through
apprise's json:// URL, the raw bytes a pexpect terminal receives, and the writer
child and the watcher as real processes. (Slurm: test_notify_slurm.py; the
browser: test_browser.py.)"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import one_error_line, require_module, unavailable, wait_for

try:
    import pexpect
except ImportError:
    pexpect = None

ROOT = Path(__file__).resolve().parent.parent
OSC777 = b"\x1b]777;notify;"


class Receiver:
    """A webhook service on 127.0.0.1: what apprise's json:// URL posts to it."""

    def __init__(self):
        self.messages: list[dict] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch):
    require_module("apprise", "pip install 'qme[notify]'")
    found = Receiver()
    monkeypatch.setenv("QME_NOTIFY_URLS", found.url)
    monkeypatch.setenv("QME_NOTIFY_AFTER", "1")
    yield found
    found.close()


def test_a_long_command_notifies_a_quick_or_cancelled_one_does_not(qme, receiver):
    assert qme("run", "true").returncode == 0
    assert qme("run", "sh", "-c", "sleep 1.2; exit 130").returncode == 130  # Ctrl-C's status
    assert qme("run", "sh", "-c", "sleep 1.2; kill -TERM $$").returncode == 143
    assert qme("run", "sleep", "1.2").returncode == 0
    wait_for(lambda: receiver.messages, 20, "the notification")
    time.sleep(1.5)  # the other commands' writer children ended long before
    assert len(receiver.messages) == 1, receiver.messages
    (message,) = receiver.messages
    assert message["title"] == "qme: complete, exit 0"
    assert message["type"] == "success"
    body = message["message"]
    assert body.startswith("sleep 1.2\ncomplete, exit 0 after 1.")
    assert f" on {os.uname().nodename}" in body


def test_cancelled_ones_notify_when_asked_failures_say_so(qme, receiver, monkeypatch):
    monkeypatch.setenv("QME_NOTIFY_CANCELLED", "on")
    monkeypatch.setenv("QME_DASHBOARD_URL", "http://example.org:5000/")
    assert qme("run", "sh", "-c", "sleep 1.2; exit 130").returncode == 130
    assert qme("run", "sh", "-c", "sleep 1.2; exit 3").returncode == 3
    wait_for(lambda: len(receiver.messages) == 2, 20, "two notifications")
    titles = sorted(m["title"] for m in receiver.messages)
    assert titles == ["qme: cancelled, exit 130", "qme: failed, exit 3"]
    failed = next(m for m in receiver.messages if "failed" in m["title"])
    assert failed["type"] == "failure"
    link = failed["message"].splitlines()[-1]
    assert link.startswith("http://example.org:5000/tasks/shell-")


def test_notify_after_off_and_0(qme, receiver, monkeypatch):
    monkeypatch.setenv("QME_NOTIFY_AFTER", "off")
    assert qme("run", "sleep", "1.2").returncode == 0
    monkeypatch.setenv("QME_NOTIFY_AFTER", "0")
    assert qme("run", "echo", "quick").returncode == 0
    wait_for(lambda: receiver.messages, 20, "the notification")
    time.sleep(1)
    assert [m["message"].splitlines()[0] for m in receiver.messages] == ["echo quick"]


def test_notify_test_sends_to_every_url_and_says_what_failed(qme, receiver, monkeypatch):
    done = qme("notify", "test")
    assert done.returncode == 0, done.stderr
    assert b"urls: sent to 1 URL" in done.stdout
    assert receiver.messages[0]["title"] == "qme: test notification"
    monkeypatch.setenv("QME_NOTIFY_URLS", f"{receiver.url} json://127.0.0.1:9/nothing-here")
    done = qme("notify", "test")
    assert done.returncode == 1
    assert b"not sent: notification not sent to json://127.0.0.1:9/" in done.stdout


def test_settings_are_checked_in_one_place(qme, monkeypatch):
    for key, value in (
        ("notify_after", "soon"),
        ("notify_urls", "example.org"),
        ("notify_terminal", "loud"),
        ("dashboard_url", "example.org"),
        ("watch_interval", "5"),  # the floor: never more than one query per 30 s
    ):
        line = one_error_line(qme("config", "--set", key, value))
        assert key in line and value in line


def test_the_watcher_interval_never_goes_under_30_s_for_users(qme_home, monkeypatch):
    from qme.config import Settings
    from qme.errors import ConfigError
    from qme.recorder import watcher

    monkeypatch.delenv(watcher.TEST_INTERVAL, raising=False)
    assert watcher.interval(Settings.load(qme_home)) == 30
    monkeypatch.setenv("QME_WATCH_INTERVAL", "29.9")
    with pytest.raises(ConfigError, match="watch_interval"):
        watcher.interval(Settings.load(qme_home))
    monkeypatch.setenv("QME_WATCH_INTERVAL", "120")
    assert watcher.interval(Settings.load(qme_home)) == 120


def test_osc_text_cannot_carry_escape_sequences():
    from qme.notify import Message, terminal_bytes

    note = Message("qme: complete;x", "printf '\x1b]0;evil\x07'\nline two", None, True)
    sent = terminal_bytes("osc777", note)
    assert sent.count(b"\x1b") == 1 and sent.count(b"\x07") == 1
    assert sent == b"\x1b]777;notify;qme: complete,x;printf ' ]0;evil ' \xe2\x80\x94 line two\x07"
    assert terminal_bytes("osc9", note).startswith(b"\x1b]9;qme: complete,x: ")


# -- the terminal ---------------------------------------------------------------------------


@pytest.fixture
def terminal_env(monkeypatch, tmp_path):
    if pexpect is None:
        unavailable("pexpect is not installed (pip install -e '.[test]')")
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
    monkeypatch.setenv("QME_NOTIFY_AFTER", "1")
    monkeypatch.delenv("QME_NOTIFY_URLS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".bashrc").write_text("PS1='PROMPT> '\n")  # the session's shell reads it
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PS1": "PROMPT> ", "HISTFILE": "/dev/null", "TERM": "foot"}
    for name in ("TERM_PROGRAM", "VTE_VERSION", "KITTY_WINDOW_ID", "WT_SESSION"):
        env.pop(name, None)
    return env


def bash(env):
    shell = pexpect.spawn(
        "bash", ["--norc", "--noprofile", "-i"], env=env, timeout=30, dimensions=(24, 100)
    )
    shell.expect_exact("PROMPT> ")
    return shell


def test_qme_run_on_a_terminal_writes_osc_777_once_the_shell_has_it_back(terminal_env):
    shell = bash(terminal_env)  # TERM=foot: auto picks OSC 777
    shell.sendline(f"{sys.executable} -m qme run sleep 1.2; echo after-$?")
    shell.expect_exact("after-0")
    shell.expect_exact(OSC777, timeout=40)
    shell.expect_exact(b"\x07")
    shown = OSC777 + shell.before + b"\x07"
    assert shown.startswith(b"\x1b]777;notify;qme: complete, exit 0;sleep 1.2 \xe2\x80\x94 ")
    # a quick command: nothing
    shell.sendline(f"{sys.executable} -m qme run true; sleep 2; echo quick-$((1+1))")
    shell.expect_exact("quick-2")
    assert OSC777 not in shell.before
    shell.sendline("exit")
    shell.expect(pexpect.EOF)


def test_the_terminal_is_not_written_while_another_program_has_it(terminal_env):
    terminal_env["QME_NOTIFY_TERMINAL"] = "bell"
    shell = bash(terminal_env)
    # cat holds the terminal when the command ends, past the 5 s qme waits for it
    shell.sendline(f"{sys.executable} -m qme run sleep 1.2; cat; echo cat-$((2+2))")
    time.sleep(9)
    shell.sendcontrol("d")
    shell.expect_exact("cat-4")
    assert b"\x07" not in shell.before
    shell.sendline("exit")
    shell.expect(pexpect.EOF)


def test_a_session_command_writes_osc_777(terminal_env):
    terminal_env["QME_NOTIFY_TERMINAL"] = "osc777"
    shell = bash(terminal_env)
    shell.sendline(f"{sys.executable} -m qme session --shell bash")
    shell.expect_exact("PROMPT> ")
    shell.sendline("sleep 1.2; echo in-$((3+3))")
    shell.expect_exact("in-6")
    shell.expect_exact(OSC777, timeout=40)
    shell.expect_exact(b"\x07")
    assert (OSC777 + shell.before).startswith(
        b"\x1b]777;notify;qme: complete, exit 0;sleep 1.2; echo in-$((3+3)) \xe2\x80\x94 "
    )
    shell.sendline("exit")
    shell.expect_exact("PROMPT> ")
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
