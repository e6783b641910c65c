"""Broken backends for declared capabilities of the right types.

``conformance/suite/test_capabilities.py`` must fail each one on the clause its ``@zoo``
declares (``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from dataclasses import replace

from pmcp_tasks.backend import Clock

from .base import Seedable, zoo


@zoo("capabilities_lie", breaks="KV-CAP-1")
class CapabilitiesLie(Seedable):
    """Declares ``max_record_bytes`` as a string, as a config file would deliver it."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace=namespace, clock=clock)
        self.capabilities = replace(self.capabilities, max_record_bytes="4096")  # type: ignore[arg-type]
