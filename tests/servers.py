"""What every test folder needs to know about servers and installed backends.

Imported by ``tests/conftest.py`` and by test modules (``tests/`` is on ``sys.path``); it
imports only the standard library and pytest at module level, so it loads in every tox
environment, and pulls in moto only when a test asks for moto's server.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
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


def require_redis_server() -> None:
    """Skip (with the reason) without redis-server; under CI (``$CI`` set) fail instead."""
    if shutil.which("redis-server") is not None:
        return
    reason = "redis-server is not on PATH (Debian: apt-get install redis-server)"
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
