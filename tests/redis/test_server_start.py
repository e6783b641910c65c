"""tests/servers.py's redis-server helper (here, where mirakuru, which runs it, is installed):
a server that cannot start fails with what it logged, not mirakuru's bare exit code."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from servers import ServerUnavailable, free_port, redis_server


def test_a_redis_server_that_cannot_bind_fails_with_what_it_logged(tmp_path: Path) -> None:
    """The way a cluster node once died in CI: its port taken between the probe and its bind."""
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))  # bound, not listening: the server's bind fails
        with pytest.raises(ServerUnavailable) as caught, redis_server(tmp_path, port=port):
            pass
    assert "exited" in str(caught.value)
    assert f"{port}" in str(caught.value)
    assert "Address already in use" in str(caught.value)
