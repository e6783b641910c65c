"""Kit suite: the ``get_put`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.get_put import GetPutContract
from conformance.suite import KitSuite


class TestGetPut(GetPutContract, KitSuite):
    """See :class:`conformance.contract.get_put.GetPutContract`."""
