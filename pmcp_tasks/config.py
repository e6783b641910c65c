"""Limits and policies of a task store, in one frozen place.

Every limit has a default that is safe for a multi-tenant server; a deployment loosens them on
purpose, never by accident. Bad settings fail when the config is built, not on the first
request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DEFAULT_TTL = 3600.0
MAX_TTL = 86400.0
LONGEST_TTL = 100 * 365.25 * 86400.0
"""Ceiling on ``max_ttl``: a century keeps every expiry representable on the wire (year 9999)."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Policies of :class:`~pmcp_tasks.GenericTaskStore`. Durations are seconds.

    ``default_ttl``: lifetime of a task created without an explicit ``ttl``. ``max_ttl``: the
    largest ``ttl`` accepted; larger ones raise ``TtlTooLarge`` (never clamped).
    ``allow_unlimited_ttl``: whether ``ttl=None`` (keep forever) is accepted.
    ``max_tasks_per_owner``: live tasks one owner may hold (``None``: no cap).
    ``max_variable_depth``, ``max_string_bytes``, ``max_variables_bytes``: variable limits (the
    last one on the canonical JSON of the whole map). ``max_input_bytes``: the canonical JSON of
    a task's outstanding input requests, and of its undelivered input responses, each.
    ``allow_anonymous`` and ``anonymous_owners``: owners that mean "no authenticated caller"
    and whether to accept them.
    ``poll_interval``: suggested polling interval put on the wire (``None``: omitted).
    ``default_page_size`` / ``max_page_size``: listing page sizes.
    ``cas_attempts``, ``cas_backoff``, ``cas_backoff_cap``: how hard a mutation retries a
    version conflict before raising ``ConcurrentModification`` (see ``docs/domain.md``).
    """

    default_ttl: float | None = DEFAULT_TTL
    max_ttl: float = MAX_TTL
    allow_unlimited_ttl: bool = False
    max_tasks_per_owner: int | None = 100
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

    def __post_init__(self) -> None:
        _positive_seconds("max_ttl", self.max_ttl)
        if self.max_ttl > LONGEST_TTL:
            raise ValueError(
                f"max_ttl ({self.max_ttl}) must not exceed {LONGEST_TTL:.0f} s (100 years); "
                "use allow_unlimited_ttl=True for tasks that never expire"
            )
        if self.default_ttl is None:
            if not self.allow_unlimited_ttl:
                raise ValueError("default_ttl=None needs allow_unlimited_ttl=True")
        else:
            _positive_seconds("default_ttl", self.default_ttl)
            if self.default_ttl > self.max_ttl:
                raise ValueError(
                    f"default_ttl ({self.default_ttl}) must not exceed max_ttl ({self.max_ttl})"
                )
        if self.poll_interval is not None:
            _positive_seconds("poll_interval", self.poll_interval)
        if self.max_tasks_per_owner is not None:
            _positive_int("max_tasks_per_owner", self.max_tasks_per_owner)
        for name in (
            "max_variable_depth",
            "max_string_bytes",
            "max_variables_bytes",
            "max_input_bytes",
            "default_page_size",
            "max_page_size",
            "cas_attempts",
        ):
            _positive_int(name, getattr(self, name))
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        if not isinstance(self.anonymous_owners, frozenset) or not all(
            isinstance(owner, str) for owner in self.anonymous_owners
        ):
            raise ValueError("anonymous_owners must be a frozenset of str")
        for name in ("cas_backoff", "cas_backoff_cap"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value >= 0)
            ):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


def _positive_seconds(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number of seconds > 0, not {value!r}")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, not {value!r}")
