"""KitTarget: the kit takes its hooks from what the factory returned, never from the backend."""

from __future__ import annotations

import pytest

from conformance import KitTarget
from conformance.contract.base import requires_plant_damaged, requires_seed
from conformance.harness import ManualClock, open_target
from pmcp_tasks.backend import Clock
from reference_backends.memory import InMemoryBackend, MemoryKitHooks, MemoryStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class OnlyDrop:
    """Hooks with ``drop_namespace`` alone, counting its calls."""

    def __init__(self, backend: InMemoryBackend) -> None:
        self.inner = MemoryKitHooks(backend)
        self.drops = 0

    async def drop_namespace(self) -> None:
        self.drops += 1
        await self.inner.drop_namespace()


async def test_a_plain_backend_is_a_target_without_hooks() -> None:
    store = MemoryStore()

    def factory(*, namespace: str, clock: Clock) -> InMemoryBackend:
        return InMemoryBackend(namespace=namespace, clock=clock, store=store)

    target = await open_target(factory, namespace="n", clock=ManualClock())
    assert isinstance(target.backend, InMemoryBackend)
    assert target.hooks is None
    await target.backend.put("p:k", b"x")
    await target.dispose()  # no drop hook: the record stays, the backend is closed
    assert store.namespaces["n"], "dispose without a drop_namespace hook removed records"
    with pytest.raises(pytest.skip.Exception, match=r"no seed hook \(KitTarget hooks: none\)"):
        requires_seed(target, "KV-VER-1")


async def test_hooks_are_found_by_name_on_the_hooks_object() -> None:
    store = MemoryStore()
    made: list[OnlyDrop] = []

    async def factory(*, namespace: str, clock: Clock) -> KitTarget:
        backend = InMemoryBackend(namespace=namespace, clock=clock, store=store)
        made.append(OnlyDrop(backend))
        return KitTarget(backend, made[-1])

    target = await open_target(factory, namespace="n", clock=ManualClock())
    assert target.hooks is made[0]
    await target.backend.put("p:k", b"x")
    await target.dispose()
    assert made[0].drops == 1
    assert store.namespaces["n"].partitions == {}, "drop_namespace left records behind"
    # The backend has no hooks of its own, and the hooks object has no seed: both are named.
    assert not hasattr(target.backend, "kit_seed")
    with pytest.raises(pytest.skip.Exception, match=r"no seed hook \(KitTarget hooks: OnlyDrop\)"):
        requires_seed(target, "KV-VER-1")
    with pytest.raises(pytest.skip.Exception, match=r"no plant_damaged hook.*KV-DAMAGE-1 needs"):
        requires_plant_damaged(target, "KV-DAMAGE-1")


async def test_the_memory_kit_factory_gives_its_hooks() -> None:
    from reference_backends.memory import kit_factory

    target = kit_factory(namespace="n-hooks", clock=ManualClock())
    assert isinstance(target.hooks, MemoryKitHooks)
    seed = requires_seed(target, "KV-VER-1")
    await seed.seed("p:k", b"x", 2**53, None)
    record = await target.backend.get("p:k")
    assert record is not None
    assert record.version == 2**53
    await target.dispose()
    assert await target.backend.get("p:k") is None
