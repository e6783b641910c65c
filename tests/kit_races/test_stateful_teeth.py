"""The state machine passes the reference backend and catches backends broken on sequences."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from broken_backends import cas, expiry, factory_for, listing

from conformance.contract.stateful import StatefulContract
from reference_backends.memory import InMemoryBackend, kit_factory

UseProfile = Callable[[str], None]


def _ignore(name: str, value: object) -> None:
    """Where the kit's report would keep what the run exercised; these tests look elsewhere."""


def test_memory_backend_matches_the_model(use_profile: UseProfile) -> None:
    use_profile("ci")
    recorded: dict[str, str] = {}
    StatefulContract().test_backend_matches_model(kit_factory, recorded.__setitem__)
    exercised = json.loads(recorded["kit_exercised"])
    reached = {label.split(":")[0] for label in exercised}
    # Every kind of input and operation the machine draws beyond its fixed universe, reached
    # under the derandomized ci budget.
    assert {
        "client",
        "rule",
        "cancelled put",
        "version",
        "key",
        "after",
        "expires_at",
        "clock",
        "data",
        "limit",
    } <= reached, sorted(exercised)
    assert any(label.startswith("after: holds non-ASCII") for label in exercised), exercised
    keys = [label for label in exercised if label.startswith("key: ") and label.endswith("bytes")]
    assert max(int(label.split()[1]) for label in keys) > 1000, keys


@pytest.mark.parametrize(
    ("backend", "clauses"),
    [
        (expiry.BoundaryOffByOne, {"KV-LIVE-1"}),
        (listing.AfterInclusive, {"KV-LIST-4", "KV-LIST-5"}),
        (listing.LimitBeforeExpiryFilter, {"KV-LIST-5"}),
        (expiry.CleanupHidesRecords, {"KV-CLEAN-1", "KV-CLEAN-2"}),  # it never removes
        (cas.WrongActual, {"KV-CAS-1", "KV-CAS-3"}),
        (expiry.VersionSurvivesExpiry, {"KV-LIVE-2"}),
        (expiry.CasKeepsExpiry, {"KV-LIVE-2", "KV-LIVE-4"}),
        (expiry.DeleteTrueForExpired, {"KV-LIVE-2"}),
        (expiry.NeverExpires, {"KV-LIVE-1", "KV-LIVE-2", "KV-CLEAN-1"}),
        (expiry.CleanupLeavesIndexEntries, {"KV-CLEAN-1"}),
        (expiry.LatestClockWins, {"KV-LIVE-3"}),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_broken_backend_is_caught_and_the_clause_named(
    backend: Callable[..., InMemoryBackend], clauses: set[str], use_profile: UseProfile
) -> None:
    """Found by the derandomized ``ci`` run (shrinking off: detection is what is tested here)."""
    use_profile("kit-races-ci-no-shrink")
    with pytest.raises(AssertionError) as caught:
        StatefulContract().test_backend_matches_model(factory_for(backend), _ignore)
    named = str(caught.value).split(":", 1)[0]
    assert named in clauses, str(caught.value)


def test_failure_shows_the_shrunk_steps_and_the_clause(use_profile: UseProfile) -> None:
    use_profile("ci")
    with pytest.raises(AssertionError) as caught:
        StatefulContract().test_backend_matches_model(factory_for(expiry.BoundaryOffByOne), _ignore)
    message = str(caught.value)
    assert message.startswith("KV-LIVE-1: backend and model differ after ")
    assert "A record is live iff" in message  # the rule, in words
    steps = "\n".join(getattr(caught.value, "__notes__", []))
    assert "state = BackendStateMachine()" in steps
    calls = [line for line in steps.splitlines() if line.startswith(("state.", "keys_"))]
    assert 2 <= len(calls) <= 8, steps  # put, advance to the boundary, (invariants, teardown)


def test_sequences_alone_cannot_see_a_non_atomic_cas(use_profile: UseProfile) -> None:
    """Why the race fuzzing exists: one caller at a time never interleaves."""
    use_profile("ci")
    StatefulContract().test_backend_matches_model(factory_for(cas.CasReadAwaitWrite), _ignore)


def test_backend_without_injectable_clock_runs_without_expiries(use_profile: UseProfile) -> None:
    """The same backend as ``NeverExpires``, honest about its clock: the machine adapts."""
    use_profile("ci")
    StatefulContract().test_backend_matches_model(factory_for(expiry.NeverExpiresDeclared), _ignore)
