"""Against the peer: our example server beside fastmcp + ``fastmcp-tasks`` on pydocket.

Both servers carry the same two tools with the same bodies: ``slow_compute`` (wait ``seconds``,
then answer; a task when the client declared the extension) and ``greet``. Both are driven by
the same client, the official MCP SDK's ``Client`` (stateless 2026-07-28, declaring the tasks
extension through :class:`pmcp_tasks.mcp.client.TaskRequester`), against the same
redis-server (ours in database 1, the peer's in database 2, so that each database's size is one
system's keys).

One repetition is ``tasks`` tasks from 16 concurrent workers: each worker creates a task with
``tools/call`` on one instance and polls ``tasks/get`` on the next (the same instance when there
is one) every :data:`POLL_GAP` seconds until it is completed. Repetitions alternate in ABBA
order so that a burst of load from the machine's other users lands on both systems alike, and
each ratio is the median of the per-repetition ratios. The server CPU is the user and system
time of the server processes (``/proc``), the memory growth their resident set after the last
repetition less the one after a warm-up, and the Redis keys the database's size at the end.

The peer is optional: without fastmcp, ``fastmcp-tasks`` and pydocket the section says how to
install them and fails; it installs nothing itself. Linux only (``/proc``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from servers import (
    MCP_VERSION,
    RunningServer,
    example_mcp_server,
    free_port,
    redis_server_binary,
    serving,
)

from benchmarks.workload import Settings

PEER = ("fastmcp", "fastmcp_tasks", "docket")
"""The modules the peer needs: fastmcp-tasks 4.1.4 brings fastmcp and pydocket."""

INSTALL = "pip install 'pmcp-tasks[testing-mcp]' (fastmcp-tasks 4.1.4, fastmcp, pydocket)"

PACKAGES = ("mcp", "fastmcp", "fastmcp-slim", "fastmcp-tasks", "pydocket", "redis")

WORKERS = 16
POLL_GAP = 0.01
"""Seconds a worker waits between two ``tasks/get`` of one task, on both systems alike: a
client honouring the servers' own ``pollIntervalMs`` would measure the poll interval, not
the servers."""

REPETITIONS = 5
TASKS = 1_000
"""Tasks per system and repetition (a tenth of it more as the warm-up)."""

KEEPALIVE = 1.0
"""Seconds an idle connection stays in the client's pool: below uvicorn's 5 s keep-alive on
both servers, so that a request never goes out on a connection the server is closing (one
system's connections idle while the other's repetition runs)."""

OURS_CAP = 1_000_000
"""``--max-tasks`` of our servers in the comparison. Every task here has one owner (the clients
are anonymous), and the per-owner cap keeps a finished task's slot until a create that finds no
free slot lists all of the owner's tasks: at the default cap of 100 every create after the
first hundred walks the owner's whole partition (see :func:`cap_cliff`). The peer has no
per-owner cap; at a million slots a create's first probe finds a free one."""

CLIFF_PASSES = 3
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def missing() -> list[str]:
    """The peer's modules this interpreter cannot import."""
    return [name for name in PEER if importlib.util.find_spec(name) is None]


def versions() -> str:
    """The packages the comparison ran on, and the redis-server."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    binary = redis_server_binary()
    if binary is not None:
        said = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"v=(\S+)", said.stdout)
        found.append(f"redis-server {match.group(1) if match else said.stdout.strip()}")
    return ", ".join(found)


def serve_peer(port: int, docket_url: str, docket_name: str) -> None:
    """The peer server: fastmcp with ``fastmcp-tasks``, the example server's tool bodies.

    ``task.sleep`` of ours is ``asyncio.sleep`` here: the peer's handlers get no task context to
    sleep on. Logs at ``warning``, as the example server does, so neither pays for access logs.
    """
    from fastmcp import FastMCP
    from fastmcp_tasks import TasksExtension

    server = FastMCP("peer")
    server.add_extension(TasksExtension(url=docket_url, name=docket_name))

    @server.tool()
    def greet(name: str) -> str:
        """Say hello, synchronously (never a task)."""
        return f"Hello, {name}!"

    @server.tool(task=True)
    async def slow_compute(seconds: float = 1.0, label: str = "") -> str:
        """Wait ``seconds``, then answer; a task for clients that declared the extension."""
        await asyncio.sleep(seconds)
        return f"computed {label or 'result'} after {seconds:g} s"

    server.run(
        transport="http",
        host="127.0.0.1",
        port=port,
        path="/mcp",
        log_level="warning",
        show_banner=False,
    )


@contextmanager
def peer_server(docket_url: str, docket_name: str, log: Path) -> Iterator[RunningServer]:
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.peer_bench", str(port), docket_url, docket_name]
    with serving(command, port, log, path="/mcp") as server:
        yield server


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm", encoding="utf-8") as statm:
        return int(statm.read().split()[1]) * PAGE


@dataclass
class System:
    """One system's instances in one configuration, and what its repetitions measured."""

    name: str
    urls: list[str]
    pids: list[int]
    tasks_per_second: list[float] = field(default_factory=list)  # one sample per repetition
    creates: list[float] = field(default_factory=list)  # p50 seconds
    gets: list[float] = field(default_factory=list)
    cpu_per_task: list[float] = field(default_factory=list)
    gets_per_task: list[float] = field(default_factory=list)
    rss_start: int = 0
    rss_growth: int = 0
    redis_keys: int | None = None

    def cpu(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids)

    def rss(self) -> int:
        return sum(_rss_bytes(pid) for pid in self.pids)

    def samples(self) -> tuple[list[float], ...]:
        return (
            self.tasks_per_second,
            self.creates,
            self.gets,
            self.cpu_per_task,
            self.gets_per_task,
        )


@dataclass(frozen=True)
class Row:
    store: str
    ours: System
    peer: System
    tasks: int  # per system, over every repetition
    load: tuple[float, float]  # 1-minute load average at the start and at the end


async def _repetition(system: System, sessions: Sequence[Any], tasks: int) -> None:
    """``tasks`` tasks from :data:`WORKERS` workers; appends one sample to each list."""
    from pmcp_tasks.mcp.client import get_task

    creates: list[float] = []
    gets: list[float] = []
    per_worker = max(1, tasks // WORKERS)

    async def worker(index: int) -> None:
        create_on = sessions[index % len(sessions)]
        poll_on = sessions[(index + 1) % len(sessions)]
        for _ in range(per_worker):
            start = time.perf_counter()
            created = await create_on.call_tool("slow_compute", {"seconds": 0}, allow_claimed=True)
            creates.append(time.perf_counter() - start)
            while True:
                start = time.perf_counter()
                view = await get_task(poll_on, created.task_id)
                gets.append(time.perf_counter() - start)
                status = view.field("status")
                if status == "completed":
                    break
                if status in ("failed", "cancelled"):
                    raise RuntimeError(f"{system.name}: task {created.task_id} is {status}")
                await asyncio.sleep(POLL_GAP)

    cpu = system.cpu()
    start = time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(WORKERS)))
    elapsed = time.perf_counter() - start
    done = per_worker * WORKERS
    system.tasks_per_second.append(done / elapsed)
    system.cpu_per_task.append((system.cpu() - cpu) / done)
    system.creates.append(statistics.median(creates))
    system.gets.append(statistics.median(gets))
    system.gets_per_task.append(len(gets) / done)


async def _compare(store: str, ours: System, peer: System, settings: Settings) -> Row:
    tasks = settings.iterations(TASKS)
    load = os.getloadavg()[0]
    async with AsyncExitStack() as stack:
        sessions: dict[str, list[Any]] = {}
        for system in (ours, peer):
            sessions[system.name] = []
            for url in system.urls:
                http = await stack.enter_async_context(_http())
                client = await stack.enter_async_context(_client(url, http))
                sessions[system.name].append(client.session)
        for system in (ours, peer):  # warm-up: imports, connections, first allocations
            await _repetition(system, sessions[system.name], max(WORKERS, tasks // 10))
            system.rss_start = system.rss()
            for samples in system.samples():
                samples.clear()
        for repetition in range(settings.rounds):
            order = (ours, peer) if repetition % 2 == 0 else (peer, ours)
            for system in order:
                await _repetition(system, sessions[system.name], tasks)
        for system in (ours, peer):
            system.rss_growth = system.rss() - system.rss_start
    done = max(1, tasks // WORKERS) * WORKERS * settings.rounds
    return Row(store, ours, peer, done, (load, os.getloadavg()[0]))


def _http() -> Any:
    import httpx2

    return httpx2.AsyncClient(timeout=120, limits=httpx2.Limits(keepalive_expiry=KEEPALIVE))


def _client(url: str, http: Any) -> Any:
    """The official SDK's ``Client``, stateless at 2026-07-28, declaring the tasks extension;
    ``call_tool(..., allow_claimed=True)`` hands back each task's ``CreateTaskResult``."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from pmcp_tasks.mcp.client import TaskRequester

    return Client(
        streamable_http_client(url, http_client=http),
        mode=MCP_VERSION,
        extensions=[TaskRequester()],
        cache=None,
    )


def _system(name: str, servers: list[RunningServer]) -> System:
    return System(name, [s.url for s in servers], [s.process.pid for s in servers])


async def _redis_keys(url: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        return int(await client.dbsize())
    finally:
        await client.aclose()


async def _flush(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def run(settings: Settings, redis_url: str, logs: Path) -> AsyncIterator[Row]:
    """Memory (one process each), then Redis with one and with two processes per system; each
    row as soon as it is measured (a run takes minutes per row)."""
    base = redis_url.rsplit("/", 1)[0]
    ours_db, peer_db = f"{base}/1", f"{base}/2"
    stamp = int(time.time())
    configurations = [("memory", 1), ("redis", 1), ("redis", 2)]
    for store, processes in configurations:
        label = f"{store}, {processes} process{'es' if processes > 1 else ''}"
        namespace = f"bench-peer-{stamp}-{store}-{processes}"
        if store == "memory":
            ours_args = ["--backend", "memory", "--max-tasks", str(OURS_CAP)]
            docket = "memory://"
        else:
            ours_args = [*_ours_on_redis(ours_db), "--max-tasks", str(OURS_CAP)]
            docket = peer_db
        with ExitStack() as stack:
            ours_servers = [
                stack.enter_context(
                    example_mcp_server(
                        [*ours_args, "--namespace", namespace],
                        logs / f"peer-ours-{store}-{processes}-{i}.log",
                    )
                )
                for i in range(processes)
            ]
            peer_servers = [
                stack.enter_context(
                    peer_server(docket, namespace, logs / f"peer-peer-{store}-{processes}-{i}.log")
                )
                for i in range(processes)
            ]
            ours, peer = _system("ours", ours_servers), _system("peer", peer_servers)
            row = await _compare(label, ours, peer, settings)
            if store == "redis":
                ours.redis_keys = await _redis_keys(ours_db)
                peer.redis_keys = await _redis_keys(peer_db)
        if store == "redis":  # the next configuration starts from empty databases
            await _flush(ours_db)
            await _flush(peer_db)
        yield row


def _ours_on_redis(url: str) -> list[str]:
    return ["--backend", "redis", "--backend-option", f"redis_url={url}"]


@dataclass(frozen=True)
class CliffPass:
    stored: int  # tasks of the one owner before the pass
    tasks: int
    tasks_per_second: float
    cpu_per_task: float


async def cap_cliff(settings: Settings, redis_url: str, logs: Path) -> list[CliffPass]:
    """Our server on Redis at its default cap (100 unfinished tasks per owner), no peer:
    consecutive passes of the comparison's workload, each starting with more finished tasks
    of the one owner in the store."""
    url = redis_url.rsplit("/", 1)[0] + "/3"
    tasks = 128 if settings.quick else 208  # passes that cross the cap, quick or not
    passes = []
    log = logs / "peer-ours-default-cap.log"
    namespace = f"bench-peer-cliff-{int(time.time())}"
    with example_mcp_server([*_ours_on_redis(url), "--namespace", namespace], log) as server:
        ours = _system("ours", [server])
        async with (
            _http() as http,
            _client(server.url, http) as client,
        ):
            stored = 0
            for _ in range(CLIFF_PASSES):
                await _repetition(ours, [client.session], tasks)
                done = max(1, tasks // WORKERS) * WORKERS
                passes.append(
                    CliffPass(stored, done, ours.tasks_per_second[-1], ours.cpu_per_task[-1])
                )
                stored += done
    await _flush(url)
    return passes


def cliff_table(passes: list[CliffPass]) -> str:
    lines = [
        "| tasks of the owner before the pass | tasks | tasks/s | server CPU ms/task |",
        "|---|---|---|---|",
    ]
    for p in passes:
        lines.append(
            f"| {p.stored:,} | {p.tasks:,} | {p.tasks_per_second:.0f} "
            f"| {p.cpu_per_task * 1e3:.2f} |"
        )
    return "\n".join(lines)


def _ratio(ours: list[float], peer: list[float]) -> float:
    """Median of the per-repetition ratios ours/peer (repetition k of one beside k of the
    other, which ran next to each other)."""
    return statistics.median(o / p for o, p in zip(ours, peer, strict=True))


PEER_HEADER = (
    "| store | tasks | load | tasks/s ours / peer (ratio) | create p50 ms (ratio) "
    "| tasks/get p50 ms (ratio) | server CPU ms/task (ratio) | gets/task "
    "| RSS growth MiB (ratio) | Redis keys (ratio) |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def peer_row(row: Row) -> str:
    """One table line; each ratio is ours/peer (lower is better for ours, but for tasks/s)."""
    o, p = row.ours, row.peer
    med = statistics.median
    keys = "n/a"
    if o.redis_keys is not None and p.redis_keys:
        keys = f"{o.redis_keys:,} / {p.redis_keys:,} ({o.redis_keys / p.redis_keys:.2f}x)"
    growth = f"{o.rss_growth / 2**20:.1f} / {p.rss_growth / 2**20:.1f}"
    if p.rss_growth > 0:
        growth += f" ({o.rss_growth / p.rss_growth:.2f}x)"
    return (
        f"| {row.store} | {row.tasks:,} | {row.load[0]:.1f}-{row.load[1]:.1f} "
        f"| {med(o.tasks_per_second):.0f} / {med(p.tasks_per_second):.0f} "
        f"({_ratio(o.tasks_per_second, p.tasks_per_second):.2f}x) "
        f"| {med(o.creates) * 1e3:.1f} / {med(p.creates) * 1e3:.1f} "
        f"({_ratio(o.creates, p.creates):.2f}x) "
        f"| {med(o.gets) * 1e3:.1f} / {med(p.gets) * 1e3:.1f} "
        f"({_ratio(o.gets, p.gets):.2f}x) "
        f"| {med(o.cpu_per_task) * 1e3:.2f} / {med(p.cpu_per_task) * 1e3:.2f} "
        f"({_ratio(o.cpu_per_task, p.cpu_per_task):.2f}x) "
        f"| {med(o.gets_per_task):.1f} / {med(p.gets_per_task):.1f} "
        f"| {growth} | {keys} |"
    )


if __name__ == "__main__":  # the peer server process: PORT DOCKET_URL DOCKET_NAME
    serve_peer(int(sys.argv[1]), sys.argv[2], sys.argv[3])
