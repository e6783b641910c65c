"""Kit suite: the ``cross_process`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.cross_process import CrossProcessContract
from conformance.suite import KitSuite


class TestCrossProcess(CrossProcessContract, KitSuite):
    """See :class:`conformance.contract.cross_process.CrossProcessContract`."""
