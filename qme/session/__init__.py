"""Recording every command typed in an interactive shell (`qme on`).

The shell runs inside a session proxy, a pty around it like `script`. The shell
hooks start no process; they print invisible marks (marks.py) that the proxy
strips from the stream and uses to cut the output into one task per command
(cutter.py). proxy.py starts the shell with the hooks loaded.
"""
