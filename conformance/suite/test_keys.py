"""Kit suite: the ``keys`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.keys import KeysContract
from conformance.suite import KitSuite


class TestKeys(KeysContract, KitSuite):
    """See :class:`conformance.contract.keys.KeysContract`."""
