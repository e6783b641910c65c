"""What the MCP tests share besides fixtures: the stores they run on, and the server options
that select one."""

from __future__ import annotations

import pytest
from servers import installed_backends

MCP_BACKENDS = [name for name in ("memory", "redis") if name in installed_backends()]
"""Stores the conformance suite runs against (DynamoDB joins in the two-instance tests)."""

SHARED_BACKENDS = [name for name in ("redis", "dynamodb") if name in installed_backends()]
"""Stores two server processes can share (the two-instance tests)."""


def backend_args(request: pytest.FixtureRequest, backend: str, namespace: str) -> list[str]:
    """The example server's command-line options for ``backend``."""
    args = ["--backend", backend, "--namespace", namespace]
    if backend == "redis":
        url = request.getfixturevalue("mcp_redis_url")
        args += ["--backend-option", f"redis_url={url}"]
    return args
