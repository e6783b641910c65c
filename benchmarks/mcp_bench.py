"""Section 6: the MCP binding over streamable HTTP, on the example server in its own process.

``tasks/get`` of a finished task against a trivial synchronous ``tools/call`` on the same
server (both one HTTP round trip through the SDK; the difference is the store read and the
tasks view), and tasks created per second through ``tools/call``, one client and 16 at a time.
Requests are raw JSON-RPC over one keep-alive HTTP client, so the client costs the same on
both sides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from servers import example_mcp_server, mcp_request

from benchmarks.timing import Comparison, Side, compare, timed_pass
from benchmarks.workload import Settings


@dataclass(frozen=True)
class McpRow:
    store: str
    get_vs_call: Comparison
    creates_per_second: float
    creates_per_second_16: float


class Wire:
    """Posts one JSON-RPC request per call, with the 2026-07-28 envelope and headers."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url
        self.sent = 0

    async def request(self, method: str, params: dict[str, Any], name: str) -> Any:
        body, headers = mcp_request(method, params, name)
        self.sent += 1
        answer = (await self.http.post(self.url, json=body, headers=headers)).json()
        if "result" not in answer:
            raise RuntimeError(f"{method} failed: {answer}")
        return answer["result"]

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        return await self.request("tools/call", {"name": tool, "arguments": arguments}, tool)

    async def get(self, task_id: str) -> Any:
        return await self.request("tasks/get", {"taskId": task_id}, task_id)


async def _one(url: str, store: str, settings: Settings) -> McpRow:
    async with httpx2.AsyncClient(timeout=60) as http:
        wire = Wire(http, url)
        created = await wire.call("slow_compute", {"seconds": 0})
        while (await wire.get(created["taskId"]))["status"] != "completed":
            pass  # a few reads at most: the handler finishes at once

        async def get(worker: int, i: int) -> None:
            await wire.get(created["taskId"])

        async def call(worker: int, i: int) -> None:
            await wire.call("greet", {"name": "bench"})

        async def create(worker: int, i: int) -> None:
            await wire.call("slow_compute", {"seconds": 0})

        iterations = settings.iterations(400)
        versus = await compare(Side(get), Side(call), iterations=iterations, rounds=settings.rounds)
        one = await timed_pass(Side(create), 1, iterations)
        many = await timed_pass(Side(create), 16, max(1, iterations // 16))
    return McpRow(store, versus, 1 / one.seconds, 1 / many.seconds)


async def run(settings: Settings, redis_url: str, logs: Path) -> list[McpRow]:
    rows = []
    stores = {"memory": ["--backend", "memory"]}
    if redis_url:
        stores["redis"] = ["--backend", "redis", "--backend-option", f"redis_url={redis_url}"]
    for store, args in stores.items():
        namespace = f"bench-mcp-{int(time.time())}"
        log = logs / f"mcp-example-{store}.log"
        with example_mcp_server([*args, "--namespace", namespace], log) as server:
            rows.append(await _one(server.url, store, settings))
    return rows


def mcp_table(rows: list[McpRow]) -> str:
    lines = [
        "| store | tasks/get | sync tools/call | ratio | creates/s (1 client) | creates/s (16) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        c = row.get_vs_call
        lines.append(
            f"| {row.store} | {c.subject * 1e3:.2f} ms | {c.baseline * 1e3:.2f} ms | "
            f"{c.ratio:.2f}x | {row.creates_per_second:.0f} | {row.creates_per_second_16:.0f} |"
        )
    return "\n".join(lines)
