"""Kit suite: the ``capabilities`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.capabilities import CapabilitiesContract
from conformance.suite import KitSuite


class TestCapabilities(CapabilitiesContract, KitSuite):
    """See :class:`conformance.contract.capabilities.CapabilitiesContract`."""
