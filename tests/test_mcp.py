"""qme mcp: the real server (`python -m qme mcp`) driven by the MCP SDK's own client
over stdio, against a real SQLite store: list, search, get with paging, out, and
run (refused unless the configuration allows it)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from helpers import require_module

from qme import Queue
from qme.errors import ConfigError

if sys.version_info < (3, 10):  # the mcp SDK itself needs 3.10: it cannot exist here
    pytest.skip("the mcp SDK needs Python 3.10 or newer", allow_module_level=True)
require_module("mcp", "pip install 'qme[mcp]'")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

BIG = "".join(f"line {n:05d} é✓\n" for n in range(3000))  # ~50 KB, multi-byte characters


def call(home, *calls: tuple[str, dict]) -> tuple[list[str], list[tuple[bool, object]]]:
    """Start `qme mcp` for home, list its tools and make each call; the tools' names
    and, for each call, (is_error, the JSON answer or the error's text)."""

    async def session():
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "qme", "--config_dir", str(home), "mcp"],
            env={k: os.environ[k] for k in ("PATH", "HOME", "PYTHONPATH") if k in os.environ},
            cwd=str(home),
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            names = [tool.name for tool in (await client.list_tools()).tools]
            answers = []
            for name, arguments in calls:
                result = await client.call_tool(name, arguments)
                error = getattr(result, "is_error", getattr(result, "isError", False))
                text = result.content[0].text
                answers.append((bool(error), text if error else json.loads(text)))
            return names, answers

    return asyncio.run(asyncio.wait_for(session(), 120))


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    with Queue(config_dir=home) as queue:
        queue.run(["echo", "alpha"])
        queue.run(["sh", "-c", "echo kap''utt >&2; exit 3"], message="the deploy")
        queue.run([sys.executable, "-c", f"import sys; sys.stdout.write({BIG!r})"])
    return home


def test_list_search_get_and_out_page_through_a_real_store(home):
    with Queue(config_dir=home) as queue:
        tasks = queue.list()  # newest first
        big, failed, alpha = (t.id for t in tasks)
        size = len(BIG.encode())
    names, answers = call(
        home,
        ("list_tasks", {}),
        ("list_tasks", {"status": "failed"}),
        ("search", {"terms": "alpha"}),
        ("search", {"terms": "kaputt"}),
        ("get_task", {}),
        ("get_task", {"task": failed[6:12]}),
        ("out", {"task": big, "offset": 16000, "limit": 100000}),
        ("out", {"task": big, "offset": -40}),
        ("out", {"task": failed, "stream": "error"}),
        ("get_task", {"task": "nosuch"}),
        ("out", {"task": big, "stream": "stdin"}),
    )
    assert sorted(names) == ["get_task", "list_tasks", "out", "search"]  # no run
    assert not any(error for error, _ in answers[:9])
    listed, only_failed, by_command, by_output, last, one, page, tail, err = (
        a for _, a in answers[:9]
    )
    assert [t["id"] for t in listed["tasks"]] == [big, failed, alpha]
    assert [(t["id"], t["exit"], t["status"]) for t in only_failed["tasks"]] == [
        (failed, 3, "failed")
    ]
    assert [t["id"] for t in by_command["results"]] == [alpha]
    match = {"field": "error", "line": "kaputt", "spans": [[0, 6]]}
    assert by_output["results"][0]["match"] == match
    # get: every field, the first 16 KiB of output (never a split character), where to go on
    assert last["id"] == big and last["output_size"] == size
    assert 16381 <= len(last["output"].encode()) <= 16384
    assert BIG.startswith(last["output"])
    assert last["output_next_offset"] == len(last["output"].encode())
    assert last["error"] == "" and last["error_next_offset"] is None
    assert one["id"] == failed and one["message"] == "the deploy" and one["returncode"] == 3
    # out: a page from a byte offset to the end, and the tail
    assert page["offset"] == 16000 and page["next_offset"] is None and page["size"] == size
    assert page["text"] == BIG.encode()[16000:].decode()
    assert tail["text"] == BIG.encode()[-40:].decode() and tail["next_offset"] is None
    assert err["text"] == "kaputt\n"
    # what the assistant asked wrong: one line, not a crash
    assert answers[9] == (True, "Error executing tool get_task: no task matches 'nosuch'")
    assert answers[10][0] and "no stream 'stdin'" in answers[10][1]


def test_run_is_refused_unless_the_configuration_allows_it(home):
    names, answers = call(home, ("run", {"command": "echo from-mcp"}))
    assert "run" not in names
    assert answers[0][0]  # an error: there is no such tool
    with Queue(config_dir=home) as queue:
        assert len(queue.list()) == 3  # nothing ran
        with pytest.raises(ConfigError, match="mcp_run takes on or off"):
            queue.set_setting("mcp_run", "yes please")
        queue.set_setting("mcp_run", "on")

    work = home.parent / "work"
    work.mkdir()
    names, answers = call(
        home,
        ("run", {"command": "echo from-mcp; pwd; read x; echo read:$?", "cwd": str(work)}),
        ("run", {"command": "echo oops >&2; exit 5", "message": "by the assistant"}),
    )
    assert "run" in names
    (error, done), (error2, failed) = answers
    assert not error and not error2
    # no terminal, no input (stdin is /dev/null), the output captured and returned
    assert done["status"] == "complete" and done["cwd"] == str(work)
    assert done["output"] == f"from-mcp\n{work}\nread:1\n"
    assert failed["returncode"] == 5 and failed["error"] == "oops\n"
    assert failed["message"] == "by the assistant"
    with Queue(config_dir=home) as queue:  # recorded like any other task
        assert queue.get(done["id"]).output == done["output"].encode()


def test_a_bad_mcp_run_setting_is_an_error_before_serving(home, qme):
    (home / "config.ini").write_text("[DEFAULT]\nmcp_run = maybe\n")
    result = qme("--config_dir", str(home), "mcp", input=b"")
    assert result.returncode == 1
    assert "mcp_run = 'maybe'" in result.stderr.decode()
