"""Kit suite: the ``delete`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.delete import DeleteContract
from conformance.suite import KitSuite


class TestDelete(DeleteContract, KitSuite):
    """See :class:`conformance.contract.delete.DeleteContract`."""
