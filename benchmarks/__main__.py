"""``python -m benchmarks [--quick] [--only SECTION ...]``: one run, every table.

Sections: ``memory``, ``redis``, ``dynamodb`` (backend against raw client), ``store``
(GenericTaskStore over each backend, with a profile) and ``kit`` (conformance kit wall time).
The Redis and DynamoDB sections start their own servers and stop them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from contextlib import ExitStack

from benchmarks import memory_bench, redis_bench
from benchmarks.report import op_table
from benchmarks.servers import redis_server
from benchmarks.workload import Settings

SECTIONS = ("memory", "redis", "dynamodb", "store", "kit")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: few iterations, 3 rounds"
    )
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per comparison")
    return parser.parse_args(argv)


def header() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"Python {platform.python_version()} on {platform.platform()}, "
        f"{os.cpu_count()} CPUs, load average {load}"
    )


async def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = Settings(quick=args.quick, rounds=args.rounds or (3 if args.quick else 7))
    started = time.perf_counter()
    print(header(), flush=True)
    with ExitStack() as servers:
        if "memory" in args.only:
            print("\n## 1. InMemoryBackend vs a dict under a lock\n", flush=True)
            print(op_table(await memory_bench.run(settings)), flush=True)
        redis_url = ""
        if "redis" in args.only or "store" in args.only:
            redis_url = servers.enter_context(redis_server())
        if "redis" in args.only:
            print("\n## 2. RedisBackend vs raw redis-py (real redis-server)\n", flush=True)
            print(op_table(await redis_bench.run(settings, redis_url)), flush=True)
    print(f"\nTotal {time.perf_counter() - started:.0f} s; {header()}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
