"""Broken backends for sharing across processes (KV-SHARED-2): the kit-plugin part of the zoo.

``conformance/suite/test_cross_process.py`` must fail each one on the clause its ``@zoo``
declares (``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from dataclasses import replace

from pmcp_tasks.backend import Clock

from .base import Seedable, zoo


@zoo("in_process_only", breaks="KV-SHARED-2")
class InProcessOnly(Seedable):
    """Declares ``shared_across_processes`` but keeps its records in this process's memory:
    instances in one process agree (KV-SHARED-1 holds), another process sees an empty store."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace=namespace, clock=clock)
        self.capabilities = replace(self.capabilities, shared_across_processes=True)
