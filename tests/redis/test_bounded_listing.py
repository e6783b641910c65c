"""A Redis listing step does a bounded amount of server work, whatever the partition holds.

Dead records used to be walked by one Lua run per page, however many there were (100,000 dead
records blocked the server for 1.5 s per ``list()``). Now one run of list.lua examines at most
``LIST_BUDGET`` index entries. When the partition has at most that many live records and some
dead ones, a step takes the live ones from the expiry index and never meets a dead one.
Otherwise it walks: it tells dead entries from the expiry index's scores without reading their
hashes, parks them out of the partition index (so that later pages do not walk them again, and
a clock that goes back brings them back), and the page goes on in another run from where the
last one stopped. Shown here on fakeredis and a real server with a small budget (many steps
per page), and with the real budget under MONITOR.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from redis_support import monitored

from conformance.harness import ManualClock
from reference_backends.redis import RedisBackend
from reference_backends.redis.backend import LIST_BUDGET, RedisInternals

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock(engine_clock: ManualClock) -> ManualClock:
    return engine_clock


@pytest.fixture
def backend(engine_backend: RedisBackend) -> RedisBackend:
    return engine_backend


def small_steps(backend: RedisBackend) -> RedisBackend:
    """``backend`` with listing steps of a budget of 16 entries and batches of 5."""
    RedisInternals(backend).tune_listing(budget=16, batch=5)
    return backend


@pytest.fixture
def steps(backend: RedisBackend, engine: Redis, monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """The arguments of every run of list.lua on ``engine`` (read at the client, where the
    backend sends them), ``backend`` in small steps."""
    small_steps(backend)
    list_sha = hashlib.sha1(RedisInternals.shipped_scripts()["list"].encode()).hexdigest()
    runs: list[list[Any]] = []
    evalsha = engine.evalsha

    async def recording(sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        reply = await evalsha(sha, numkeys, *keys_and_args)
        if sha == list_sha:  # a run the server made (not one refused as NOSCRIPT, then loaded)
            runs.append(list(keys_and_args[numkeys:]))
        return reply

    monkeypatch.setattr(engine, "evalsha", recording)
    return runs


async def _fill(backend: RedisBackend, clock: ManualClock) -> list[str]:
    """200 records that die long before now, 30 that die just before now, 20 that live,
    interleaved by key; returns the live keys in order."""
    live: list[str] = []
    for index in range(250):
        key = f"p:k{index:03d}"
        if index % 25 == 0 or index % 25 == 12:
            await backend.put(key, b"live", expires_at=None if index % 2 else clock() + 3600)
            live.append(key)
        elif index % 25 < 4:
            await backend.put(key, b"dying", expires_at=clock() + 3000)
        else:
            await backend.put(key, b"dead", expires_at=clock() + 10)
    clock.advance(3001)  # the first 200 died 2991 s ago (past the grace), the 30 just now
    return live


async def test_a_page_is_walked_in_bounded_steps_and_stays_full(
    backend: RedisBackend, clock: ManualClock, steps: list[list[Any]]
) -> None:
    live = await _fill(backend, clock)
    assert len(live) == 20
    assert [key for key, _ in await backend.list_by_prefix("p:")] == live
    assert len(steps) >= 250 // 16  # no step walked more than its budget
    assert all(step[6] == 16 for step in steps)
    paged: list[str] = []
    after: str | None = None
    while True:
        page = [key for key, _ in await backend.list_by_prefix("p:", after=after, limit=3)]
        paged += page
        if len(page) < 3:
            break
        after = page[-1]
    assert paged == live


async def test_dead_entries_are_parked_once_and_left_for_cleanup(
    backend: RedisBackend,
    engine: Redis,
    engine_namespace: str,
    clock: ManualClock,
    steps: list[list[Any]],
) -> None:
    live = await _fill(backend, clock)
    base = f"{engine_namespace}:{{p}}:"
    assert await engine.zcard(base + "i") == 250
    assert [key for key, _ in await backend.list_by_prefix("p:")] == live
    first = len(steps)
    assert await engine.zcard(base + "i") == 20  # every dead entry met was parked
    assert await engine.zcard(base + "d") == 230
    assert await engine.zcard(base + "x") == 250  # kept (cleanup removes and counts); +inf: never
    assert [key for key, _ in await backend.list_by_prefix("p:")] == live
    assert len(steps) - first < 250 // 16  # the second walks the 20 live entries, not 250
    assert await backend.cleanup_expired() == 230
    assert await engine.zcard(base + "i") == 20
    assert await engine.zcard(base + "d") == 0
    assert [key for key, _ in await backend.list_by_prefix("p:")] == live


@pytest.mark.parametrize("grace", [None, 60.0])
async def test_a_clock_that_goes_back_lists_parked_records_again(
    engine: Redis,
    engine_namespace: str,
    clock: ManualClock,
    steps: list[list[Any]],
    grace: float | None,
) -> None:
    """KV-LIVE-3 across parking: more records come back than one step's budget (16)."""
    backend = small_steps(
        RedisBackend(
            engine, namespace=engine_namespace, clock=clock, expiry_grace=grace, allow_eviction=True
        )
    )
    everything = [f"p:k{index:03d}" for index in range(40)]
    for key in everything:
        await backend.put(key, key.encode(), expires_at=clock() + 10)
    others = [f"p:z{index:02d}" for index in range(20)]  # more live than the budget: a walk
    for key in others:
        await backend.put(key, b"other")
    clock.advance(20)
    assert [key for key, _ in await backend.list_by_prefix("p:")] == others
    assert await engine.zcard(f"{engine_namespace}:{{p}}:d") == 40
    clock.advance(-15)  # 5 s before they die: all live again
    listed = await backend.list_by_prefix("p:")
    assert [(key, record.data) for key, record in listed] == [
        *((key, key.encode()) for key in everything),
        *((key, b"other") for key in others),
    ]
    assert await engine.zcard(f"{engine_namespace}:{{p}}:d") == 0
    await backend.put("p:k005", b"rewritten")  # no expiry: never parked again
    clock.advance(15)
    assert [key for key, _ in await backend.list_by_prefix("p:")] == ["p:k005", *others]
    assert await backend.cleanup_expired() == 39


async def _few_live(backend: RedisBackend, clock: ManualClock) -> list[str]:
    """300 dead records and 6 live ones (two never expire) spread among them."""
    live: list[str] = []
    for index in range(306):
        key = f"p:{'ab'[index % 2]}{index:03d}"
        if index % 51 == 7:
            await backend.put(key, b"live", expires_at=None if index % 3 else clock() + 3600)
            live.append(key)
        else:
            await backend.put(key, b"dead", expires_at=clock() + 10)
    clock.advance(20)
    return sorted(live)


async def test_few_live_records_are_listed_without_meeting_the_dead_ones(
    backend: RedisBackend,
    engine: Redis,
    engine_namespace: str,
    clock: ManualClock,
    steps: list[list[Any]],
) -> None:
    live = await _few_live(backend, clock)
    assert len(live) == 6
    assert [key for key, _ in await backend.list_by_prefix("p:")] == live
    assert len(steps) == 2  # one hands the live items back, one reads them: 300 dead unseen
    assert await engine.zcard(f"{engine_namespace}:{{p}}:d") == 0  # nothing walked, nothing parked
    for prefix in ("p:", "p:a", "p:b", "p:b2", "p:c"):
        expected = [key for key in live if key.startswith(prefix)]
        assert [key for key, _ in await backend.list_by_prefix(prefix)] == expected, prefix
        for after in ("p:", "p:a", "p:a057", "p:a058", "p:b", "p:b262", "p:c"):
            tail = [key for key in expected if key > after]
            got = await backend.list_by_prefix(prefix, after=after, limit=2)
            assert [key for key, _ in got] == tail[:2], (prefix, after)
    assert await backend.cleanup_expired() == 300
    assert [key for key, _ in await backend.list_by_prefix("p:")] == live


async def test_a_partition_whose_indexes_disagree_is_walked(
    backend: RedisBackend,
    engine: Redis,
    engine_namespace: str,
    clock: ManualClock,
    steps: list[list[Any]],
) -> None:
    """A record that never expires and has no expiry entry (as written before they were
    scored +inf, or after damage) is still listed: the step walks when the counts disagree."""
    live = await _few_live(backend, clock)
    await backend.put("p:a100", b"old layout")
    await engine.zrem(f"{engine_namespace}:{{p}}:x", "a100")
    assert [key for key, _ in await backend.list_by_prefix("p:")] == sorted([*live, "p:a100"])
    assert len(steps) >= 300 // 16  # walked


async def test_a_parked_set_of_the_wrong_type_is_replaced_with_a_warning(
    backend: RedisBackend,
    engine: Redis,
    engine_namespace: str,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    parked = f"{engine_namespace}:{{p}}:d"
    await backend.put("p:a", b"a")
    await engine.set(parked, b"not a sorted set")
    with caplog.at_level("WARNING", logger="pmcp_tasks"):
        assert [key for key, _ in await backend.list_by_prefix("p:")] == ["p:a"]
    assert parked in caplog.text
    assert await engine.type(parked) in (b"none", b"zset")


@pytest.mark.parametrize("few", [True, False], ids=["few-live", "many-live"])
async def test_every_step_examines_at_most_the_budget_on_a_real_server(
    redis_url: str, clock: ManualClock, few: bool
) -> None:
    """MONITOR shows the Lua side: no run reads more index entries than the budget, and
    with few live records no run walks the index at all."""
    budget = LIST_BUDGET
    alive = 10 if few else budget + 10
    namespace = f"bounded-{uuid.uuid4().hex[:12]}"
    async with Redis.from_url(redis_url) as raw:
        backend = RedisBackend(raw, namespace=namespace, clock=clock)
        try:
            for index in range(3 * budget + 100):
                expires = clock() + 10 if index >= alive else None
                await backend.put(f"p:k{index:05d}", b"x", expires_at=expires)
            clock.advance(20)  # all but the first `alive` are dead
            await backend.list_by_prefix("p:", limit=1)  # warm up: scripts loaded
            pages: list[list[str]] = []

            async def listing() -> None:
                pages.append([key for key, _ in await backend.list_by_prefix("p:")])

            seen = await monitored(redis_url, raw, listing)
            assert pages == [[f"p:k{index:05d}" for index in range(alive)]]
            runs: list[list[str]] = []
            for command in seen:
                words = command["command"].replace('"', "").split()
                if command["client_type"] != "lua":
                    assert words[0].upper() == "EVALSHA"
                    runs.append([])
                else:
                    runs[-1].append(words[0].upper())
                    if words[0].upper() == "ZRANGEBYLEX":
                        runs[-1].extend(["entries"] * int(words[-1]))
            if few:
                assert len(runs) == 2  # hand back, then read: no dead entry met
                assert all(run.count("entries") == 0 for run in runs), runs
            else:
                assert len(runs) >= (3 * budget + 100) // budget  # the walk took several steps
            for run in runs:
                assert run.count("entries") <= budget, run.count("entries")
                assert run.count("HMGET") <= alive
        finally:
            keys = [key async for key in raw.scan_iter(match=f"{namespace}:*")]
            if keys:
                await raw.delete(*keys)
