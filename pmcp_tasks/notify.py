"""An optional capability beside a shared store: telling every instance at once that a task
was cancelled.

Without it, the instance that runs a task's handler learns of a cancel made through another
instance at its next read of the task (one watch interval). A notifier delivers the news at
once, so the handler's asyncio task is cancelled without waiting for that read. The store stays
the authority: a notice only makes the worker read the task now; a lost notice costs latency,
never correctness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class CancelNotifier(Protocol):
    """Broadcasts task keys to every instance sharing a store (at most once, best effort)."""

    async def publish(self, task_key: str) -> None:
        """Tell every listening instance (this one included) that ``task_key`` changed."""
        ...

    async def listen(self, on_notice: Callable[[str], None]) -> None:
        """Start calling ``on_notice(task_key)`` for every notice, until :meth:`aclose`."""
        ...

    async def aclose(self) -> None:
        """Stop listening and release the connection."""
        ...
