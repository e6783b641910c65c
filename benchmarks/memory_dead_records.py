"""The memory backend with 25,000 / 50,000 / 100,000 dead records in one partition.

For ``cleanup_expired`` and for the first and second ``list_by_prefix`` after the records
died: the call's total time, and the longest the event loop was held (the longest gap between
turns of a task that only yields), which is what every other task of the process waits.
Run: ``python -m benchmarks.memory_dead_records``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from conformance.harness import ManualClock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "reliability"))
from reliability_support import dead_partition, loop_share  # type: ignore[import-not-found]

SIZES = (25_000, 50_000, 100_000)
START = 1_800_000_000.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def main() -> None:
    print("| dead records | call | total ms | longest loop block ms |")
    print("|---:|---|---:|---:|")
    for size in SIZES:
        backend = await dead_partition(ManualClock(start=START), size)
        for label in ("first list_by_prefix", "second list_by_prefix"):
            _, share = await loop_share(backend.list_by_prefix("p:", limit=50))
            print(f"| {size:,} | {label} | {_ms(share.total)} | {_ms(share.longest_block)} |")
        _, share = await loop_share(backend.cleanup_expired())
        print(
            f"| {size:,} | cleanup_expired (after the listings) | {_ms(share.total)} | "
            f"{_ms(share.longest_block)} |"
        )
        backend = await dead_partition(ManualClock(start=START), size)
        _, share = await loop_share(backend.cleanup_expired())
        print(
            f"| {size:,} | cleanup_expired (no listing before) | {_ms(share.total)} | "
            f"{_ms(share.longest_block)} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
