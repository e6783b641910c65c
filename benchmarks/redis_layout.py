"""What a raw Redis client needs to do the backend's work: its documented layout and scripts.

The raw-client baseline (section 2) and the planting of dead records (section 8) send the
backend's own commands without going through it. They take what ``docs/backends/redis.md``
documents, not the backend's private names: the key layout, the Lua scripts shipped as package
data (``_common.lua`` prepended to each) and the listing's batch and budget. When a script's
keys or arguments change, the benchmark's replies stop being ``ok`` and its smoke test
(tests/test_benchmarks_smoke.py) fails, rather than the baseline drifting unseen.
"""

from __future__ import annotations

from importlib import resources

LIST_BATCH = 128  # index entries one ZRANGEBYLEX of list.lua fetches ("Scripts" table)
LIST_BUDGET = 256  # index entries one step of list.lua examines at most ("Bounded listing")


def script(name: str) -> str:
    """The text the backend loads for ``name`` (write, delete, list, cleanup, seed)."""
    scripts = resources.files("reference_backends.redis").joinpath("scripts")
    return "".join(
        scripts.joinpath(part).read_text("utf-8") for part in ("_common.lua", f"{name}.lua")
    )


def partition_base(namespace: str, partition: str) -> str:
    """The prefix of a partition's keys; its ``{hash tag}`` keeps them in one cluster slot."""
    return f"{namespace}:{{{partition}}}:"


def indexes(namespace: str, partition: str) -> list[str]:
    """The partition index, the expiry index and the parked entries, in the scripts' order."""
    base = partition_base(namespace, partition)
    return [base + "i", base + "x", base + "d"]


def record_keys(namespace: str, partition: str, item: str) -> list[str]:
    """The KEYS of write.lua and delete.lua: the record hash, then the partition's indexes."""
    return [partition_base(namespace, partition) + "r:" + item, *indexes(namespace, partition)]
