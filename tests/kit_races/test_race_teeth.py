"""Race fuzzing passes the reference backend and catches racy backends, every time."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from broken_backends import factory_for
from broken_backends.cas import CasReadAwaitWrite
from broken_backends.get_put import PutReadAwaitWrite
from broken_backends.races import AlwaysFails, LosesReplies

from conformance.contract.races import ALL_KINDS, RaceContract, race_property
from reference_backends.memory import InMemoryBackend, kit_factory

UseProfile = Callable[[str], None]
RACE_TESTS = [name for name in dir(RaceContract) if name.startswith("test_")]


@pytest.mark.parametrize("test_name", RACE_TESTS)
def test_memory_backend_passes(test_name: str, use_profile: UseProfile) -> None:
    use_profile("ci")
    getattr(RaceContract(), test_name)(kit_factory)


@pytest.mark.parametrize("test_name", RACE_TESTS)
def test_unknown_outcomes_are_not_reported_as_violations(
    test_name: str, use_profile: UseProfile
) -> None:
    """A backend that loses replies (BackendError after or before writing) is still correct."""
    use_profile("ci")
    getattr(RaceContract(), test_name)(factory_for(LosesReplies))


@pytest.mark.parametrize(
    ("backend", "test_name", "clause"),
    [
        (CasReadAwaitWrite, "test_races_are_linearizable", "KV-CAS-5"),
        (CasReadAwaitWrite, "test_cas_races_have_one_winner_per_version", "KV-CAS-5"),
        (CasReadAwaitWrite, "test_races_across_two_clients_are_linearizable", "KV-CAS-5"),
        (PutReadAwaitWrite, "test_races_are_linearizable", "KV-PUT-2"),
        (PutReadAwaitWrite, "test_racing_puts_hand_out_distinct_versions", "KV-PUT-2"),
        (PutReadAwaitWrite, "test_races_across_two_clients_are_linearizable", "KV-PUT-2"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_racy_backend_is_caught_by_the_ci_run(
    backend: type[InMemoryBackend], test_name: str, clause: str, use_profile: UseProfile
) -> None:
    use_profile("ci")
    with pytest.raises(AssertionError) as caught:
        getattr(RaceContract(), test_name)(factory_for(backend))
    message = str(caught.value)
    assert message.startswith(f"{clause}: "), message
    assert "Smallest window that proves it (2 of" in message, message
    assert message.count("<- first result no order explains") == 1
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "schedule=Schedule(" in notes  # Hypothesis' shrunk schedule


@pytest.mark.parametrize(
    "backend", [CasReadAwaitWrite, PutReadAwaitWrite], ids=lambda b: b.__name__
)
@pytest.mark.parametrize("run_seed", [1, 2, 3])
def test_racy_backend_is_caught_with_any_seed(
    backend: type[InMemoryBackend], run_seed: int, use_profile: UseProfile
) -> None:
    """The default (``dev``) budget finds both race bugs whatever the seed."""
    use_profile("kit-races-dev-seeded")
    with pytest.raises(AssertionError, match=r"^KV-(CAS-5|PUT-2): "):
        race_property(factory_for(backend), ALL_KINDS, run_seed=run_seed)()


@pytest.mark.parametrize(
    ("test_name", "clause"),
    [
        ("test_races_are_linearizable", "KV-CONC-1"),
        ("test_cas_races_have_one_winner_per_version", "KV-CAS-5"),
        ("test_racing_puts_hand_out_distinct_versions", "KV-PUT-2"),
        ("test_races_across_two_clients_are_linearizable", "KV-SHARED-1"),
    ],
)
def test_a_backend_that_fails_every_call_does_not_pass_vacuously(
    test_name: str, clause: str, use_profile: UseProfile
) -> None:
    """Unknown outcomes contradict nothing, so without a floor of definite results a backend
    that raises BackendError on every call would pass every race test."""
    use_profile("ci")
    with pytest.raises(AssertionError) as caught:
        getattr(RaceContract(), test_name)(factory_for(AlwaysFails))
    message = str(caught.value)
    assert message.startswith(f"{clause}: only 0 of "), message
    assert "race calls ended with a definite result; the kit needs at least" in message
    assert "BackendError: put_if_version: server refused the command" in message or (
        "BackendError: put: server refused the command" in message
    ), message
