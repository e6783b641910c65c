"""Kit suite: the ``cas`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.cas import CasContract
from conformance.suite import KitSuite


class TestCas(CasContract, KitSuite):
    """See :class:`conformance.contract.cas.CasContract`."""
