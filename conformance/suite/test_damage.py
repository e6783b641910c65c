"""Kit suite: the ``damage`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.damage import DamageContract
from conformance.suite import KitSuite


class TestDamage(DamageContract, KitSuite):
    """See :class:`conformance.contract.damage.DamageContract`."""
