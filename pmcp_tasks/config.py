"""Limits and policies of a task store, in one frozen place.

Every limit has a default that is safe for a multi-tenant server; a deployment loosens them on
purpose, never by accident. Bad settings fail when the config is built, not on the first
request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypeGuard

DEFAULT_TTL = 3600.0
MAX_TTL = 86400.0
MIN_TTL = 1.0
DEAD_TASK_GRACE = 60.0
"""Seconds a dead task keeps its slot: Redis and DynamoDB remove expired records by
themselves, the memory backend on ``cleanup_expired``; a slot also waits this long for the
task a create claimed it for to be written."""
SHOWN_CHARS = 80
"""The most characters of a caller's value that an error message echoes (:func:`shown`)."""
MAX_CLOCK_SKEW = 30.0
"""Default tolerance between a process's clock and the storage server's: far above what NTP
keeps (milliseconds), far below the lease and grace periods it pads."""
LONGEST_TTL = 100 * 365.25 * 86400.0
"""Ceiling on ``max_ttl``: a century keeps every expiry representable on the wire (year 9999)."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Policies of :class:`~pmcp_tasks.GenericTaskStore`. Durations are seconds.

    ``default_ttl``: lifetime of a task created without an explicit ``ttl``. ``max_ttl``: the
    largest ``ttl`` accepted; larger ones raise ``TtlTooLarge`` (never clamped).
    ``min_ttl``: the smallest ``ttl`` accepted; smaller ones are a ``TaskValidationError``.
    Together with the cap it bounds how fast an owner can churn tasks, and so what it keeps
    stored (``docs/domain.md``, "The per-owner cap").
    ``allow_unlimited_ttl``: whether ``ttl=None`` (keep forever) is accepted.
    ``max_tasks_per_owner``: unfinished tasks one owner may hold (``None``: no cap); a task
    counts from its create until it completes, fails or is cancelled, and one that never
    finishes until ``dead_task_grace`` seconds after it expired, so that a dead task counts
    until storage has surely removed it.
    ``max_owner_bytes``, ``max_result_bytes``: UTF-8 bytes of an owner string, and canonical
    JSON bytes of a result or error, enforced by the store whatever the backend holds.
    ``max_variable_depth``, ``max_string_bytes``, ``max_variables_bytes``: variable limits (the
    last one on the canonical JSON of the whole map). ``max_input_bytes``: the canonical JSON of
    a task's outstanding input requests, and of its undelivered input responses, each.
    ``allow_anonymous`` and ``anonymous_owners``: owners that mean "no authenticated caller"
    and whether to accept them.
    ``poll_interval``: suggested polling interval put on the wire (``None``: omitted).
    ``default_page_size`` / ``max_page_size``: listing page sizes.
    ``cas_attempts``, ``cas_backoff``, ``cas_backoff_cap``: how hard a mutation retries a
    version conflict before raising ``ConcurrentModification`` (see ``docs/domain.md``).
    ``max_clock_skew``: the most this process's clock may differ from the storage server's
    (measured where the backend can tell its time); the store runs on the server's clock,
    pads stored expiries by this much, and refuses with ``ClockSkewExceeded`` beyond it
    (``None``: no check, the process's clock decides; see ``docs/reliability.md``).
    """

    default_ttl: float | None = DEFAULT_TTL
    max_ttl: float = MAX_TTL
    min_ttl: float = MIN_TTL
    allow_unlimited_ttl: bool = False
    max_tasks_per_owner: int | None = 100
    dead_task_grace: float = DEAD_TASK_GRACE
    max_owner_bytes: int = 4096
    max_result_bytes: int = 1_048_576
    max_variable_depth: int = 10
    max_string_bytes: int = 65_536
    max_variables_bytes: int = 1_048_576
    max_input_bytes: int = 1_048_576
    allow_anonymous: bool = False
    anonymous_owners: frozenset[str] = field(default_factory=lambda: frozenset({"", "local"}))
    poll_interval: float | None = 1.0
    default_page_size: int = 50
    max_page_size: int = 1000
    cas_attempts: int = 100
    cas_backoff: float = 0.001
    cas_backoff_cap: float = 0.05
    max_clock_skew: float | None = MAX_CLOCK_SKEW

    def __post_init__(self) -> None:
        self._check_ttls()
        if self.poll_interval is not None:
            _positive_seconds("poll_interval", self.poll_interval)
        self._check_counts()
        if not isinstance(self.anonymous_owners, frozenset) or not all(
            isinstance(owner, str) for owner in self.anonymous_owners
        ):
            raise ValueError("anonymous_owners must be a frozenset of str")
        self._check_waits()

    def _check_ttls(self) -> None:
        if is_seconds(self.max_ttl) and self.max_ttl > LONGEST_TTL:
            raise ValueError(
                f"max_ttl ({shown(self.max_ttl)}) must not exceed {LONGEST_TTL:.0f} s "
                "(100 years); use allow_unlimited_ttl=True for tasks that never expire"
            )
        _positive_seconds("max_ttl", self.max_ttl)
        _positive_seconds("min_ttl", self.min_ttl)
        if self.min_ttl > self.max_ttl:
            raise ValueError(f"min_ttl ({self.min_ttl}) must not exceed max_ttl ({self.max_ttl})")
        if self.default_ttl is None:
            if not self.allow_unlimited_ttl:
                raise ValueError("default_ttl=None needs allow_unlimited_ttl=True")
        else:
            _positive_seconds("default_ttl", self.default_ttl)
            if not self.min_ttl <= self.default_ttl <= self.max_ttl:
                raise ValueError(
                    f"default_ttl ({self.default_ttl}) must lie within min_ttl "
                    f"({self.min_ttl}) .. max_ttl ({self.max_ttl})"
                )

    def _check_counts(self) -> None:
        if self.max_tasks_per_owner is not None:
            _positive_int("max_tasks_per_owner", self.max_tasks_per_owner)
        for name in (
            "max_variable_depth",
            "max_string_bytes",
            "max_variables_bytes",
            "max_input_bytes",
            "max_owner_bytes",
            "max_result_bytes",
            "default_page_size",
            "max_page_size",
            "cas_attempts",
        ):
            _positive_int(name, getattr(self, name))
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")

    def _check_waits(self) -> None:
        if is_seconds(self.dead_task_grace) and self.dead_task_grace < 1:
            raise ValueError(
                f"dead_task_grace ({shown(self.dead_task_grace)}) must be at least 1 s: a slot "
                "whose task is not written within it may be taken by another create, so it must "
                "outlast the slowest create"
            )
        waits = ["cas_backoff", "cas_backoff_cap", "dead_task_grace"]
        for name in waits if self.max_clock_skew is None else [*waits, "max_clock_skew"]:
            value = getattr(self, name)
            if not is_seconds(value) or not 0 <= value <= LONGEST_TTL:
                raise ValueError(
                    f"{name} must be a number of seconds in 0..{LONGEST_TTL:.0f}, not "
                    f"{shown(value)}"
                )


def is_seconds(value: object) -> TypeGuard[float]:
    """A finite real number that is not a bool.

    An int is exact however large, so it is judged by comparisons alone: ``math.isfinite``
    (or any float conversion) of ``10**400`` raises ``OverflowError`` instead of answering.
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def shown(value: object) -> str:
    """``repr`` for an error message, safe and short for any value a caller may pass.

    At most :data:`SHOWN_CHARS` characters, computed without building anything larger:
    ``repr`` of an int over 4300 digits raises ``ValueError``, that of a deeply nested list
    ``RecursionError``, and a 10 MB string would make a 10 MB message. Those are summarised
    (bit length, type and size) instead; a string is cut before it is quoted.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, (str, bytes)):
        text = repr(value[:SHOWN_CHARS])
    elif isinstance(value, (bool, int, float)) or value is None:
        text = repr(value)
    elif isinstance(value, (dict, list, tuple, set, frozenset)):
        return f"a {type(value).__name__} of {len(value)} items"
    else:
        return f"a {type(value).__name__}"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _positive_seconds(name: str, value: object) -> None:
    if not is_seconds(value) or not 0 < value <= LONGEST_TTL:
        raise ValueError(
            f"{name} must be a number of seconds in (0, {LONGEST_TTL:.0f}], not {shown(value)}"
        )


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, not {shown(value)}")
