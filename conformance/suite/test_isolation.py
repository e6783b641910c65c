"""Kit suite: the ``isolation`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.isolation import IsolationContract
from conformance.suite import KitSuite


class TestIsolation(IsolationContract, KitSuite):
    """See :class:`conformance.contract.isolation.IsolationContract`."""
