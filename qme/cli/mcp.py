"""qme mcp: a Model Context Protocol server on stdio, so that an AI assistant can
look up what you ran (list, search, get, out) and, when the configuration allows
it (mcp_run = on), run a command.

The tools are plain methods of `Tools` over a `Queue`; `serve` hands them to the
official MCP SDK (the extra `qme[mcp]`, imported only here). Output is given in
pages of bytes: `get_task` includes the first OUTPUT_LIMIT bytes of each stream,
`out` any page of one (offset and limit in bytes, a negative offset from the end).
"""

from __future__ import annotations

import os
import sys

from qme.cli.env import OK
from qme.errors import QmeError

OUTPUT_LIMIT = 16 * 1024  # bytes of each stream get_task includes
PAGE_LIMIT = 64 * 1024  # bytes `out` gives when no limit is asked for
MAX_PAGE = 1024 * 1024  # the most `out` gives at once
LIST_LIMIT = 30
STREAM_NAMES = ("output", "error")

INSTRUCTIONS = """\
qme keeps a record of the commands this user ran in their terminal: command,
directory, host, start and end, exit code, status, and what each printed. Use
list_tasks for recent tasks (filters: status, executor, directory, time),
search to find tasks by words in their command, message or output, get_task for
one task with the start of its output, and out for any page of a task's output
(offset and limit in bytes; a negative offset counts from the end). A task is
named by its id or any unique prefix of it, as list_tasks shows it; left out,
the most recent task."""

HELP = """\
Serve qme's record over the Model Context Protocol on stdin/stdout, for an AI
assistant (Claude Desktop, Claude Code, any MCP client) to look up what you ran:
tools list_tasks, search, get_task and out. With `qme config --set mcp_run on`,
also `run`: the assistant may then run commands as you (see docs/mcp.md).

Register it with a client, e.g.:  claude mcp add qme -- qme mcp
Needs the MCP SDK (Python 3.10 or newer):  pip install 'qme[mcp]'
"""


def add_parser(subparsers, name):
    import argparse

    return subparsers.add_parser(
        name,
        help="serve a Model Context Protocol server on stdio (for AI assistants)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def run(args) -> int:
    from qme.cli import make_queue

    sdk = load_sdk()
    queue = make_queue(args)
    allow_run = queue.settings.mcp_run  # checked before serving: a bad value is an error now
    serve(*sdk, Tools(queue, allow_run=allow_run))
    return OK


def load_sdk():
    """The MCP SDK's server class and the error a tool raises to say what went wrong
    (mcp 2: MCPServer; mcp 1: FastMCP); a QmeError saying what to install when it is
    missing."""
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError

        return MCPServer, ToolError
    except ImportError:
        pass
    try:
        from mcp.server.fastmcp import FastMCP
        from mcp.server.fastmcp.exceptions import ToolError

        return FastMCP, ToolError
    except ImportError:
        pass
    version = "{}.{}".format(*sys.version_info[:2])
    if sys.version_info < (3, 10):
        raise QmeError(
            f"qme mcp needs the MCP SDK, which needs Python 3.10 or newer (this is {version}): "
            "install qme with a newer Python, then pip install 'qme[mcp]'"
        )
    raise QmeError("qme mcp needs the MCP SDK (the Python package 'mcp'): pip install 'qme[mcp]'")


class Tools:
    """What the MCP tools do, over one Queue; each returns JSON-able values and
    raises QmeError for what the assistant asked wrong."""

    def __init__(self, queue, *, allow_run: bool = False):
        self.queue = queue
        self.allow_run = allow_run

    def list_tasks(
        self,
        status: str | None = None,
        executor: str | None = None,
        cwd: str | None = None,
        since: float | None = None,
        host: str | None = None,
        session: str | None = None,
        limit: int = LIST_LIMIT,
        offset: int = 0,
    ) -> dict:
        tasks = self.queue.list(
            executor,
            status=status,
            cwd=cwd,
            since=since,
            host=host,
            session=session,
            limit=max(1, min(limit, 500)),
            offset=max(0, offset),
        )
        return {"tasks": [summary(t) for t in tasks], "offset": offset}

    def search(self, terms: str, executor: str | None = None, limit: int = 20) -> dict:
        from qme.text import marked_spans

        hits = self.queue.search(*terms.split(), executor=executor, limit=max(1, min(limit, 200)))
        results = []
        for hit in hits:
            line, spans = marked_spans(hit.line)
            match = {"field": hit.field, "line": line, "spans": [list(s) for s in spans]}
            results.append({**summary(hit.task), "match": match})
        return {"results": results}

    def get_task(self, task: str | None = None) -> dict:
        found = self.queue.get(task or None, streams=False)
        record = found.to_dict(streams=False)
        for stream in STREAM_NAMES:
            page = self.out(found.id, stream, 0, OUTPUT_LIMIT)
            record[stream] = page["text"]
            record[f"{stream}_next_offset"] = page["next_offset"]
        return record

    def out(
        self,
        task: str | None = None,
        stream: str = "output",
        offset: int = 0,
        limit: int = PAGE_LIMIT,
        raw: bool = False,
    ) -> dict:
        if stream not in STREAM_NAMES:
            raise QmeError(f"no stream '{stream}' (use output or error)")
        task_id = self.queue.get(task or None, streams=False).id
        data = self.queue.read(task_id, stream)
        size = len(data)
        start = max(0, size + offset) if offset < 0 else min(offset, size)
        end = min(size, start + max(1, min(limit, MAX_PAGE)))
        end = _char_boundary(data, end)
        piece = data[start:end]
        if raw:
            text = piece.decode("utf-8", errors="replace")
        else:
            from qme.text import searchable

            text = searchable(piece)
        return {
            "task": task_id,
            "stream": stream,
            "offset": start,
            "size": size,
            "next_offset": end if end < size else None,
            "text": text,
        }

    def run(self, command: str, cwd: str | None = None, message: str | None = None) -> dict:
        if not self.allow_run:
            raise QmeError(
                "running commands through MCP is off: the user can allow it with "
                "'qme config --set mcp_run on'"
            )
        from qme import Queue

        # A Queue of its own: the command may run long, and lookups go on meanwhile.
        settings = self.queue.settings
        with Queue(settings.home, database=settings.overrides.get("database")) as queue:
            task = queue.run(command, cwd=cwd, message=message)
        record = self.get_task(task.id)
        return record


def summary(task) -> dict:
    """A task without its output: what a listing gives."""
    return {
        "id": task.id,
        "status": task.status,
        "exit": task.returncode,
        "command": task.command,
        "cwd": task.cwd,
        "host": task.host,
        "user": task.user,
        "started": task.started,
        "duration": task.duration,
        "message": task.message,
        "session": task.session,
        "output_size": task.output_size,
        "error_size": task.error_size,
    }


def _char_boundary(data: bytes, end: int) -> int:
    """end moved back (at most 3 bytes) so that it does not split a UTF-8 character."""
    if end >= len(data):
        return end
    for back in range(4):
        if end - back <= 0:
            break
        if data[end - back] & 0xC0 != 0x80:  # not a continuation byte: a start
            return end - back if back else end
    return end


# -- the server -------------------------------------------------------------------------

DESCRIPTIONS = {
    "list_tasks": "List recorded tasks (commands the user ran), newest first, without "
    "their output. Filters: status (running, complete, failed, cancelled, lost, pending, "
    "timeout), executor (shell, slurm, docker, ...), cwd (a directory), since (Unix "
    "seconds), host, session (a shell session id); limit (at most 500) and offset page.",
    "search": "Find tasks whose command, message, output or error contain every word of "
    "terms (case-insensitive; 'deploy*' matches words starting with deploy), newest "
    "first, each with the field and line that matched.",
    "get_task": "One task (id or unique prefix; left out: the most recent) with every "
    f"field and the first {OUTPUT_LIMIT} bytes of its output and error as plain text; "
    "output_next_offset (null when all is there) is where `out` goes on.",
    "out": "A page of a task's recorded output (stream 'output', or 'error' for stderr): "
    f"limit bytes (default {PAGE_LIMIT}, at most {MAX_PAGE}) from byte offset (a negative "
    "offset counts from the end: -4096 is the last 4 KiB). Text has terminal escape "
    "sequences removed unless raw. next_offset is null at the end.",
    "run": "Run a shell command as the user, in cwd (default: the server's directory), "
    "without a terminal and with no input, record it like any other task, wait for it "
    "to end and return the task with the start of its output.",
}


def serve(server_class, tool_error, tools: Tools) -> None:
    """Serve the tools on this process's stdin and stdout until the client leaves.
    The protocol gets stdin and stdout on descriptors of its own; fds 0, 1 and 2
    then read and write /dev/null, so that nothing else (a command `run` starts,
    a stray print) can reach the wire."""
    import anyio

    wire_in, wire_out, log = _private_stdio()
    sys.stdin, sys.stdout, sys.stderr = wire_in, wire_out, log
    server = server_class("qme", instructions=INSTRUCTIONS)
    # One lookup at a time: a Queue is not for many threads at once.
    limiter = anyio.CapacityLimiter(1)

    def tool(name, method, threads=limiter):
        async def call(**kwargs):
            try:
                return await anyio.to_thread.run_sync(lambda: method(**kwargs), limiter=threads)
            except QmeError as exc:
                raise tool_error(str(exc)) from None  # the assistant is told, one line

        _copy_signature(call, method)
        server.tool(name=name, description=DESCRIPTIONS[name])(call)

    tool("list_tasks", tools.list_tasks)
    tool("search", tools.search)
    tool("get_task", tools.get_task)
    tool("out", tools.out)
    if tools.allow_run:
        tool("run", tools.run, threads=anyio.CapacityLimiter(4))
    server.run("stdio")


def _copy_signature(wrapper, method) -> None:
    """The wrapper takes the method's parameters, which the SDK reads to describe
    the tool's input (its JSON schema)."""
    import inspect

    signature = inspect.signature(method)
    wrapper.__signature__ = signature.replace(return_annotation=dict)
    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    wrapper.__annotations__ = {
        name: param.annotation for name, param in signature.parameters.items()
    } | {"return": "dict"}


def _private_stdio():
    """Text streams on copies of fds 0, 1 and 2 above the standard range, with fds 0,
    1 and 2 then pointed at /dev/null."""
    import io

    copies = [os.dup(fd) for fd in (0, 1, 2)]
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    wire_in = io.TextIOWrapper(os.fdopen(copies[0], "rb"), encoding="utf-8", errors="replace")
    wire_out = io.TextIOWrapper(os.fdopen(copies[1], "wb"), encoding="utf-8", write_through=True)
    log = io.TextIOWrapper(os.fdopen(copies[2], "wb"), encoding="utf-8", write_through=True)
    return wire_in, wire_out, log
