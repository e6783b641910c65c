"""Fixtures for the tests of the kit's state machine, race fuzzing and checker.

The kit's tests run under pinned Hypothesis profiles, whatever profile the session loaded:
"the kit catches this bug" must hold for the derandomized ``ci`` run that CI makes, not only
for a lucky seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import Phase, settings

import conformance.profiles  # noqa: F401  (registers dev/ci/thorough)

settings.register_profile(
    "kit-races-ci-no-shrink",
    settings.get_profile("ci"),
    phases=[Phase.explicit, Phase.generate],
)
settings.register_profile(
    "kit-races-dev-seeded",
    settings.get_profile("dev"),
    database=None,
    phases=[Phase.explicit, Phase.generate],
)


def pytest_configure(config: pytest.Config) -> None:
    """The kit's marker, for runs where the kit's plugin is not loaded."""
    config.addinivalue_line("markers", "clause(*ids): contract clauses a test checks")


@pytest.fixture
def use_profile() -> Iterator[Callable[[str], None]]:
    """Load a Hypothesis profile for this test only."""
    previous = settings.get_current_profile_name()
    yield settings.load_profile
    settings.load_profile(previous)
