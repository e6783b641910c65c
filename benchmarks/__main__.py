"""``python -m benchmarks [--quick] [--only SECTION ...]``: one run, every table.

Sections: ``memory``, ``redis``, ``dynamodb`` (backend against raw client), ``store``
(GenericTaskStore over each backend, with a profile), ``kit`` (conformance kit wall time) and
``mcp`` (the MCP binding over streamable HTTP; needs the mcp extra), ``cap`` (the per-owner
cap on a real redis-server) and ``redis-dead`` (Redis with 100,000 dead records in one owner's
partition), printed in that order. ``peer`` (ours against fastmcp + ``fastmcp-tasks``, which
this project does not depend on) runs only when named: ``--only peer``.
The Redis, DynamoDB and MCP sections start their own servers, log their output to ``--logs``
and stop them at the end. A ``--quick`` run says at its top and bottom that it is a smoke run:
it shows that every section works, not how fast anything is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from servers import moto_server_process, redis_server, redis_server_url

from benchmarks import kit_bench, memory_bench
from benchmarks.report import kit_table, op_table, profile_table, store_table
from benchmarks.workload import Settings
from pmcp_tasks.backend import StorageBackend
from reference_backends.memory import InMemoryBackend

# The Redis, DynamoDB and store sections import their clients when they run, so that
# ``--only memory kit`` works in an environment without the redis and dynamodb extras.

SECTIONS = ("memory", "redis", "dynamodb", "store", "kit", "mcp", "cap", "redis-dead")
OPTIONAL = ("peer",)


SMOKE = (
    "SMOKE RUN (--quick): few iterations and rounds on a possibly busy machine. Its figures "
    "prove nothing, its Met column included; measure with a full run (docs/performance.md)."
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run (few iterations, 3 rounds) that shows the benchmark works, not figures",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS + OPTIONAL,
        default=list(SECTIONS),
        help="sections to run (default: all but peer)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per comparison")
    parser.add_argument(
        "--logs",
        type=Path,
        default=None,
        help="directory for the servers' logs (default: a new temporary directory)",
    )
    return parser.parse_args(argv)


def store_backends(redis_url: str, moto_url: str) -> dict[str, tuple[StorageBackend, int]]:
    """Each backend for the store section, with the iterations it can afford."""
    from benchmarks import dynamodb_bench
    from reference_backends.dynamodb import DynamoDbBackend
    from reference_backends.redis import RedisBackend

    client = dynamodb_bench.open_client(moto_url)
    return {
        "memory": (InMemoryBackend(namespace="store"), 2_000),
        "redis": (RedisBackend.from_url(redis_url, namespace="store"), 300),
        "dynamodb": (
            DynamoDbBackend.from_client(client, dynamodb_bench.TABLE, namespace="store"),
            30,
        ),
    }


def cpu_model() -> str:
    """The CPU's model name where Linux tells it, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def header() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"Python {platform.python_version()} on {platform.platform()}, "
        f"{os.cpu_count()} x {cpu_model()}, load average {load}"
    )


async def main(args: argparse.Namespace, logs: Path) -> int:
    if "peer" in args.only:
        from benchmarks import peer_bench

        if peer_bench.missing():
            print(
                f"python -m benchmarks: the peer section needs {', '.join(peer_bench.missing())}:"
                f" {peer_bench.INSTALL}",
                file=sys.stderr,
            )
            return 3
    settings = Settings(quick=args.quick, rounds=args.rounds or (3 if args.quick else 7))
    started = time.perf_counter()
    if settings.quick:
        print(SMOKE + "\n", flush=True)
    print(header(), flush=True)
    print(f"Server logs: {logs}", flush=True)
    only = set(args.only)
    with ExitStack() as servers:
        if "memory" in only:
            print("\n## 1. InMemoryBackend vs a dict under a lock\n", flush=True)
            print(op_table(await memory_bench.run(settings)), flush=True)
        redis_url = ""
        if {"redis", "store", "mcp", "cap", "redis-dead", "peer"} & only:
            redis = servers.enter_context(redis_server(logs, logfile="redis-server.log"))
            redis_url = redis_server_url(redis)
        if "redis" in only:
            from benchmarks import redis_bench

            print("\n## 2. RedisBackend vs raw redis-py (real redis-server)\n", flush=True)
            print(op_table(await redis_bench.run(settings, redis_url)), flush=True)
        moto_url = ""
        if {"dynamodb", "store"} & only:
            moto_url = servers.enter_context(moto_server_process(logs / "moto-server.log"))
        if "dynamodb" in only:
            from benchmarks import dynamodb_bench

            print("\n## 3. DynamoDbBackend vs raw boto3 (moto server over HTTP)\n", flush=True)
            print(op_table(await dynamodb_bench.run(settings, moto_url)), flush=True)
        if "store" in only:
            from benchmarks import store_bench

            print("\n## 4. GenericTaskStore over each backend\n", flush=True)
            rows, shares = await store_bench.run(settings, store_backends(redis_url, moto_url))
            print(store_table(rows), flush=True)
            print("\nProfile (cProfile, in-memory backend):\n", flush=True)
            print(profile_table(shares), flush=True)
        if "kit" in only:
            print(
                "\n## 5. Conformance kit wall time (pytest --backend=NAME, empty dir)\n", flush=True
            )
            print(kit_table(kit_bench.run(settings)), flush=True)
        if "mcp" in only:
            from benchmarks import mcp_bench

            print("\n## 6. The MCP binding over streamable HTTP (example server)\n", flush=True)
            print(mcp_bench.mcp_table(await mcp_bench.run(settings, redis_url, logs)), flush=True)
        if "cap" in only:
            from benchmarks import cap_bench

            print("\n## 7. The per-owner cap on a real redis-server\n", flush=True)
            print(cap_bench.cap_table(await cap_bench.run(settings, redis_url)), flush=True)
        if "redis-dead" in only:
            from benchmarks import redis_dead_records

            print("\n## 8. Redis: 100,000 dead records in one owner's partition\n", flush=True)
            dead_rows = await redis_dead_records.run(settings, redis_url)
            print(redis_dead_records.dead_table(dead_rows), flush=True)
        if "peer" in only:
            from benchmarks import peer_bench

            print("\n## 9. Against the peer: fastmcp + fastmcp-tasks on pydocket\n", flush=True)
            print(peer_bench.versions() + "\n", flush=True)
            rounds = args.rounds or (settings.rounds if settings.quick else peer_bench.REPETITIONS)
            print(peer_bench.PEER_HEADER, flush=True)
            async for row in peer_bench.run(replace(settings, rounds=rounds), redis_url, logs):
                print(peer_bench.peer_row(row), flush=True)
            print("\nOurs on Redis at the default cap (100 per owner), one owner:\n", flush=True)
            cliff = await peer_bench.cap_cliff(settings, redis_url, logs)
            print(peer_bench.cliff_table(cliff), flush=True)
    print(f"\nTotal {time.perf_counter() - started:.0f} s; {header()}")
    if settings.quick:
        print("\n" + SMOKE)
    return 0


def cli(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logs: Path = args.logs or Path(tempfile.mkdtemp(prefix="pmcp-bench-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(main(args, logs))
    except RuntimeError as exc:  # a server that could not start: say which, no traceback
        print(f"python -m benchmarks: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
