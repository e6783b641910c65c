"""Kit suite: the ``shared`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.shared import SharedContract
from conformance.suite import KitSuite


class TestShared(SharedContract, KitSuite):
    """See :class:`conformance.contract.shared.SharedContract`."""
