"""The single-table layout and its size arithmetic.

Every namespace and partition shares one table: ``pk`` is the percent-encoded namespace, ``#``
and the key's partition; ``sk`` is the key's item. Percent-encoding never produces ``#`` and the
key alphabet has none either, so ``pk`` splits back unambiguously and ``begins_with(pk, ns#)``
matches exactly one namespace. ``sk`` is the bare item, so a ``Query`` returns a partition in key
order (DynamoDB sorts string sort keys by UTF-8 bytes; the item alphabet is ASCII).
"""

from __future__ import annotations

from urllib.parse import quote

from pmcp_tasks.keys import MAX_KEY_BYTES

PK = "pk"  # S: quote(namespace) + "#" + partition
SK = "sk"  # S: item
DATA = "data"  # B: the record's bytes, verbatim (DynamoDB allows empty binary outside keys)
VERSION = "version"  # N: exact integer, 38 significant digits hold 2**63-1
EXPIRES_AT = "expires_at"  # S: repr(float), the exact expiry handed to the write
EXPIRY = "expiry"  # N: the same instant as a number, so conditions can compare it with now
TTL = "ttl"  # N: integer epoch seconds for native TTL, later than the expiry by a grace
TOKEN = "token"  # S: random id of the write that produced this item (KV-CAS-6)

ITEM_LIMIT = 400 * 1024
"""DynamoDB's item size limit: names plus values of every attribute, 409,600 bytes."""

MAX_NAMESPACE_BYTES = 1024
"""Longest percent-encoded namespace; with a 1024-byte key it keeps ``pk`` under 2048 bytes."""

_NUMBER_BYTES = 21  # DynamoDB sizes a number as 1 byte per 2 significant digits + 1; <= 38 digits
_TOKEN_BYTES = 32  # uuid4().hex
_EXPIRES_AT_BYTES = 24  # longest repr() of a float, e.g. '-2.2250738585072014e-308'

ITEM_OVERHEAD_BOUND = (
    sum(len(name) for name in (PK, SK, DATA, VERSION, EXPIRES_AT, EXPIRY, TTL, TOKEN))
    + MAX_NAMESPACE_BYTES
    + 1  # '#'
    + MAX_KEY_BYTES
    - 1  # partition and item share the key's bytes except its ':'
    + 3 * _NUMBER_BYTES  # version, expiry, ttl
    + _EXPIRES_AT_BYTES
    + _TOKEN_BYTES
)
"""Worst case of everything in an item except ``data``'s value: about 2.2 KB."""

MAX_RECORD_BYTES = 350 * 1024
"""Largest ``data`` accepted (358,400 bytes).

``ITEM_LIMIT - ITEM_OVERHEAD_BOUND`` (about 407 KB) would fit today; we promise a round 350 KiB
so that the cap stays true if an attribute or an index key is added later, and so that it holds
on moto, whose own item limit (405,000 bytes) is stricter than the service's.
"""


def partition_key_prefix(namespace: str) -> str:
    """The ``pk`` prefix shared by every item of ``namespace``; ValueError if unusable."""
    if not isinstance(namespace, str):
        raise ValueError(f"namespace must be a str, not {type(namespace).__name__}")
    encoded = quote(namespace, safe="")  # strict UTF-8: a lone surrogate raises ValueError
    if not encoded or len(encoded) > MAX_NAMESPACE_BYTES:
        raise ValueError(
            f"namespace must be non-empty and at most {MAX_NAMESPACE_BYTES} bytes once "
            f"percent-encoded, got {len(encoded)}"
        )
    return encoded + "#"
