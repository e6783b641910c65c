"""Which clause a kit failure charges, or that the kit could not decide at all.

A failure is only a verdict on the backend when it is a contradiction of the contract. Two
kinds of Hypothesis error are not: a deadline or a ``too_slow`` health check says the machine
was slow, nothing about the backend. Nor is a test the kit cancelled after
``--conformance-test-timeout``: a call that never returns is usually a bug, but a slow remote
server looks the same, and it breaks no one clause. Nor is an exception that Python could not
raise (in a finalizer: an unclosed socket some earlier test left, collected during this one),
which pytest turns into a failure under ``-W error``. And a ``FlakyFailure`` wraps the failures
Hypothesis saw before it could not reproduce them; the clause to charge is the one the first of
those names, not every clause the test checks.

Standard library only (Hypothesis' and pytest's exception types are looked up in
``sys.modules``, never imported): the plugin imports this in every pytest run.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import NamedTuple

from conformance.clauses import CLAUSES

CLAUSE_ID = re.compile(r"\b[A-Z]+-[A-Z]+-\d+\b")

TOO_SLOW_HINT = (
    "the kit's Hypothesis profiles (dev, ci, thorough) set deadline=None and suppress the "
    "too_slow health check; run with --hypothesis-profile ci (or dev), or give the profile you "
    "chose deadline=None and suppress_health_check=[HealthCheck.too_slow]"
)

TIMEOUT_HINT = (
    "a kit test that never finishes is most often a backend call that never returns (a retry "
    "or paging loop that makes no progress: run that test alone and interrupt it to see where "
    "it waits); for a slow remote server, raise --conformance-test-timeout (0: no limit)"
)


class KitTimeout(Exception):
    """A kit test ran past ``--conformance-test-timeout`` and the kit stopped it.

    Raised from a signal handler it may land anywhere in the backend's code, where
    ``BackendBase`` turns it into a ``BackendError`` caused by it: ``undecided`` looks through
    causes, so the test is still undecided, not a broken clause.
    """


UNRAISABLE_HINT = (
    "Python could not raise an exception during this test, most often the finalizer of an "
    "object garbage-collected here (an unclosed socket or transport, perhaps left by an earlier "
    "test: yours, the kit's or your backend's), and -W error turned it into this failure; it "
    "says nothing about the clause. Run with PYTHONTRACEMALLOC=20 to see where the object was "
    "made, and close it there"
)

HINTS = {
    "too slow": TOO_SLOW_HINT,
    "did not finish": TIMEOUT_HINT,
    "an object's finalizer raised": UNRAISABLE_HINT,
}
"""What to do about each kind of "could not decide"."""


class Undecided(NamedTuple):
    """Why the kit could not decide: ``kind`` is a key of :data:`HINTS`."""

    kind: str
    reason: str

    @property
    def hint(self) -> str:
        return HINTS[self.kind]


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` itself, then every exception nested in it (groups first-to-last, then causes)."""
    yield exc
    # Duck-typed: on Python 3.10 exception groups come from the ``exceptiongroup`` backport.
    for inner in getattr(exc, "exceptions", ()):
        if isinstance(inner, BaseException):
            yield from _leaves(inner)
    if exc.__cause__ is not None:
        yield from _leaves(exc.__cause__)


def undecided(exc: BaseException) -> Undecided | None:
    """Why the run could not decide and what to do about it, else None: a deadline or
    ``too_slow`` health check, the kit's own test timeout, or an exception Python could not
    raise (pytest's unraisable-exception warning, an error under ``-W error``).

    Only when nothing nested in ``exc`` is a definite failure: a flaky failure whose first run
    did contradict the contract is still charged to the clause.
    """
    errors = sys.modules.get("hypothesis.errors")
    unraisable = getattr(sys.modules.get("pytest"), "PytestUnraisableExceptionWarning", None)
    found = []
    for leaf in _leaves(exc):
        if isinstance(leaf, KitTimeout):
            found.append(Undecided("did not finish", f"KitTimeout: {leaf}"))
        elif unraisable is not None and isinstance(leaf, unraisable):
            first = str(leaf).splitlines()[0]
            found.append(Undecided("an object's finalizer raised", first))
        elif errors is not None and isinstance(leaf, errors.DeadlineExceeded):
            found.append(Undecided("too slow", f"Hypothesis DeadlineExceeded: {leaf}"))
        elif (
            errors is not None
            and isinstance(leaf, errors.FailedHealthCheck)
            and "too_slow" in str(leaf)
        ):
            first = str(leaf).splitlines()[0]
            reason = f"Hypothesis FailedHealthCheck too_slow: {first}"
            found.append(Undecided("too slow", reason))
        elif isinstance(leaf, AssertionError):
            return None
    return found[0] if found else None


def charged(exc: BaseException | None, message: str, clauses: tuple[str, ...]) -> tuple[str, ...]:
    """The clause a failure breaks: the first clause the failure names.

    The first definite contradiction is the first nested exception whose message names a
    clause (a state-machine or race failure starts with it, and so does a test's diagnosis of
    a wrong answer, which may name a more basic clause than the one the test is tagged with);
    a failure that names none charges the test's own clause, the first it is tagged with: one
    defect, one clause, so that the report can tell its cause from its echoes.
    """
    texts = [message] if exc is None else [str(leaf) for leaf in _leaves(exc)] + [message]
    for text in texts:
        for found in CLAUSE_ID.findall(text):
            if found in clauses or found in CLAUSES:
                return (found,)
    return clauses[:1]
