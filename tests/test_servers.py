"""tests/servers.py, which every real-server test and the benchmarks start their servers with:
a missing server fails saying how to install it, a server that dies at start-up fails with its
log, and a started one is stopped when the ``with`` ends."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import pytest
from servers import ServerUnavailable, free_port, require_redis_server, serving


def test_a_missing_redis_engine_fails_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PMCP_REDIS_ENGINE", "no-such-redis-server")
    with pytest.raises(ServerUnavailable, match=r"no-such-redis-server is not on PATH .*apt-get"):
        require_redis_server()


def test_a_server_that_exits_at_start_up_fails_with_its_log(tmp_path: Path) -> None:
    dies = [sys.executable, "-c", "print('no port for me'); raise SystemExit(3)"]
    with (
        pytest.raises(ServerUnavailable, match="exited with 3") as caught,
        serving(dies, free_port(), tmp_path / "dies.log"),
    ):
        pass
    assert "no port for me" in str(caught.value)


def test_a_served_process_answers_at_its_url_and_stops_with_the_block(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with serving(command, port, tmp_path / "http.log", path="/") as server:
        assert server.url == f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(server.url) as answer:
            assert answer.status == 200
        assert server.process.poll() is None
    assert server.process.poll() is not None


def test_free_ports_stay_below_the_range_outgoing_connections_take() -> None:
    floor = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port(and_offset=10000) for _ in range(200)]
    assert all(port + 10000 < floor for port in ports), (floor, max(ports))
    assert len(set(ports)) > 150  # drawn at random: two workers rarely draw the same
