"""Items this backend never writes, planted with the raw client: each stays isolated.

KV-DAMAGE-1 on more damages than the kit plants: ``get`` of the damaged key raises
``BackendError`` naming it (never a bare ``ValueError`` from decoding); a listing skips it with a
warning on the ``pmcp_tasks`` logger and still returns full pages of the others; writes treat it
as absent (``put`` and a create replace it with version 1, a CAS at a version is ``RecordNotFound``)
and ``delete`` removes it.
Each damage runs on moto in-process and on dynalite (independent engines that differ in how
they answer a failed condition); moto's server adds nothing here that moto in-process lacks.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from dynamodb_targets import Target, stored

from conformance.harness import ManualClock
from pmcp_tasks import BackendError, BackendUnavailable, RecordNotFound
from reference_backends.dynamodb import DynamoDbBackend
from reference_backends.dynamodb.backend import DynamoDbInternals
from reference_backends.dynamodb.kit import DEFAULT_TABLE

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("target", ["inprocess", "dynalite"], indirect=True),
]

# (name, attributes to set, attributes to remove) on a valid live item at version 1, and
# whether a CAS at version 1 still passes its condition there: a condition can check every
# attribute's type but not parse the exact expiry's text, so on those two damages the CAS
# overwrites the item (making it whole) instead of raising RecordNotFound
# (docs/backends/dynamodb.md).
Damage = tuple[str, dict[str, Any], tuple[str, ...], bool]
DAMAGES: list[Damage] = [
    ("version as text", {"version": {"S": "abc"}}, (), False),
    ("version as a numeric string", {"version": {"S": "1"}}, (), False),
    ("version 1e30", {"version": {"N": "1E+30"}}, (), False),
    ("version -1", {"version": {"N": "-1"}}, (), False),
    ("version 0", {"version": {"N": "0"}}, (), False),
    ("fractional version", {"version": {"N": "1.5"}}, (), False),
    ("version missing", {}, ("version",), False),
    ("data as text", {"data": {"S": "not bytes"}}, (), False),
    ("data missing", {}, ("data",), False),
    ("exact expiry not a number", {"expires_at": {"S": "soon"}}, (), True),
    ("exact expiry infinite", {"expires_at": {"S": "inf"}}, (), True),
    ("exact expiry as a number", {"expires_at": {"N": "2000"}}, (), False),
    ("compared expiry as text", {"expiry": {"S": "soon"}}, (), False),
    ("compared expiry missing", {}, ("expiry",), False),
    ("only an infinite exact expiry", {"expires_at": {"S": "inf"}}, ("expiry",), False),
]
IDS = [damage[0] for damage in DAMAGES]
LATER = ManualClock()() + 3600  # the planted item is live: the test clocks start at real time


async def plant(target: Target, backend: DynamoDbBackend, key: str, damage: Damage) -> None:
    """Write ``key`` through the backend at version 1, then damage its item with the raw client."""
    await backend.delete(key)
    assert await backend.put(key, b"good", expires_at=LATER) == 1
    _, sets, removals, _ = damage
    partition, item = key.split(":")
    raw_key = DynamoDbInternals(backend).codec.key(partition, item)
    client = target.client()
    current = client.get_item(TableName=DEFAULT_TABLE, Key=raw_key, ConsistentRead=True)["Item"]
    damaged = {**{k: v for k, v in current.items() if k not in removals}, **sets}
    client.put_item(TableName=DEFAULT_TABLE, Item=damaged)


@pytest.fixture
def damage(request: pytest.FixtureRequest) -> Damage:
    chosen: Damage = request.param
    return chosen


@pytest.mark.parametrize("damage", DAMAGES, ids=IDS, indirect=True)
async def test_get_names_the_damaged_key(
    target: Target, backend: DynamoDbBackend, damage: Damage
) -> None:
    await plant(target, backend, "p:bad", damage)
    with pytest.raises(BackendError, match=r"damaged DynamoDB item at key 'p:bad'") as got:
        await backend.get("p:bad")
    assert not isinstance(got.value, BackendUnavailable)


@pytest.mark.parametrize("damage", DAMAGES, ids=IDS, indirect=True)
async def test_listing_skips_the_damaged_item_with_a_warning_and_keeps_full_pages(
    target: Target,
    backend: DynamoDbBackend,
    damage: Damage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for key in ("p:a", "p:c", "p:d"):
        await backend.put(key, key.encode())
    await plant(target, backend, "p:b", damage)
    with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
        page = await backend.list_by_prefix("p:", limit=2)
        everything = await backend.list_by_prefix("p:")
    assert [key for key, _ in page] == ["p:a", "p:c"]
    assert [(key, record.data) for key, record in everything] == [
        ("p:a", b"p:a"),
        ("p:c", b"p:c"),
        ("p:d", b"p:d"),
    ]
    warned = [r for r in caplog.records if r.name.startswith("pmcp_tasks")]
    assert len(warned) == 2
    assert all("'p:b'" in r.getMessage() and r.levelno == logging.WARNING for r in warned)


@pytest.mark.parametrize("damage", DAMAGES, ids=IDS, indirect=True)
async def test_writes_treat_the_damaged_item_as_absent(
    target: Target, backend: DynamoDbBackend, damage: Damage
) -> None:
    await plant(target, backend, "p:bad", damage)
    assert await backend.put("p:bad", b"fresh", expires_at=LATER + 1) == 1
    assert await stored(backend, "p:bad") == (b"fresh", 1)
    record = await backend.get("p:bad")
    assert record is not None
    assert record.expires_at == LATER + 1

    await plant(target, backend, "p:bad", damage)
    if damage[3]:
        assert await backend.put_if_version("p:bad", b"cas", 1) == 2
    else:
        with pytest.raises(RecordNotFound):
            await backend.put_if_version("p:bad", b"cas", 1)
        assert await backend.put_if_version("p:bad", b"cas", 0) == 1
    assert await stored(backend, "p:bad") == (b"cas", 2 if damage[3] else 1)


@pytest.mark.parametrize("damage", DAMAGES, ids=IDS, indirect=True)
async def test_delete_removes_the_damaged_item(
    target: Target, backend: DynamoDbBackend, damage: Damage
) -> None:
    await plant(target, backend, "p:bad", damage)
    assert await backend.delete("p:bad") is True
    assert await backend.get("p:bad") is None
    assert await backend.put_if_version("p:bad", b"new", 0) == 1
