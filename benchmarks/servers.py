"""Throwaway servers on free loopback ports: redis-server, moto's ThreadedMotoServer and others.

Each runs as a child process, so that the server's work never competes with the client for the
benchmark process's GIL (an in-process ThreadedMotoServer would make every DynamoDB ratio
partly a measure of GIL hand-offs), and is stopped when the ``with`` block ends. Their output
goes to a log file each, not to the terminal, where it would land between the tables.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_STARTUP_SECONDS = 30.0

_MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
sys.stdin.read()  # until the benchmark closes our stdin
server.stop()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with status {process.returncode} at start-up (log: {log})"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"{what} did not listen on port {port} within {_STARTUP_SECONDS:.0f} s (log: {log})"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def server_process(command: list[str], port: int, what: str, log: Path) -> Iterator[None]:
    """Run ``command`` (a server that listens on ``port``) with its output in ``log``, until the
    ``with`` block ends. RuntimeError naming the log when it does not start."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, process, what, log)
        yield
    finally:
        _stop(process)


@contextmanager
def redis_server(logs: Path) -> Iterator[str]:
    """A redis-server without persistence; yields its URL. RuntimeError when not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no"]
    with server_process(command, port, "redis-server", logs / "redis-server.log"):
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def moto_server(logs: Path) -> Iterator[str]:
    """moto's ThreadedMotoServer in a child process; yields its endpoint URL."""
    port = free_port()
    with server_process(
        [sys.executable, "-c", _MOTO, str(port)], port, "moto server", logs / "moto-server.log"
    ):
        yield f"http://127.0.0.1:{port}"
