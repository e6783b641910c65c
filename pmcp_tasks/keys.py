"""Keys and the argument checks every backend shares (clauses KV-KEY-*, KV-ARG-*).

A key is ``partition:item``, both parts drawn from the output alphabet of percent-encoding, so
that no user-supplied string can reach a backend as a glob, a Redis hash tag, a second ``:`` or
anything else a storage system might interpret. The domain builds keys with :func:`task_key`;
backends validate what they are handed with the ``check_*`` helpers, so the rules live in one
place and read the same on every backend.
"""

from __future__ import annotations

import hashlib
import math
import re
from urllib.parse import quote

from pmcp_tasks.backend import MAX_VERSION
from pmcp_tasks.errors import CapacityExceeded

MAX_KEY_BYTES = 1024
_PART = r"[A-Za-z0-9_.~%\-]+"
_KEY_RE = re.compile(rf"({_PART}):({_PART})")
_PARTITION_RE = re.compile(_PART)
_ITEM_PREFIX_RE = re.compile(r"[A-Za-z0-9_.~%\-]*")

# Forms that percent-encoding never produces ('%' not followed by two hex digits), so they
# cannot collide with the encoding of any real owner string.
_EMPTY_OWNER = "%"
_HASHED_OWNER = "%%"
# Owners whose encoding is longer than this are stored under a SHA-256 digest instead, so that
# a key never exceeds MAX_KEY_BYTES. The record itself keeps the full owner and the store
# compares it on every read, so the digest is an address, not the authority.
MAX_ENCODED_OWNER = 512


def check_key(key: object) -> str:
    """Raise ``ValueError`` unless ``key`` is a valid ``partition:item`` key (KV-KEY-1/2)."""
    if not isinstance(key, str):
        raise ValueError(f"key must be a str, not {type(key).__name__}")
    if len(key) > MAX_KEY_BYTES:  # the alphabet is ASCII, so characters are bytes
        raise ValueError(f"key is {len(key)} bytes; the limit is {MAX_KEY_BYTES}")
    if _KEY_RE.fullmatch(key) is None:
        raise ValueError(
            f"invalid key {key!r}: expected 'partition:item', both non-empty and made only "
            "of A-Z a-z 0-9 _ . ~ % -"
        )
    return key


def split_key(key: str) -> tuple[str, str]:
    """(partition, item) of an already checked key."""
    partition, _, item = key.partition(":")
    return partition, item


def check_prefix(prefix: object) -> tuple[str, str]:
    """Validate a listing prefix (KV-LIST-1) and return (partition, item prefix)."""
    if not isinstance(prefix, str):
        raise ValueError(f"prefix must be a str, not {type(prefix).__name__}")
    partition, sep, item_prefix = prefix.partition(":")
    if not sep:
        raise ValueError(f"prefix {prefix!r} must contain ':' (it names a whole partition)")
    if _PARTITION_RE.fullmatch(partition) is None or _ITEM_PREFIX_RE.fullmatch(item_prefix) is None:
        raise ValueError(
            f"invalid prefix {prefix!r}: partition must be non-empty and both parts made only "
            "of A-Z a-z 0-9 _ . ~ % -"
        )
    if len(prefix) > MAX_KEY_BYTES:
        raise ValueError(f"prefix is {len(prefix)} bytes; the limit is {MAX_KEY_BYTES}")
    return partition, item_prefix


def check_data(data: object) -> bytes:
    """``data`` must be ``bytes`` (KV-ARG-1); the backend stores it verbatim."""
    if not isinstance(data, bytes):
        raise ValueError(f"data must be bytes, not {type(data).__name__}")
    return data


def check_size(key: str, data: bytes, limit: int | None) -> None:
    """``CapacityExceeded`` before anything is sent when ``data`` exceeds ``limit`` (KV-SIZE-1)."""
    if limit is not None and len(data) > limit:
        raise CapacityExceeded(
            f"record for key {key!r} is {len(data)} bytes; this backend holds at most {limit}"
        )


def check_expires_at(expires_at: object) -> float | None:
    """``None`` or a finite number of epoch seconds (KV-ARG-3)."""
    if expires_at is None:
        return None
    if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
        raise ValueError(f"expires_at must be a number or None, not {type(expires_at).__name__}")
    try:
        value = float(expires_at)
    except OverflowError:  # an int beyond a float's range; repr refuses > 4300 digits
        raise ValueError(
            f"expires_at must be finite, not an integer of {int(expires_at).bit_length()} bits "
            "(beyond a float's range)"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"expires_at must be finite, not {expires_at!r}")
    return value


def check_expected_version(expected_version: object) -> int:
    """An int in ``0 .. MAX_VERSION`` (KV-ARG-2); 0 means create-if-absent."""
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise ValueError(f"expected_version must be an int, not {type(expected_version).__name__}")
    if not 0 <= expected_version <= MAX_VERSION:
        raise ValueError(f"expected_version must be in 0..{MAX_VERSION}, not {expected_version}")
    return expected_version


def check_page(after: object, limit: object) -> tuple[str | None, int | None]:
    """``after``: ``None`` or a str; ``limit``: ``None`` or an int >= 1 (KV-ARG-4)."""
    if after is not None and not isinstance(after, str):
        raise ValueError(f"after must be a str or None, not {type(after).__name__}")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValueError(f"limit must be an int or None, not {type(limit).__name__}")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit}")
    return after, limit


def owner_partition(owner: str) -> str:
    """The partition holding ``owner``'s tasks: injective over all owner strings.

    ``quote(owner, safe="")`` keeps ``a`` and ``a:b`` apart and turns ``*``, ``{``, ``%`` and
    every non-ASCII character into ``%XX``. The empty owner and very long owners get forms that
    percent-encoding never produces.
    """
    if owner == "":
        return _EMPTY_OWNER
    encoded = quote(owner, safe="")
    if len(encoded) > MAX_ENCODED_OWNER:
        return _HASHED_OWNER + hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()
    return encoded


def task_key(owner: str, task_id: str) -> str:
    """The storage key of ``owner``'s task ``task_id``."""
    return owner_partition(owner) + ":" + quote(task_id, safe="")


def partition_prefix(owner: str) -> str:
    """The listing prefix covering exactly ``owner``'s tasks."""
    return owner_partition(owner) + ":"
