"""Hypothesis state machine that drives a backend and an independent model side by side.

Every rule calls the backend and :class:`~conformance.model.KVModel` with the same arguments
and compares the answers; after every step an invariant reads every key of a small universe
back and compares it too. The universe is chosen to sit on the edges the contract talks about:
keys that differ only in ``%``, ``-``, ``.``, ``~``; a partition ``p`` next to ``pq`` (a prefix
must stop at ``:``); expiries exactly on the clock's steps (the ``clock() == expires_at``
boundary); clock moves back after a clean-up (cleaned records stay gone).

Hypothesis machines are synchronous, so each machine instance runs the async backend on an
event loop of its own, created in ``__init__``; the backend is opened inside that loop so that
loop-bound clients (``redis.asyncio``) belong to it. A failure shows Hypothesis' shrunk list of
steps, and the assertion names the clause whose answer differed.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conformance.clauses import describe
from conformance.harness import (
    BackendFactory,
    KitTarget,
    ManualClock,
    fresh_namespace,
    open_target,
)
from conformance.model import NOT_FOUND, CasOutcome, Conflict, KVModel, Record, apply_cas
from pmcp_tasks.backend import BackendCapabilities, StorageBackend, VersionedRecord
from pmcp_tasks.errors import RecordNotFound, VersionConflict

T = TypeVar("T")

KEYS = ("p:a", "p:a-b", "p:a.b", "p:ab", "p:b", "p:%41", "p:~", "pq:a", "q:a")
PREFIXES = ("p:", "p:a", "p:a.", "p:b", "pq:", "q:")
AFTERS = ("p:", "p:a", "p:a-", "p:a.b", "p:zz", "o:z", "pq:a", "pz:")
TTLS = (None, None, -1.0, 0.0, 0.5, 1.0, 5.0, 30.0)
"""Seconds from the model clock to ``expires_at``; ``None`` never expires, ``<= 0`` is past."""
INVARIANT_PAGE = 3
"""Page size of the listing after every step: small enough that pages end mid-partition."""
SHORT_TTLS = (0.0, 0.5, 1.0)
CLOCK_STEPS = (0.5, 1.0, 4.5, 30.0)
EXPECTED = ("current", "zero", "next", "previous", "huge")
"""How a CAS picks ``expected_version`` from the model's current version (0 when absent)."""
DATA = st.one_of(
    st.binary(max_size=6),
    st.sampled_from([b"", b"\x00", b"\xff\xfe", "é".encode(), b"\x80abc"]),
)


def _as_record(got: VersionedRecord | None) -> Record | None:
    return None if got is None else Record(got.data, got.version, got.expires_at)


def _mismatch(clause: str, call: str, got: object, want: object) -> NoReturn:
    """Every disagreement is raised here, so Hypothesis treats them as one bug and reports
    only the smallest sequence that shows any of them."""
    raise AssertionError(
        f"{clause}: backend and model differ after {call}\n"
        f"  backend returned: {got!r}\n"
        f"  the contract says: {want!r}\n"
        f"{describe(clause)}"
    )


class BackendStateMachine(RuleBasedStateMachine):
    """Compares the backend that ``factory`` opens with :class:`KVModel`.

    ``expiry`` is False for backends without ``injectable_clock``: no expiries, no clock moves.
    """

    keys = Bundle("keys")

    def __init__(self, factory: BackendFactory, *, expiry: bool = True) -> None:
        super().__init__()
        self.factory, self.expiry = factory, expiry
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.model = KVModel(self.clock())
        self.last_write: dict[str, str] = {}  # key -> clause of the last write; every key touched
        self.dirty: set[str] = set()  # keys whose answer may have changed since the last check
        self.latest = self.model.now  # the latest time the clock has shown
        self.ever_cleaned: set[str] = set()  # keys a clean-up removed at some point
        try:
            self.target: KitTarget = self._run(
                open_target(self.factory, namespace=fresh_namespace("state"), clock=self.clock)
            )
        except BaseException:
            self.loop.close()
            raise
        self.backend: StorageBackend = self.target.backend

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)

    def _call(self, clause: str, what: str, call: Coroutine[Any, Any, T]) -> T:
        """Run one backend call; an exception the contract does not allow names ``clause``."""
        try:
            return self._run(call)
        except (RecordNotFound, VersionConflict):
            raise
        except Exception as exc:
            raise AssertionError(
                f"{clause}: {what} raised {exc!r} where the contract expects an answer\n"
                f"{describe(clause)}"
            ) from exc

    def teardown(self) -> None:
        try:
            self._run(self.target.dispose())
        finally:
            self.loop.close()

    # -- helpers ------------------------------------------------------------------------------

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None or not self.expiry else self.model.now + ttl

    def _expired_here(self, key: str) -> bool:
        """An expired record sits at ``key`` (physically still there as far as we know)."""
        return key in self.model.records and self.model.get(key) is None

    def _cas_clause(self, key: str, expected: int, want: CasOutcome) -> str:
        if self._expired_here(key):
            return "KV-LIVE-2"
        if expected == 0:
            return "KV-CAS-1"
        if want is NOT_FOUND:
            return "KV-CAS-2"
        return "KV-CAS-3" if isinstance(want, Conflict) else "KV-CAS-4"

    def _record_clause(self, key: str, got: Record | None, want: Record | None) -> str:
        """The clause a disagreement on ``get(key)`` most likely breaks."""
        model = self.model
        if want is None and got is not None:
            if key in model.cleaned:
                return "KV-CLEAN-2"
            stored = model.records.get(key)
            if stored is not None or key in model.limbo:
                at_boundary = stored is not None and stored.expires_at == model.now
                return "KV-LIVE-1" if at_boundary else "KV-LIVE-2"
            return self.last_write.get(key, "KV-DEL-1")
        if got is None:
            if want is None or want.expires_at is None:
                return "KV-PUT-1"
            # Dead for a time the clock showed earlier but has moved back from: the backend
            # decides on another clock (the latest it saw), not a boundary off by one.
            return "KV-LIVE-3" if want.expires_at <= self.latest else "KV-LIVE-1"
        assert want is not None
        if got.data != want.data:
            return "KV-DATA-1"
        if got.expires_at != want.expires_at:
            return "KV-LIVE-4"
        return self.last_write.get(key, "KV-PUT-1")

    def _list_clause(
        self,
        prefix: str,
        after: str | None,
        limit: int | None,
        got: list[tuple[str, Record]],
        want: list[tuple[str, Record]],
    ) -> str:
        keys = [key for key, _ in got]
        if any(not key.startswith(prefix) for key in keys):
            return "KV-LIST-2"
        twice = [first for first, second in itertools.pairwise(keys) if first == second]
        if twice:
            # A key listed twice is a stale index entry: clean-up (or delete) left it behind.
            return "KV-CLEAN-1" if twice[0] in self.ever_cleaned else "KV-LIST-2"
        if any(first > second for first, second in itertools.pairwise(keys)):
            return "KV-LIST-3"
        if after is not None and any(key <= after for key in keys):
            return "KV-LIST-4"
        if limit is not None and len(keys) > limit:
            return "KV-LIST-5"
        for key, record in got:
            if self.model.get(key) is None:  # expired (on the boundary?), cleaned or deleted
                return self._record_clause(key, record, None)
        if len(keys) < len(want):
            for key, expected in want:
                if key not in keys:  # absent from get too: the record, not the listing, is wrong
                    direct = self._run(self.backend.get(key))
                    if _as_record(direct) != expected:
                        return self._record_clause(key, _as_record(direct), expected)
                    break
            return "KV-LIST-5" if limit is not None else "KV-LIST-2"
        for (key, record), (_, expected) in zip(got, want, strict=False):
            if record != expected:
                return self._record_clause(key, record, expected)
        return "KV-LIST-2"

    def _list(self, prefix: str, after: str | None, limit: int | None) -> list[tuple[str, Record]]:
        what = f"list_by_prefix({prefix!r}, after={after!r}, limit={limit!r})"
        page = self._call(
            "KV-LIST-2", what, self.backend.list_by_prefix(prefix, after=after, limit=limit)
        )
        return [(key, Record(rec.data, rec.version, rec.expires_at)) for key, rec in page]

    # -- rules --------------------------------------------------------------------------------

    @rule(target=keys, key=st.sampled_from(KEYS), data=DATA, ttl=st.sampled_from(TTLS))
    def put(self, key: str, data: bytes, ttl: float | None) -> str:
        return self._put(key, data, ttl)

    @precondition(lambda self: self.expiry)
    @rule(target=keys, key=st.sampled_from(KEYS), ttl=st.sampled_from(SHORT_TTLS))
    def put_expiring(self, key: str, ttl: float) -> str:
        """A second way in, so that records on the edge of expiry are common."""
        return self._put(key, b"short", ttl)

    def _put(self, key: str, data: bytes, ttl: float | None) -> str:
        self.dirty.add(key)
        expires_at = self._expiry(ttl)
        clause = "KV-LIVE-2" if self._expired_here(key) else "KV-PUT-1"
        call = f"put({key!r}, {data!r}, expires_at={expires_at!r})"
        want = self.model.put(key, data, expires_at)
        got = self._call(clause, call, self.backend.put(key, data, expires_at=expires_at))
        self.last_write[key] = "KV-PUT-1"
        if got != want:
            _mismatch(clause, call, got, want)
        return key

    @rule(
        target=keys,
        key=st.one_of(keys, st.sampled_from(KEYS)),
        data=DATA,
        pick=st.sampled_from(EXPECTED),
        ttl=st.sampled_from(TTLS),
    )
    def put_if_version(self, key: str, data: bytes, pick: str, ttl: float | None) -> str:
        current = self.model.get(key)
        version = 0 if current is None else current.version
        expected = {
            "current": version,
            "zero": 0,
            "next": version + 1,
            "previous": max(version - 1, 1),
            "huge": 2**62 + 1,
        }[pick]
        expires_at = self._expiry(ttl)
        call = f"put_if_version({key!r}, {data!r}, {expected}, expires_at={expires_at!r})"
        clause = self._cas_clause(key, expected, apply_cas(current, data, expected, None)[1])
        want = self.model.put_if_version(key, data, expected, expires_at)
        call_backend = self.backend.put_if_version(key, data, expected, expires_at=expires_at)
        got: CasOutcome
        try:
            got = self._call(clause, call, call_backend)
        except RecordNotFound:
            got = NOT_FOUND
        except VersionConflict as exc:
            got = Conflict(exc.actual)
        self.dirty.add(key)
        self.last_write[key] = (
            "KV-CAS-4" if isinstance(want, int) else self.last_write.get(key, "KV-PUT-1")
        )
        if type(got) is not type(want) or got != want:
            _mismatch(clause, call, got, want)
        return key

    @rule(key=st.one_of(keys, st.sampled_from(KEYS)))
    def delete(self, key: str) -> None:
        clause = "KV-LIVE-2" if self._expired_here(key) else "KV-DEL-1"
        want = self.model.delete(key)
        got = self._call(clause, f"delete({key!r})", self.backend.delete(key))
        self.last_write[key] = "KV-DEL-1"
        self.dirty.add(key)
        if got is not want:
            _mismatch(clause, f"delete({key!r})", got, want)

    @rule(
        prefix=st.sampled_from(PREFIXES),
        after=st.none() | st.sampled_from(AFTERS) | st.sampled_from(KEYS),
        limit=st.none() | st.integers(1, 4),
    )
    def list_page(self, prefix: str, after: str | None, limit: int | None) -> None:
        got = self._list(prefix, after, limit)
        want = self.model.list_by_prefix(prefix, after, limit)
        if got != want:
            clause = self._list_clause(prefix, after, limit, got, want)
            call = f"list_by_prefix({prefix!r}, after={after!r}, limit={limit!r})"
            _mismatch(clause, call, got, want)

    @rule(prefix=st.sampled_from(PREFIXES), limit=st.integers(1, 3))
    def list_all_pages(self, prefix: str, limit: int) -> None:
        """KV-LIST-5: paging with ``after = last key`` visits exactly one full listing."""
        self._page_through(prefix, limit)

    def _page_through(self, prefix: str, limit: int) -> None:
        """Page by page, each compared with the model's page, to the first short page."""
        after: str | None = None
        for _ in range(len(KEYS) + 1):
            got = self._list(prefix, after, limit)
            want = self.model.list_by_prefix(prefix, after, limit)
            if got != want:
                clause = self._list_clause(prefix, after, limit, got, want)
                call = (
                    f"list_by_prefix({prefix!r}, after={after!r}, limit={limit}) "
                    f"at clock {self.model.now}"
                )
                _mismatch(clause, call, got, want)
            if len(got) < limit:
                return
            after = got[-1][0]

    @rule()
    def cleanup_expired(self) -> None:
        self.dirty.update(self.last_write)
        least, most = self.model.cleanup_expired()
        self.ever_cleaned.update(self.model.cleaned)
        got = self._call("KV-CLEAN-1", "cleanup_expired()", self.backend.cleanup_expired())
        if not least <= got <= most:
            want = least if least == most else f"{least}..{most}"
            _mismatch("KV-CLEAN-1", "cleanup_expired()", got, want)

    @precondition(lambda self: self.expiry)
    @rule(seconds=st.sampled_from(CLOCK_STEPS))
    def advance_clock(self, seconds: float) -> None:
        self.model.now = self.clock.advance(seconds)
        self.latest = max(self.latest, self.model.now)
        self.dirty.update(self.last_write)

    @precondition(lambda self: self.expiry and self.model.now > self.model.earliest_safe_time())
    @rule(seconds=st.sampled_from((*CLOCK_STEPS, math.inf)))
    def move_clock_back(self, seconds: float) -> None:
        """Back, but never so far that an expired record not yet cleaned up would revive
        (``inf``: as far as that allows, which is before what a clean-up just removed)."""
        target = max(self.model.now - seconds, self.model.earliest_safe_time())
        self.clock.set(target)
        self.model.now = target
        self.dirty.update(self.last_write)

    @precondition(lambda self: self.expiry)
    @rule()
    def cleanup_then_rewind(self) -> None:
        """KV-CLEAN-2 in one step, since four independent rules rarely line up by chance:
        clean up, then move the clock back as far as allowed; what was removed stays gone."""
        self.cleanup_expired()
        self.move_clock_back(math.inf)

    @invariant()
    def state_matches(self) -> None:
        """Every step: every partition written to, paged through (every record, including
        neighbours a buggy write may have hit; pages that must be full), and a ``get`` of every
        key whose answer may have changed (the key written; all after a clock move or clean-up).
        """
        for partition in sorted({key.split(":", 1)[0] + ":" for key in self.last_write}):
            self._page_through(partition, INVARIANT_PAGE)
        for key in sorted(self.dirty):
            got_record = _as_record(self._call("KV-PUT-1", f"get({key!r})", self.backend.get(key)))
            want_record = self.model.get(key)
            if got_record != want_record:
                clause = self._record_clause(key, got_record, want_record)
                call = f"get({key!r}) at clock {self.model.now}"
                _mismatch(clause, call, got_record, want_record)
        self.dirty.clear()


def read_capabilities(factory: BackendFactory) -> BackendCapabilities:
    """Open one backend on a throwaway namespace, just to read what it declares."""

    async def read() -> BackendCapabilities:
        target = await open_target(factory, namespace=fresh_namespace("caps"), clock=ManualClock())
        try:
            return target.backend.capabilities
        finally:
            await target.backend.aclose()

    return asyncio.run(read())


class StatefulContract:
    """Random sequences of every operation, compared with the model after every step."""

    @pytest.mark.clause(
        "KV-PUT-1",
        "KV-CAS-1",
        "KV-CAS-2",
        "KV-CAS-3",
        "KV-CAS-4",
        "KV-DEL-1",
        "KV-LIST-2",
        "KV-LIST-3",
        "KV-LIST-4",
        "KV-LIST-5",
        "KV-LIVE-1",
        "KV-LIVE-2",
        "KV-LIVE-4",
        "KV-CLEAN-1",
        "KV-CLEAN-2",
    )
    def test_backend_matches_model(self, backend_factory: BackendFactory) -> None:
        """Stateful; the profile (``--hypothesis-profile``) sets how many sequences to run.

        A backend without ``injectable_clock`` runs the same machine without expiries and
        clock moves: the kit cannot move real time back, nor hit a boundary exactly.
        """
        expiry = read_capabilities(backend_factory).injectable_clock
        # Hypothesis calls its argument for each sequence and documents that any callable
        # returning a machine will do; its annotation asks for the class itself.
        run_state_machine_as_test(
            lambda: BackendStateMachine(backend_factory, expiry=expiry)  # type: ignore[arg-type]
        )
