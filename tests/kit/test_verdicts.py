"""No false verdicts (issue 11, points 5 and 6): the kit's profiles on every route, slowness
reported as undecided, a flaky failure charged to its first contradiction, values shown."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis.errors import DeadlineExceeded, FlakyFailure

from conformance import verdicts

pytest_plugins = ["pytester"]

OWN_FILE = """
import asyncio, json, pathlib, time
import pytest
from hypothesis import given, settings, strategies as st
from conformance import BackendContract
from pmcp_tasks import RecordNotFound
from reference_backends.memory import InMemoryBackend, MemoryStore

STORE = MemoryStore()

def factory(*, namespace, clock):
    current = settings()
    pathlib.Path("seen.json").write_text(json.dumps({{
        "profile": settings.get_current_profile_name(),
        "deadline": None if current.deadline is None else current.deadline.total_seconds(),
    }}))
    time.sleep({pause})
    return {backend}(namespace=namespace, clock=clock, store=STORE)

class WrongKey(InMemoryBackend):
    async def put_if_version(self, key, data, expected_version, *, expires_at=None):
        try:
            return await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        except RecordNotFound:
            raise RecordNotFound(key.upper()) from None

class PagesForever(InMemoryBackend):
    async def _list(self, partition, item_prefix, after_item, limit):
        await asyncio.Event().wait()  # a paging loop whose resume point never moves

class SpinsForever(InMemoryBackend):
    async def _list(self, partition, item_prefix, after_item, limit):
        while True:  # never yields to the event loop: no cancellation reaches it
            pass

class ClosesForever(InMemoryBackend):
    async def aclose(self):
        await asyncio.Event().wait()  # like a namespace scan in teardown that never ends

class ClosingSpins(InMemoryBackend):
    async def aclose(self):
        while True:
            pass

class Leftover:
    def __del__(self):
        raise RuntimeError("finalizer of an object an earlier test left behind")

class Haunted(InMemoryBackend):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        Leftover()  # collected at once: pytest records an unraisable exception in this setup

class TestMine(BackendContract):
    @pytest.fixture
    def backend_factory(self):
        return factory

@settings(deadline=None)  # the profile stays the project's; only the deadline goes
@given(st.integers())
def test_projects_own_property(x):
    pathlib.Path("own.json").write_text(json.dumps(settings.get_current_profile_name()))
"""


def _own_file(
    pytester: pytest.Pytester, *, pause: float = 0.0, backend: str = "InMemoryBackend"
) -> None:
    pytester.makepyfile(test_mine=OWN_FILE.format(pause=pause, backend=backend))


def test_own_test_file_route_runs_under_the_kits_profile(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    # Hypothesis loads its own ``ci`` profile when it sees CI, or the copy of it tox keeps.
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", raising=False)
    _own_file(pytester)
    result = pytester.runpytest_subprocess(
        "-k", "test_backend_matches_model or test_projects_own_property", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert json.loads((pytester.path / "seen.json").read_text()) == {
        "profile": "dev",
        "deadline": None,
    }
    # The project's own Hypothesis test keeps the profile it had.
    assert json.loads((pytester.path / "own.json").read_text()) == "default"


def test_deadline_is_reported_as_undecided_not_as_a_broken_clause(
    pytester: pytest.Pytester,
) -> None:
    """Hypothesis' own ``default`` profile has a 200 ms deadline; the factory takes 300 ms."""
    _own_file(pytester, pause=0.3)
    report_path = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-k",
        "test_cas_races_have_one_winner_per_version",
        "--hypothesis-profile=default",
        "--conformance-report",
        str(report_path),
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*- kit could not decide: too slow -*",
            "Hypothesis DeadlineExceeded: *",
            "hint: the kit's Hypothesis profiles *--hypothesis-profile ci*",
            "*kit could not decide: too slow x1 (no clause charged)*",
        ]
    )
    assert "contract clause broken" not in out
    assert "BROKEN" not in out
    report = json.loads(report_path.read_text())
    assert report["clauses"]["KV-CAS-5"]["results"]["TestMine"]["status"] == "undecided"


def test_values_are_shown_in_kit_assertions(pytester: pytest.Pytester) -> None:
    """Assertion rewriting is registered for the kit's modules (an editable install too)."""
    # The kit compares with plain ``assert``: only a rewritten module shows both values here.
    _own_file(pytester, backend="WrongKey")
    result = pytester.runpytest_subprocess(
        "-k", "test_expected_version_on_an_absent_key_is_not_found", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["E       AssertionError: assert 'P:ABSENT' == 'p:absent'", "*- contract clause broken -*"]
    )


FLAKY_TEST = """
import pytest
from hypothesis.errors import FlakyFailure

@pytest.mark.pmcp_clause("KV-PUT-1", "KV-DEL-1", "KV-LIST-3", "KV-LIST-5")
def test_machine():
    first = AssertionError(
        "KV-DEL-1: backend and model differ after delete('p:a')\\n"
        "  backend returned: True\\n  the contract says: False\\n"
        "KV-DEL-1: rule text that mentions KV-LIST-3 and KV-LIST-5"
    )
    raise FlakyFailure("Hypothesis test_machine produces unreliable results", [first])
"""


def test_flaky_state_machine_failure_names_its_first_contradiction(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_flaky=FLAKY_TEST)
    report_path = pytester.path / "report.json"
    result = pytester.runpytest("--conformance-report", str(report_path))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*BROKEN KV-DEL-1: *", "FAILED test_flaky.py::test_machine - [[]KV-DEL-1[]] *"]
    )
    assert "BROKEN KV-PUT-1" not in result.stdout.str()
    clauses = json.loads(report_path.read_text())["clauses"]
    assert clauses["KV-DEL-1"]["results"]["test_flaky.py::test_machine"]["status"] == "failed"
    assert clauses["KV-PUT-1"]["results"]["test_flaky.py::test_machine"]["status"] == "untested"


def test_charged_clause_comes_from_the_first_nested_failure() -> None:
    clauses = ("KV-PUT-1", "KV-DEL-1", "KV-LIST-3")
    inner = [AssertionError("KV-LIST-3: listing unsorted"), AssertionError("KV-DEL-1: other")]
    flaky = FlakyFailure("Hypothesis test produces unreliable results", inner)
    assert verdicts.charged(flaky, str(flaky), clauses) == ("KV-LIST-3",)
    assert verdicts.charged(AssertionError("no id"), "no id", clauses) == ("KV-PUT-1",)
    assert verdicts.undecided(flaky) is None


def test_too_slow_needs_every_nested_failure_to_be_about_time() -> None:
    slow = DeadlineExceeded(timedelta(milliseconds=300), timedelta(milliseconds=200))
    found = verdicts.undecided(slow)
    assert found == ("too slow", f"Hypothesis DeadlineExceeded: {slow}")
    assert found.hint == verdicts.TOO_SLOW_HINT
    only_slow = FlakyFailure("Unreliable test timings", [slow])
    assert verdicts.undecided(only_slow) is not None
    mixed = FlakyFailure("unreliable", [AssertionError("KV-DEL-1: x"), slow])
    assert verdicts.undecided(mixed) is None


def _undecided_run(pytester: pytest.Pytester, backend: str, *options: str) -> pytest.RunResult:
    """The kit's ``test_item_prefix_selects_within_the_partition`` on ``backend``: it must fail
    as undecided, charging nothing (KV-LIST-2 undecided in the JSON report)."""
    _own_file(pytester, backend=backend)
    report_path = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "-k",
        "test_item_prefix_selects_within_the_partition",
        *options,
        "--conformance-report",
        str(report_path),
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    assert "BROKEN" not in result.stdout.str()
    report = json.loads(report_path.read_text())
    assert report["clauses"]["KV-LIST-2"]["results"]["TestMine"]["status"] == "undecided"
    return result


@pytest.mark.parametrize(
    ("backend", "where"),
    [
        ("PagesForever", ""),
        ("SpinsForever", ""),
        ("ClosesForever", " (--conformance-test-timeout), in its teardown (dropping its*"),
        ("ClosingSpins", " (--conformance-test-timeout), in its teardown"),
    ],
)
def test_a_test_that_never_finishes_is_stopped_and_reported_as_undecided(
    pytester: pytest.Pytester, backend: str, where: str
) -> None:
    """A listing that never returns used to hang the run; it now ends it, charging no clause,
    whether it awaits (cancelled) or never yields to the event loop (SIGALRM). So does a
    teardown that never ends: DynamoDB mutant #131's namespace scan hung there, past any limit
    on the test body alone."""
    result = _undecided_run(pytester, backend, "--conformance-test-timeout=1")
    result.stdout.fnmatch_lines(
        [
            "*- kit could not decide: did not finish -*",
            "KitTimeout: test_item_prefix_selects_within_the_partition did not finish within 1 s"
            f"{where}*",
            "hint: a kit test that never finishes is most often a backend call that never returns*",
            "*kit could not decide: did not finish x1 (no clause charged)*",
        ]
    )


def test_an_unraisable_exception_is_undecided_not_a_broken_clause(
    pytester: pytest.Pytester,
) -> None:
    """Under ``-W error`` pytest fails the test during which a finalizer raised, and that is
    often garbage of an earlier test (an unclosed socket): no verdict on the clause."""
    result = _undecided_run(
        pytester, "Haunted", "-W", "error::pytest.PytestUnraisableExceptionWarning"
    )
    result.stdout.fnmatch_lines(
        [
            "*- kit could not decide: an object's finalizer raised -*",
            "Exception ignored in: <function Leftover.__del__ at *",
            "hint: Python could not raise an exception during this test*",
            "*kit could not decide: an object's finalizer raised x1 (no clause charged)*",
        ]
    )


def test_a_flaky_failure_keeps_its_example() -> None:
    """Hypothesis notes the failing example on the ``FlakyFailure`` itself."""
    from conformance.failures import failure_details

    flaky = FlakyFailure("unreliable", [AssertionError("KV-DEL-1: x")])
    flaky.__notes__ = ["Falsifying example: test(key='p:k')"]  # add_note: 3.11+
    details = failure_details(flaky)
    assert details["example"] == ["Falsifying example: test(key='p:k')"]
    assert "KV-DEL-1: x" in details["message"]


def test_a_call_that_never_returns_is_named_with_its_arguments(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        hangs="""
import asyncio

from reference_backends.memory import InMemoryBackend


class Hangs(InMemoryBackend):
    async def list_by_prefix(self, prefix, *, after=None, limit=None):
        await asyncio.Event().wait()


def factory(*, namespace, clock):
    return Hangs(namespace=namespace, clock=clock)
"""
    )
    pytester.syspathinsert()
    result = pytester.runpytest(
        "--backend",
        "hangs:factory",
        "-k",
        "test_prefix_must_name_a_partition or test_partition_prefix_is_bounded_at_the_colon",
        "--conformance-test-timeout",
        "3",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*did not finish within 3 s*, waiting in Hangs.list_by_prefix(prefix='*', after=*"]
    )
