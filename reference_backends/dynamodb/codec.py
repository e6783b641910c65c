"""How a record becomes a DynamoDB item and back, and what counts as a damaged item.

Kept apart from the contract methods (``backend.py``) because the item's shape is a format
with its own rules: what a write stores (:class:`ItemCodec`), what a read accepts
(:func:`decode`, :class:`DamagedItem`), and the conditions that let DynamoDB check the same
things server-side (:data:`DECODABLE`, :data:`LIVE`, :data:`EXPIRED`), which must change
together with them.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pmcp_tasks.backend import MAX_VERSION, VersionedRecord, is_live
from pmcp_tasks.backend_base import skip_damaged
from pmcp_tasks.errors import BackendError
from reference_backends.dynamodb.table import (
    DATA,
    EXPIRES_AT,
    EXPIRY,
    PK,
    SK,
    TOKEN,
    TTL,
    VERSION,
)

Item = Mapping[str, Any]

# Every comparison of a stored attribute first checks its type: DynamoDB finds a comparison
# across types false, which these make explicit (moto in-process would raise TypeError instead).
NUMERIC_EXPIRY = f"attribute_type(#{EXPIRY}, :number)"
LIVE = f"(attribute_not_exists(#{EXPIRY}) OR ({NUMERIC_EXPIRY} AND #{EXPIRY} > :now))"
EXPIRED = f"({NUMERIC_EXPIRY} AND #{EXPIRY} <= :now)"
# What a condition can tell of decode's checks (not an expires_at text that does not parse).
# Data is "present and not text": dynalite's attribute_type does not find empty binary to be B.
DECODABLE = (
    f"attribute_exists(#{DATA}) AND NOT attribute_type(#{DATA}, :string) AND "
    f"attribute_type(#{VERSION}, :number) AND "
    f"#{VERSION} BETWEEN :one AND :max AND ((attribute_not_exists(#{EXPIRES_AT}) AND "
    f"attribute_not_exists(#{EXPIRY})) OR (attribute_type(#{EXPIRES_AT}, :string) AND "
    f"{NUMERIC_EXPIRY}))"
)
NOT_MINE = f"(attribute_not_exists(#{TOKEN}) OR #{TOKEN} <> :token)"

ABOVE_ITEM_CHARS = "\x7f"
"""Sorts after every character of the key alphabet: ``prefix + this`` bounds a prefix's range."""
_ITEM_CHARS = frozenset(string.ascii_letters + string.digits + "_.~%-")
_LOWEST_ITEM_CHAR = "%"  # the smallest character of the key alphabet
_DYNAMODB_MAX_NUMBER = Decimal("9.9999999999999999999999999999999999999E+125")
_DYNAMODB_MIN_MAGNITUDE = Decimal("1E-130")
_TTL_RANGE = 1e18  # expiries beyond this many epoch seconds get no TTL attribute


@dataclass(frozen=True, slots=True)
class Stored:
    """A decoded item: its record, and the token of the write that made it (None: not ours)."""

    record: VersionedRecord
    token: str | None


class ItemCodec:
    """The items of one namespace: ``pk`` starts with ``pk_prefix``; the native TTL attribute
    is set ``ttl_grace`` seconds after the expiry, so that AWS never deletes a record that a
    clock lagging real time still sees as live."""

    def __init__(self, pk_prefix: str, ttl_grace: int) -> None:
        self.pk_prefix = pk_prefix
        self.ttl_grace = ttl_grace

    def key(self, partition: str, item: str) -> dict[str, Any]:
        """The primary key of the store's key ``partition:item``."""
        return {PK: {"S": self.pk_prefix + partition}, SK: {"S": item}}

    def item(
        self,
        partition: str,
        item: str,
        data: bytes,
        version: int,
        expires_at: float | None,
        token: str,
    ) -> dict[str, Any]:
        """The whole item a write of this record stores, as ``PutItem`` takes it."""
        out = self.key(partition, item)
        out[DATA] = {"B": data}
        out[VERSION] = {"N": str(version)}
        out[TOKEN] = {"S": token}
        for name, value in self.expiry_values(expires_at).items():
            out[name[1:]] = value
        return out

    def expiry_values(self, expires_at: float | None) -> dict[str, Any]:
        """``:expires_at``, ``:expiry`` and ``:ttl`` values for a write (none when no expiry)."""
        if expires_at is None:
            return {}
        values = {
            f":{EXPIRES_AT}": {"S": repr(expires_at)},
            f":{EXPIRY}": {"N": number(expires_at)},
        }
        if abs(expires_at) < _TTL_RANGE:
            values[f":{TTL}"] = {"N": str(math.ceil(expires_at) + self.ttl_grace)}
        return values

    def expiry_updates(self, expires_at: float | None) -> tuple[list[str], list[str]]:
        """SET and REMOVE clauses that make the item's expiry attributes match ``expires_at``."""
        present = self.expiry_values(expires_at)
        names = (EXPIRES_AT, EXPIRY, TTL)
        sets = [f"#{n} = :{n}" for n in names if f":{n}" in present]
        removals = [f"#{n}" for n in names if f":{n}" not in present]
        return sets, removals


def decode(key: str, item: Item | None) -> Stored | None:
    """The record in a raw item; :class:`DamagedItem` for an item this backend did not write."""
    if not item:
        return None
    data = item.get(DATA)
    if not isinstance(data, Mapping) or not isinstance(data.get("B"), bytes):
        raise DamagedItem(key, DATA, data, "binary")
    version = _integer(item.get(VERSION))
    if version is None or not 1 <= version <= MAX_VERSION:
        raise DamagedItem(key, VERSION, item.get(VERSION), f"an integer in 1..{MAX_VERSION}")
    expires_at = None
    if EXPIRES_AT in item or EXPIRY in item:
        expires_at = _finite(item.get(EXPIRES_AT))
        if expires_at is None:
            raise DamagedItem(key, EXPIRES_AT, item.get(EXPIRES_AT), "a finite float as text")
        if not isinstance(item.get(EXPIRY), Mapping) or "N" not in item[EXPIRY]:
            raise DamagedItem(key, EXPIRY, item.get(EXPIRY), "a number")
    token = item.get(TOKEN)
    mine = token.get("S") if isinstance(token, Mapping) else None  # else no write of ours
    record = VersionedRecord(bytes(data["B"]), version, expires_at)
    return Stored(record, mine if isinstance(mine, str) else None)


def live_records(
    head: str, items: Iterable[Item], now: float
) -> Iterator[tuple[str, VersionedRecord]]:
    """The live records among a listing's raw ``items`` of the partition ``head``, keyed.

    A damaged item is left out with a warning (:func:`~pmcp_tasks.skip_damaged`), like an
    expired one, so that one bad item does not hide the rest of a partition (KV-DAMAGE-1).
    """
    for raw in items:
        item_key = head + str(raw[SK]["S"])
        try:
            stored = decode(item_key, raw)
        except DamagedItem as damaged:
            skip_damaged(item_key, damaged)
            continue
        if stored is not None and is_live(stored.record.expires_at, now):
            yield item_key, stored.record


class DamagedItem(BackendError):
    """An item at ``key`` that no write of this backend produces: it cannot be decoded.

    ``get`` raises it (a ``BackendError`` naming the key), listings skip the item with a
    warning, and writes treat it as absent (KV-DAMAGE-1): ``put`` replaces it.
    """

    def __init__(self, key: str, attribute: str, value: object, expected: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(
            f"damaged DynamoDB item at key {key!r}: attribute {attribute!r} is {shown}, not "
            f"{expected}; put or delete replaces it"
        )


def _integer(value: object) -> int | None:
    """The exact integer in a DynamoDB number attribute, or None (text, fraction, garbage)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("N"), str):
        return None
    try:
        parsed = Decimal(value["N"])
    except ArithmeticError:
        return None
    if not parsed.is_finite() or parsed != parsed.to_integral_value():
        return None
    return int(parsed)


def _finite(value: object) -> float | None:
    """The float in our text expiry attribute, or None unless it is finite."""
    if not isinstance(value, Mapping) or not isinstance(value.get("S"), str):
        return None
    try:
        parsed = float(value["S"])
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) else None


def written_by(attributes: Item | None, token: str) -> bool:
    """Whether the item a failed condition returned is our own write (a retry that landed)."""
    return attributes is not None and attributes.get(TOKEN) == {"S": token}


def number(value: float) -> str:
    """``value`` as a DynamoDB number, order-preserving.

    ``repr`` is the shortest decimal that round-trips, so distinct floats keep their order;
    magnitudes outside DynamoDB's range (1E-130 .. 1E+126) are clamped, which keeps every
    comparison with a realistic clock reading exact. The exact value lives in ``expires_at``.
    """
    exact = Decimal(repr(value))
    if abs(exact) > _DYNAMODB_MAX_NUMBER:
        exact = _DYNAMODB_MAX_NUMBER.copy_sign(exact)
    elif abs(exact) < _DYNAMODB_MIN_MAGNITUDE:
        exact = Decimal(0)
    return str(exact)


def first_item_after(after_item: str) -> str:
    """The least sort key bound ``b`` with: item > ``after_item`` iff item >= ``b``.

    ``after`` may be any string, but stored items use only the key alphabet. Up to its first
    character outside the alphabet, ``after_item`` is kept; that character is dropped when it
    sorts below the whole alphabet and replaced by DEL (above it) when it sorts above, so the
    bound is plain ASCII that DynamoDB accepts. Appending the alphabet's lowest character
    turns "greater than" into the inclusive bound a ``BETWEEN`` needs.
    """
    for index, char in enumerate(after_item):
        if char not in _ITEM_CHARS:
            kept = after_item[:index]
            if char > _LOWEST_ITEM_CHAR:
                kept += min(char, ABOVE_ITEM_CHARS)
            return kept + _LOWEST_ITEM_CHAR
    return after_item + _LOWEST_ITEM_CHAR
