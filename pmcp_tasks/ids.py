"""Task ids: unguessable, and sortable so that key order is (millisecond) creation order.

An id is 16 hex digits of *stamp* followed by 32 hex digits (128 bits) from :mod:`secrets`.
The stamp is the creation time in milliseconds shifted left by 16 bits, plus 16 more random
bits: ids made in the same millisecond are ordered by chance, not by a counter. A counter
would be shared by every owner of the process, so an owner comparing two of its own ids could
count the tasks other owners created in between. Each generator keeps its milliseconds from
going backwards when its clock steps back. Lowercase hex is left unchanged by percent-encoding,
so the key order of a partition is the stamp order.
"""

from __future__ import annotations

import re
import secrets
import threading

from pmcp_tasks.backend import Clock

RANDOM_BITS = 128
_JITTER_BITS = 16
_STAMP_DIGITS = 16
TASK_ID_RE = re.compile(rf"[0-9a-f]{{{_STAMP_DIGITS + RANDOM_BITS // 4}}}")


class TaskIdGenerator:
    """Makes the ids of one store; thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last_ms = -1
        self._lock = threading.Lock()

    def __call__(self) -> str:
        now_ms = int(self._clock() * 1000)
        with self._lock:
            ms = self._last_ms = max(now_ms, self._last_ms)
        stamp = (ms << _JITTER_BITS) | secrets.randbits(_JITTER_BITS)
        return f"{stamp:0{_STAMP_DIGITS}x}{secrets.token_hex(RANDOM_BITS // 8)}"


def is_task_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id this library hands out."""
    return TASK_ID_RE.fullmatch(value) is not None


def created_ms(task_id: str) -> int:
    """The millisecond time stamped into a well-formed id."""
    return int(task_id[:_STAMP_DIGITS], 16) >> _JITTER_BITS
