"""Kit suite: the ``sizes`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.sizes import SizesContract
from conformance.suite import KitSuite


class TestSizes(SizesContract, KitSuite):
    """See :class:`conformance.contract.sizes.SizesContract`."""
