"""Cancel latency: from ``tasks/cancel`` to the handler's ``CancelledError``.

The handler is a plain ``await asyncio.sleep(60)`` that never looks at its task. Scenarios:

* ``memory``: one instance; the cancel wakes its own watcher.
* ``redis, same instance``: one instance on a real redis-server; likewise.
* ``redis, across instances, pub/sub``: the cancel goes through B, the handler runs on A; the
  notice travels over Redis pub/sub (:class:`reference_backends.redis.notify.RedisNotifier`).
* ``redis, across instances, polling``: the same without a notifier: A finds the cancel at its
  next watch (the poll interval, ``POLL`` s).

Both instances are in this process (in-memory MCP transports, separate extensions, stores and
Redis connections): only the notice or the poll carries the cancel from B to A. Run:
``python -m benchmarks.cancel_latency [--cancels N]`` (redis-server on PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer
from servers import redis_server, redis_server_url

from pmcp_tasks import GenericTaskStore, StoreConfig
from pmcp_tasks.backend import StorageBackend
from pmcp_tasks.mcp import TasksExtension, current_task
from pmcp_tasks.mcp.client import TaskCancelledError, TaskRequester, cancel_task
from pmcp_tasks.notify import CancelNotifier
from reference_backends.memory import InMemoryBackend
from reference_backends.redis import RedisBackend
from reference_backends.redis.notify import RedisNotifier

POLL = 0.5
"""The store's poll interval (so the watch interval) in every scenario, in seconds."""
VERSION = "2026-07-28"
MAX_LOOKS = 60_000
"""Looks, 1 ms apart, for the handler's CancelledError before a measurement gives up."""


class Instance:
    """One server instance whose ``sleeper`` tool records when its sleep was cancelled."""

    def __init__(self, backend: StorageBackend, notifier: CancelNotifier | None) -> None:
        config = StoreConfig(allow_anonymous=True, poll_interval=POLL, max_tasks_per_owner=None)
        self.tasks = TasksExtension(GenericTaskStore(backend, config), notifier=notifier)
        self.server: MCPServer[Any] = MCPServer("cancel-latency", extensions=[self.tasks])
        self.started = asyncio.Event()
        self.task_id = ""
        self.cancelled_at = 0.0

        @self.tasks.tool(self.server, support="required")
        async def sleeper() -> str:
            self.task_id = current_task().task_id
            self.started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled_at = time.perf_counter()
                raise
            return "slept"


async def measure(runner: Instance, canceller: Instance, cancels: int) -> list[float]:
    """Milliseconds from sending ``tasks/cancel`` (through ``canceller``) to the handler's
    ``CancelledError`` (on ``runner``), ``cancels`` times."""
    await runner.tasks.open()
    await canceller.tasks.open()
    latencies = []
    async with (
        Client(runner.server, mode=VERSION, extensions=[TaskRequester()]) as on_runner,
        Client(canceller.server, mode=VERSION, extensions=[TaskRequester()]) as on_other,
    ):
        for _ in range(cancels):
            runner.started.clear()
            call = asyncio.ensure_future(on_runner.call_tool("sleeper", {}))
            await runner.started.wait()
            before = runner.cancelled_at
            sent = time.perf_counter()
            await cancel_task(on_other.session, runner.task_id)
            for _ in range(MAX_LOOKS):
                if runner.cancelled_at != before:
                    break
                await asyncio.sleep(0.001)
            else:
                raise RuntimeError(f"the handler was not cancelled after {MAX_LOOKS} looks")
            latencies.append((runner.cancelled_at - sent) * 1000)
            with contextlib.suppress(TaskCancelledError):
                await call
    return latencies


async def run(cancels: int) -> None:
    with tempfile.TemporaryDirectory() as logs, redis_server(Path(logs)) as server:
        url = redis_server_url(server)
        scenarios: dict[str, Callable[[], tuple[Instance, Instance]]] = {}

        def one(backend: StorageBackend) -> tuple[Instance, Instance]:
            instance = Instance(backend, None)
            return instance, instance

        def two(notify: bool) -> tuple[Instance, Instance]:
            space = f"cancel-{time.monotonic_ns()}"

            def make() -> Instance:
                notifier = RedisNotifier.from_url(url, namespace=space) if notify else None
                return Instance(RedisBackend.from_url(url, namespace=space), notifier)

            return make(), make()

        scenarios["memory"] = lambda: one(InMemoryBackend())
        scenarios["redis, same instance"] = lambda: one(RedisBackend.from_url(url))
        scenarios["redis, across instances, pub/sub"] = lambda: two(True)
        scenarios["redis, across instances, polling"] = lambda: two(False)
        print(f"tasks/cancel to CancelledError, ms ({cancels} cancels each, poll {POLL} s)")
        print("| scenario | p50 | p95 | max |")
        print("|---|---:|---:|---:|")
        for name, make in scenarios.items():
            runner, canceller = make()
            try:
                found = sorted(await measure(runner, canceller, cancels))
            finally:
                await runner.tasks.aclose()
                if canceller is not runner:
                    await canceller.tasks.aclose()
                await runner.tasks.store.backend.aclose()
                if canceller is not runner:
                    await canceller.tasks.store.backend.aclose()
            p95 = found[min(len(found) - 1, round(0.95 * (len(found) - 1)))]
            print(f"| {name} | {statistics.median(found):.1f} | {p95:.1f} | {found[-1]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cancel_latency", description=__doc__
    )
    parser.add_argument("--cancels", type=int, default=50, help="cancels per scenario")
    asyncio.run(run(parser.parse_args().cancels))


if __name__ == "__main__":
    main()
