"""Kit suite: the ``domain`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.domain import DomainContract
from conformance.suite import KitSuite


class TestDomain(DomainContract, KitSuite):
    """See :class:`conformance.contract.domain.DomainContract`."""
