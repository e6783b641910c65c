"""The contract's input domain, argument by argument: its classes and their boundaries.

A kit judged on backends it has never seen cannot test only the inputs that broke the backends
it knows. Each argument of each method of docs/contract.md is split here into equivalence
classes (inputs a backend built any sensible way treats alike) and the boundaries between them
(where a backend built some particular way may not): every character of the key alphabet in
every position, lengths up to the key limit, ``after`` values no key could hold, data sizes
either side of powers of two and of the size limit, expiries across the whole finite range,
versions of every magnitude, page limits far beyond any page.

The clause tests (:mod:`conformance.contract.input_domain`) try every example of every class;
the state machine draws from the same classes through the strategies at the end, and records
the class of each input it drew (Hypothesis ``event()``), so the report shows what a run
reached. docs/conformance.md lists the classes.
"""

from __future__ import annotations

import math
import string
import sys
from dataclasses import dataclass
from typing import Generic, TypeVar

from pmcp_tasks.backend import MAX_VERSION

T = TypeVar("T")

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "_.~%-"
"""KV-KEY-1's alphabet: the output alphabet of percent-encoding, ``:`` excluded."""

MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class Example(Generic[T]):
    """One input and the class it stands for (what a report or a failure calls it)."""

    cls: str
    value: T


# --- keys --------------------------------------------------------------------------------------


def key_character_examples() -> list[Example[str]]:
    """Valid keys holding each alphabet character alone, and first, inside and last in both
    the partition and the item: a character that a storage escapes, splits at or sorts oddly
    shows up in one of these."""
    found: list[Example[str]] = []
    for char in ALPHABET:
        name = f"{char!r}"
        everywhere = f"{char}a{char}b{char}"
        found += [
            Example(f"{name} alone, as partition and item", f"{char}:{char}"),
            Example(f"{name} first, inside and last in both parts", f"{everywhere}:{everywhere}"),
        ]
    return found


def key_length_examples() -> list[Example[str]]:
    """Valid keys of the lengths at which storage columns and encodings change, up to exactly
    1024 bytes, the length held by the partition, the item or both halves."""
    found = [Example("shortest key", "a:b")]
    for total in (255, 256, 257, 511, 512, 513, 1023, MAX_KEY_BYTES):
        found += [
            Example(f"{total}-byte key, long item", "L:" + "i" * (total - 2)),
            Example(f"{total}-byte key, long partition", "l" * (total - 2) + ":i"),
            Example(f"{total}-byte key, halves", _halves(total)),
        ]
    return found


def _halves(total: int) -> str:
    partition = (total - 1) // 2
    return "h" * partition + ":" + "j" * (total - 1 - partition)


OUTSIDE_ALPHABET = [chr(code) for code in range(0x20, 0x7F) if chr(code) not in ALPHABET + ":"] + [
    "\x00",
    "\t",
    "\n",
    "\x7f",
    "\u00e9",
    "\u0130",
    "\u212a",
    "\ufeff",
    "\ud800",
    "\U0001f600",
]
"""Characters a key must not hold: every other printable ASCII character, control characters,
non-ASCII letters (some with case mappings into ASCII: ``İ``, the Kelvin sign), a byte-order
mark, a lone surrogate and a character outside the BMP."""


def bad_key_examples() -> list[Example[object]]:
    """Invalid keys (KV-KEY-1/2): each foreign character in each position of each part, a
    wrong number of ``:``, empty parts, one byte over the limit, and values that are no ``str``."""
    found: list[Example[object]] = []
    for char in OUTSIDE_ALPHABET:
        name = f"{char!r}"
        found += [
            Example(f"partition of {name}", f"{char}:i"),
            Example(f"partition with {name} inside", f"a{char}b:i"),
            Example(f"item of {name}", f"p:{char}"),
            Example(f"item ending in {name}", f"p:a{char}"),
        ]
    found += [
        Example("empty", ""),
        Example("no colon", "pi"),
        Example("two colons", "p:i:j"),
        Example("empty partition", ":i"),
        Example("empty item", "p:"),
        Example("1025 bytes, long item", "L:" + "i" * (MAX_KEY_BYTES - 1)),
        Example("1025 bytes, long partition", "l" * (MAX_KEY_BYTES - 1) + ":i"),
        Example("1025 bytes, halves", _halves(MAX_KEY_BYTES + 1)),
        Example("bytes", b"p:i"),
        Example("None", None),
        Example("int", 1),
        Example("str subclass of a bad key", _Str("p:i:j")),
    ]
    return found


class _Str(str):
    """A ``str`` subclass: a key check that trusts ``type(key) is str`` alone is not fooled."""


# --- listing: after and limit --------------------------------------------------------------------


def after_examples(partition: str, keys: list[str]) -> list[Example[str | None]]:
    """``after`` values against a partition holding ``keys`` (sorted): KV-ARG-4 allows any
    ``str``, and KV-LIST-4 compares it with keys in code-point order, so values no key could
    hold (NUL, a lone surrogate, non-ASCII, characters outside the alphabet, longer than any
    key) are as valid as stored keys, and a backend must neither refuse them nor let its storage
    compare them some other way (UTF-16, a collation, C strings)."""
    head = partition + ":"
    found: list[Example[str | None]] = [
        Example("None", None),
        Example("empty", ""),
        Example("below the partition", partition[:-1] if len(partition) > 1 else "\x00"),
        Example("the partition without ':'", partition),
        Example("the partition head", head),
        Example("above the partition (';')", partition + ";"),
        Example("NUL alone", "\x00"),
        Example("lone surrogate alone", "\ud800"),
        Example("far above", "\U0010ffff"),
    ]
    for key in (keys[0], keys[len(keys) // 2], keys[-1]):
        found += [
            Example("a stored key", key),
            Example("a stored key + NUL", key + "\x00"),
            Example("a stored key + lone surrogate", key + "\udfff"),
            Example("a stored key + non-ASCII", key + "\u00e9"),
            Example("a stored key + astral", key + "\U0001f600"),
            Example("a stored key + ':'", key + ":"),
            Example("a stored key + ' '", key + " "),
            Example("a stored key + '*'", key + "*"),
            Example("a stored key + '~' (after the alphabet)", key + "~"),
            Example("a stored key without its last character", key[:-1]),
            Example("a stored key, last character + 1", key[:-1] + chr(ord(key[-1]) + 1)),
            Example("a stored key + 5000 characters", key + "~" * 5000),
        ]
    return found


def limit_examples(count: int) -> list[Example[int | None]]:
    """``limit`` against a listing of ``count`` records: the page boundary either side, and
    limits beyond any page (KV-ARG-4 says any ``int >= 1``: a backend may not hand one to a
    storage API that caps or refuses it)."""
    found: list[Example[int | None]] = [Example("None", None), Example("1", 1), Example("2", 2)]
    found += [Example(f"count{d:+d}", count + d) for d in (-1, 0, 1) if count + d >= 1]
    for name, value in (
        ("2**31-1", 2**31 - 1),
        ("2**31", 2**31),
        ("2**32", 2**32),
        ("2**53+1", 2**53 + 1),
        ("2**63-1", MAX_VERSION),
        ("2**64", 2**64),
        ("10**30", 10**30),
    ):
        found.append(Example(name, value))
    return found


# --- data ----------------------------------------------------------------------------------------


def data_sizes(limit: int | None, most: int = 1 << 20) -> list[Example[int]]:
    """Sizes: empty and tiny, either side of each power of two (chunk, page and frame sizes),
    sizes that are a multiple of no common chunk, and the limit -1 and exactly (limit + 1 is
    KV-SIZE-1's refusal). At most ``most`` bytes (1 MiB) unless the limit is lower."""
    top = most if limit is None else min(limit, most)
    sizes: dict[int, str] = {0: "empty", 1: "1 byte", 2: "2 bytes", 3: "3 bytes"}
    for power in range(2, 21):
        for delta in (-1, 0, 1):
            sizes.setdefault((1 << power) + delta, f"2**{power}{delta:+d}".replace("+0", ""))
    for odd in (1000, 9973, 100_003, 400_000):
        sizes.setdefault(odd, f"{odd} (odd)")
    if limit is not None:
        sizes[limit - 1] = "the limit - 1"
        sizes[limit] = "exactly the limit"
    return [Example(name, size) for size, name in sorted(sizes.items()) if 0 <= size <= top]


def data_of(size: int, seed: int = 0) -> bytes:
    """``size`` bytes in which every byte value occurs and no run repeats at a power of two, so
    that a dropped, doubled or reordered chunk shows as a difference."""
    return bytes((index * 167 + seed * 31 + (index >> 8)) % 256 for index in range(size))


# --- expiries and the clock ----------------------------------------------------------------------


def expiry_examples(now: float) -> list[Example[float | None]]:
    """``expires_at`` across the whole finite range KV-ARG-3 allows, with whether a record
    written with it is live at ``now`` (KV-LIVE-1). The boundary is exact: ``now`` itself is
    dead, the next float above it live; far values test the storage's number range and
    precision (a float that does not round-trip through a decimal or millisecond column)."""
    up, down = math.nextafter(now, math.inf), math.nextafter(now, -math.inf)
    values: list[tuple[str, float | None]] = [
        ("None (never)", None),
        ("exactly now (dead)", now),
        ("the next float after now", up),
        ("the float before now", down),
        ("now + 1 microsecond", now + 1e-6),
        ("now + 1/3 s (no short decimal)", now + 1 / 3),
        ("now + 0.1 s (not a binary fraction)", now + 0.1),
        ("now - 0.1 s", now - 0.1),
        ("now + 1 hour", now + 3600.0),
        ("now + 10 years", now + 3.2e8),
        ("year 33658 (1e15 s)", 1e15),
        ("1e20 s", 1e20),
        ("1e126 s (past DynamoDB's number range)", 1e126),
        ("1e300 s", 1e300),
        ("the largest float", sys.float_info.max),
        ("epoch 0", 0.0),
        ("negative zero", -0.0),
        ("the smallest subnormal", 5e-324),
        ("before the epoch", -86400.0),
        ("-1e300", -1e300),
        ("the most negative float", -sys.float_info.max),
    ]
    return [Example(name, value) for name, value in values]


def expiry_int_examples(now: float) -> list[Example[int]]:
    """Integer expiries, which KV-ARG-3 accepts as numbers of seconds like floats."""
    second = int(now)
    return [
        Example("int now + 1 hour", second + 3600),
        Example("int 2**53 + 1 (not a float)", 2**53 + 1),
        Example("int 2**63 (past int64)", 2**63),
        Example("int epoch 0", 0),
        Example("int -1", -1),
    ]


CLOCK_JUMPS: tuple[Example[float], ...] = (
    Example("one float step", 0.0),  # replaced by nextafter where used
    Example("1 microsecond", 1e-6),
    Example("1 millisecond", 1e-3),
    Example("half a second", 0.5),
    Example("1 second", 1.0),
    Example("30 seconds", 30.0),
    Example("1 hour", 3600.0),
    Example("1 year", 3.156e7),
    Example("30 years", 9.5e8),
)
"""How far the kit moves its clock, forward or back (``0.0``: to the next float)."""


# --- versions ------------------------------------------------------------------------------------

VERSION_MAGNITUDES: tuple[Example[int], ...] = (
    Example("1", 1),
    Example("2**8", 2**8),
    Example("2**15-1 (int16)", 2**15 - 1),
    Example("2**16", 2**16),
    Example("2**31-1 (int32)", 2**31 - 1),
    Example("2**31", 2**31),
    Example("2**32-1 (uint32)", 2**32 - 1),
    Example("2**32", 2**32),
    Example("2**53-1 (float exact)", 2**53 - 1),
    Example("2**53", 2**53),
    Example("2**53+1 (not a float)", 2**53 + 1),
    Example("10**18", 10**18),
    Example("2**62", 2**62),
    Example("2**63-3", MAX_VERSION - 2),
    Example("2**63-2", MAX_VERSION - 1),
)
"""Stored versions from which a write must count on exactly (the last: one write to go)."""
