"""Kit suite: the ``races`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.races import RaceContract
from conformance.suite import KitSuite


class TestRaces(RaceContract, KitSuite):
    """See :class:`conformance.contract.races.RaceContract`."""
