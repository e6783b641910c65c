"""Kit suite: the ``data`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.data import DataContract
from conformance.suite import KitSuite


class TestData(DataContract, KitSuite):
    """See :class:`conformance.contract.data.DataContract`."""
