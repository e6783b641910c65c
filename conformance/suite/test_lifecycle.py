"""Kit suite: the ``lifecycle`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.lifecycle import LifecycleContract
from conformance.suite import KitSuite


class TestLifecycle(LifecycleContract, KitSuite):
    """See :class:`conformance.contract.lifecycle.LifecycleContract`."""
