"""Kit suite: the ``stateful`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.stateful import StatefulContract
from conformance.suite import KitSuite


class TestStateful(StatefulContract, KitSuite):
    """See :class:`conformance.contract.stateful.StatefulContract`."""
