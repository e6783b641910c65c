"""The example MCP server (``python -m pmcp_tasks.mcp.example``) as a real process on a free port.

The tests talk to it over streamable HTTP exactly as a client would; its output is kept so a
failing test can show what the server logged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from servers import RunningServer, example_mcp_server, free_port


@contextmanager
def example_server(log_dir: Path, args: Sequence[str] = ()) -> Iterator[RunningServer]:
    """Start the example server with ``args``, its log in ``log_dir``; stop it (if still
    running) on exit."""
    port = free_port()
    with example_mcp_server(args, log_dir / f"example-server-{port}.log", port) as server:
        yield server
