"""Hypothesis state machine that drives a backend and an independent model side by side.

Every rule calls the backend and :class:`~conformance.model.KVModel` with the same arguments
and compares the answers; after every step an invariant reads every key of a small universe
back and compares it too. The universe is chosen to sit on the edges the contract talks about:
keys that differ only in ``%``, ``-``, ``.``, ``~``; a partition ``p`` next to ``pq`` (a prefix
must stop at ``:``); expiries exactly on the clock's steps (the ``clock() == expires_at``
boundary); clock moves back after a clean-up (cleaned records stay gone). Beyond that universe
the rules draw from the classes of :mod:`conformance.inputs`: keys of every character and
length, ``after`` values no key could hold, data sizes around powers of two, expiries far in
both directions, clock jumps from one float step to decades, seeded versions of every
magnitude, limits no page reaches; and they use a second client, close and reopen every client,
and cancel writes midway. Each input class and rule a run reached is counted (and given to
Hypothesis as an ``event``), and the kit's report shows the counts.

Hypothesis machines are synchronous, so each machine instance runs the async backend on an
event loop of its own, created in ``__init__``; the backend is opened inside that loop so that
loop-bound clients (``redis.asyncio``) belong to it. A failure shows Hypothesis' shrunk list of
steps, and the assertion names the clause whose answer differed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import pytest
from hypothesis import event
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
from conformance.contract.lifecycle import cancel_after
from conformance.harness import (
    BackendFactory,
    KitTarget,
    ManualClock,
    SupportsSeed,
    fresh_namespace,
    open_target,
)
from conformance.inputs import (
    ALPHABET,
    CLOCK_JUMPS,
    VERSION_MAGNITUDES,
    Example,
    data_of,
    data_sizes,
    key_character_examples,
    key_length_examples,
)
from conformance.model import (
    NOT_FOUND,
    CasOutcome,
    Conflict,
    KVModel,
    Record,
    apply_cas,
    apply_put,
)
from conformance.report import PROP_EXERCISED
from pmcp_tasks.backend import MAX_VERSION, BackendCapabilities, StorageBackend, VersionedRecord
from pmcp_tasks.errors import RecordNotFound, VersionConflict

T = TypeVar("T")

KEYS = ("p:a", "p:a-b", "p:a.b", "p:ab", "p:b", "p:%41", "p:~", "pq:a", "q:a")
PREFIXES = ("p:", "p:a", "p:a.", "p:b", "pq:", "q:")
AFTERS = ("p:", "p:a", "p:a-", "p:a.b", "p:zz", "o:z", "pq:a", "pz:")
TTLS = (None, None, -1.0, 0.0, 0.5, 1.0, 5.0, 30.0)
"""Seconds from the model clock to ``expires_at``; ``None`` never expires, ``<= 0`` is past."""
FAR_TTLS = (3.2e8, 1e15, 1e300, -1e9, -1e300)
"""Expiries decades and far beyond ahead, and long past (``inputs.expiry_examples``)."""
INVARIANT_PAGE = 3
"""Page size of the listing after every step: small enough that pages end mid-partition."""
SHORT_TTLS = (0.0, 0.5, 1.0)
CLOCK_STEPS = (0.5, 1.0, 4.5, 30.0)
FAR_CLOCK_STEPS = tuple(jump.value for jump in CLOCK_JUMPS)
"""``0.0`` stands for one float step (``math.nextafter``)."""
EXPECTED = ("current", "zero", "next", "previous", "huge")
"""How a CAS picks ``expected_version`` from the model's current version (0 when absent)."""
DATA = st.one_of(
    st.binary(max_size=6),
    st.sampled_from([b"", b"\x00", b"\xff\xfe", "é".encode(), b"\x80abc"]),
    st.sampled_from([size.value for size in data_sizes(None, most=1 << 16)]).map(data_of),
)
DRAWN_KEYS = st.builds(
    "{}:{}".format,
    st.sampled_from(("p", "pq", "q")),
    st.one_of(
        st.sampled_from([e.value.split(":", 1)[1] for e in key_character_examples()]),
        st.sampled_from([e.value.split(":", 1)[1][1:] or "i" for e in key_length_examples()]),
        st.text(alphabet=ALPHABET, min_size=1, max_size=16),
    ),
)
"""Keys beyond the fixed universe, in its three partitions (each partition written is paged
through after every step): every character in every position of the item, items up to the
longest key (1024 bytes), random items. The partition's own characters are the input_domain
area's."""
ANY_TEXT = st.text(
    st.characters(codec=None, categories=["Cs", "Cc", "Lu", "Ll", "Nd", "Po", "Sm", "So"]),
    max_size=3,
)
"""Any str, lone surrogates and NUL included: what an ``after`` may hold beyond a key."""
AFTER_TAILS = ("\ud800", "\x00", "\udfff", "\u00e9", "\U0001f600", ":", " ", "~")
"""What the state machine appends to a key to make an ``after`` (inputs.after_examples)."""
LIMITS = st.none() | st.integers(1, 4) | st.sampled_from((2**31, MAX_VERSION, 10**30))
SEEDED_VERSIONS = tuple(v for v in VERSION_MAGNITUDES if v.value <= 2**62)
"""Versions the ``seed`` rule stores; the model does not count past 2**63-1 (KV-VER-1 is the
input-domain area's)."""


def _as_record(got: VersionedRecord | None) -> Record | None:
    return None if got is None else Record(got.data, got.version, got.expires_at)


def _mismatch(clause: str, call: str, got: object, want: object) -> NoReturn:
    """Every disagreement is raised here, so Hypothesis treats them as one bug and reports
    only the smallest sequence that shows any of them."""
    raise AssertionError(
        f"{clause}: backend and model differ after {call}\n"
        f"  backend returned: {_short(got)}\n"
        f"  the contract says: {_short(want)}\n"
        f"{describe(clause)}"
    )


def _short(value: object, most: int = 2000) -> str:
    """``repr(value)`` with each record's data cut to 40 bytes (records of 64 KiB would make a
    failure unreadable)."""
    if isinstance(value, Record):
        data = value.data if len(value.data) <= 40 else value.data[:40] + b"..."
        cut = f" ({len(value.data)} bytes)" if len(value.data) > 40 else ""
        return f"Record(data={data!r}{cut}, version={value.version}, expires_at={value.expires_at})"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_short(item, most) for item in value)
        text = f"[{inner}]" if isinstance(value, list) else f"({inner})"
    else:
        text = repr(value)
    return text if len(text) <= most else text[:most] + f"... ({len(text)} characters)"


class BackendStateMachine(RuleBasedStateMachine):
    """Compares the backend that ``factory`` opens with :class:`KVModel`.

    ``expiry`` is False for backends without ``injectable_clock``: no expiries, no clock moves.
    """

    keys = Bundle("keys")

    def __init__(
        self,
        factory: BackendFactory,
        *,
        expiry: bool = True,
        exercised: Counter[str] | None = None,
    ) -> None:
        super().__init__()
        self.factory, self.expiry = factory, expiry
        self.exercised = Counter[str]() if exercised is None else exercised
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.model = KVModel(self.clock())
        self.last_write: dict[str, str] = {}  # key -> clause of the last write; every key touched
        self.dirty: set[str] = set()  # keys whose answer may have changed since the last check
        self.latest = self.model.now  # the latest time the clock has shown
        self.ever_cleaned: set[str] = set()  # keys a clean-up removed at some point
        self.namespace = fresh_namespace("state")
        try:
            self.target: KitTarget = self._open()
        except BaseException:
            self.loop.close()
            raise
        self._adopt(self.target)
        capabilities = self.backend.capabilities
        self.shared = capabilities.shared_in_process
        self.limit = capabilities.max_record_bytes
        if self.shared:
            self.clients.append(self._open().backend)

    def _adopt(self, target: KitTarget) -> None:
        """Make ``target`` the first client, whose hooks seed and, at the end, drop the data."""
        self.target = target
        self.backend: StorageBackend = target.backend
        self.seed = target.hooks if isinstance(target.hooks, SupportsSeed) else None
        self.clients = [self.backend]

    def _open(self) -> KitTarget:
        return self._run(open_target(self.factory, namespace=self.namespace, clock=self.clock))

    def _note(self, *labels: str) -> None:
        """Count what this step exercised, for the report (and Hypothesis' statistics)."""
        for label in labels:
            self.exercised[label] += 1
            event(label)

    def _client(self, index: int) -> StorageBackend:
        if index:
            self._note("client: the second one")
        return self.clients[index % len(self.clients)]

    def _data(self, data: bytes) -> bytes:
        """Within the backend's declared limit (KV-SIZE-1 is the sizes area's)."""
        if len(data) > 6:
            self._note(f"data: {len(data)} bytes")
        return data if self.limit is None else data[: self.limit]

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
            for client in self.clients[1:]:
                self._run(client.aclose())
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
        if want is None and got is not None:
            return self._resurrected_clause(key)
        if got is None:
            if want is None or want.expires_at is None:
                return "KV-PUT-1"
            # Dead for a time the clock showed earlier but has moved back from: the backend
            # decides on another clock (the latest it saw), not a boundary off by one.
            return "KV-LIVE-3" if want.expires_at <= self.latest else "KV-LIVE-1"
        assert want is not None
        if self.latest > self.model.now and self._judges_by_latest_time():
            return "KV-LIVE-3"  # another history of the key, not a mangled record
        if got.version != want.version:
            return self.last_write.get(key, "KV-PUT-1")
        if got.data != want.data:
            return "KV-DATA-1"
        if got.expires_at != want.expires_at:
            return "KV-LIVE-4"
        return self.last_write.get(key, "KV-PUT-1")

    def _resurrected_clause(self, key: str) -> str:
        """The clause a record the model holds dead, cleaned or deleted, yet read, breaks."""
        model = self.model
        if key in model.cleaned:
            return "KV-CLEAN-2"
        stored = model.records.get(key)
        if stored is not None or key in model.limbo:
            at_boundary = stored is not None and stored.expires_at == model.now
            return "KV-LIVE-1" if at_boundary else "KV-LIVE-2"
        return self.last_write.get(key, "KV-DEL-1")

    def _judges_by_latest_time(self) -> bool:
        """After the clock went back: does the backend take a record that is live on the clock
        now for dead, as if it decided on the latest time it saw? (A probe in a partition of
        its own, asked only once a mismatch has been found.)"""
        probe = "diag:probe"
        expires_at = (self.model.now + self.latest) / 2
        self._run(self.backend.put(probe, b"probe", expires_at=expires_at))
        return self._run(self.backend.get(probe)) is None

    def _list_clause(
        self,
        prefix: str,
        after: str | None,
        limit: int | None,
        got: list[tuple[str, Record]],
        want: list[tuple[str, Record]],
    ) -> str:
        keys = [key for key, _ in got]
        shape = self._shape_clause(prefix, after, limit, keys)
        if shape is not None:
            return shape
        for key, record in got:
            if self.model.get(key) is None:  # expired (on the boundary?), cleaned or deleted
                return self._record_clause(key, record, None)
        if len(keys) < len(want):
            return self._missing_clause(limit, keys, want)
        for (key, record), (_, expected) in zip(got, want, strict=False):
            if record != expected:
                return self._record_clause(key, record, expected)
        return "KV-LIST-2"

    def _shape_clause(
        self, prefix: str, after: str | None, limit: int | None, keys: list[str]
    ) -> str | None:
        """The clause a listing's keys break by themselves (prefix, order, bounds), if any."""
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
        return None

    def _missing_clause(
        self, limit: int | None, keys: list[str], want: list[tuple[str, Record]]
    ) -> str:
        """The clause a listing that misses a live record breaks."""
        for key, expected in want:
            if key not in keys:  # absent from get too: the record, not the listing, is wrong
                direct = self._run(self.backend.get(key))
                if _as_record(direct) != expected:
                    return self._record_clause(key, _as_record(direct), expected)
                if key in self.ever_cleaned:
                    # get finds it, listings do not, and a clean-up once removed it: the
                    # clean-up left the index out of step with the records.
                    return "KV-CLEAN-1"
                break
        return "KV-LIST-5" if limit is not None else "KV-LIST-2"

    def _list(
        self, prefix: str, after: str | None, limit: int | None, backend: StorageBackend
    ) -> list[tuple[str, Record]]:
        what = f"list_by_prefix({prefix!r}, after={after!r}, limit={limit!r})"
        page = self._call(
            "KV-LIST-2", what, backend.list_by_prefix(prefix, after=after, limit=limit)
        )
        return [(key, Record(rec.data, rec.version, rec.expires_at)) for key, rec in page]

    # -- rules --------------------------------------------------------------------------------

    @rule(
        target=keys,
        key=st.sampled_from(KEYS) | DRAWN_KEYS,
        data=DATA,
        ttl=st.sampled_from(TTLS) | st.sampled_from(FAR_TTLS),
        client=st.integers(0, 1),
    )
    def put(self, key: str, data: bytes, ttl: float | None, client: int) -> str:
        return self._put(key, data, ttl, client)

    @precondition(lambda self: self.expiry)
    @rule(target=keys, key=st.sampled_from(KEYS), ttl=st.sampled_from(SHORT_TTLS))
    def put_expiring(self, key: str, ttl: float) -> str:
        """A second way in, so that records on the edge of expiry are common."""
        return self._put(key, b"short", ttl, 0)

    def _put(self, key: str, data: bytes, ttl: float | None, client: int) -> str:
        self._note_key(key)
        self._note_ttl(ttl)
        data = self._data(data)
        self.dirty.add(key)
        expires_at = self._expiry(ttl)
        clause = "KV-LIVE-2" if self._expired_here(key) else "KV-PUT-1"
        call = f"put({key!r}, {data!r:.80}, expires_at={expires_at!r})"
        want = self.model.put(key, data, expires_at)
        backend = self._client(client)
        got = self._call(clause, call, backend.put(key, data, expires_at=expires_at))
        self.last_write[key] = "KV-PUT-1"
        if got != want:
            _mismatch(clause, call, got, want)
        return key

    @rule(
        target=keys,
        key=st.one_of(keys, st.sampled_from(KEYS)),
        data=DATA,
        pick=st.sampled_from(EXPECTED),
        ttl=st.sampled_from(TTLS) | st.sampled_from(FAR_TTLS),
        client=st.integers(0, 1),
    )
    def put_if_version(
        self, key: str, data: bytes, pick: str, ttl: float | None, client: int
    ) -> str:
        self._note_ttl(ttl)
        data = self._data(data)
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
        call = f"put_if_version({key!r}, {data!r:.80}, {expected}, expires_at={expires_at!r})"
        clause = self._cas_clause(key, expected, apply_cas(current, data, expected, None)[1])
        want = self.model.put_if_version(key, data, expected, expires_at)
        backend = self._client(client)
        call_backend = backend.put_if_version(key, data, expected, expires_at=expires_at)
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

    @rule(key=st.one_of(keys, st.sampled_from(KEYS)), client=st.integers(0, 1))
    def delete(self, key: str, client: int) -> None:
        clause = "KV-LIVE-2" if self._expired_here(key) else "KV-DEL-1"
        want = self.model.delete(key)
        got = self._call(clause, f"delete({key!r})", self._client(client).delete(key))
        self.last_write[key] = "KV-DEL-1"
        self.dirty.add(key)
        if got is not want:
            _mismatch(clause, f"delete({key!r})", got, want)

    @precondition(lambda self: self.seed is not None)
    @rule(
        target=keys,
        key=st.one_of(keys, st.sampled_from(KEYS)),
        version=st.sampled_from(SEEDED_VERSIONS),
    )
    def seed_version(self, key: str, version: Example[int]) -> str:
        """A record at any version (the ``seed`` hook): later writes must count on from it."""
        assert self.seed is not None
        self._note(f"version: seeded at {version.cls}")
        self._run(self.seed.seed(key, b"seeded", version.value, None))
        self.model.seed(key, Record(b"seeded", version.value, None))
        self.last_write[key] = "KV-VER-1"
        self.dirty.add(key)
        return key

    @rule(
        prefix=st.sampled_from(PREFIXES) | keys.map(lambda key: key.split(":", 1)[0] + ":"),
        after=st.none()
        | st.sampled_from(AFTERS)
        | st.sampled_from(KEYS)
        | st.builds(str.__add__, st.sampled_from(KEYS), st.sampled_from(AFTER_TAILS))
        | st.builds(str.__add__, keys, ANY_TEXT),
        limit=LIMITS,
        client=st.integers(0, 1),
    )
    def list_page(self, prefix: str, after: str | None, limit: int | None, client: int) -> None:
        self._note_after(after)
        if limit is not None and limit > 4:
            self._note(f"limit: {limit:.3g}")
        got = self._list(prefix, after, limit, self._client(client))
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
        for _ in range(len(self.model.records) + 2):
            got = self._list(prefix, after, limit, self.backend)
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

    @rule(client=st.integers(0, 1))
    def cleanup_expired(self, client: int = 0) -> None:
        self.dirty.update(self.last_write)
        least, most = self.model.cleanup_expired()
        self.ever_cleaned.update(self.model.cleaned)
        backend = self._client(client)
        got = self._call("KV-CLEAN-1", "cleanup_expired()", backend.cleanup_expired())
        if not least <= got <= most:
            want = least if least == most else f"{least}..{most}"
            _mismatch("KV-CLEAN-1", "cleanup_expired()", got, want)

    @precondition(lambda self: self.shared)
    @rule()
    def close_and_reopen(self) -> None:
        """KV-CLOSE-2: every client closed, new ones opened; the model does not change."""
        self._note("rule: every client closed and reopened")
        for client in self.clients:
            self._run(client.aclose())
        self._adopt(self._open())
        self.clients.append(self._open().backend)
        self.dirty.update(self.last_write)

    @rule(
        key=st.sampled_from(KEYS),
        data=st.binary(max_size=6),
        steps=st.integers(0, 8),
        client=st.integers(0, 1),
    )
    def cancelled_put(self, key: str, data: bytes, steps: int, client: int) -> None:
        """KV-CANCEL-1: a put cancelled after ``steps`` event-loop steps happened or not."""
        before = self.model.get(key)
        after = apply_put(before, data, None)
        self._run(cancel_after(steps, self._client(client).put(key, data)))
        got = _as_record(self._call("KV-CANCEL-1", f"get({key!r})", self.backend.get(key)))
        if got == after:
            self._note("cancelled put: it had happened")
            self.model.put(key, data, None)
        elif got != before:
            call = f"get({key!r}) after put({key!r}, {data!r}) cancelled after {steps} steps"
            _mismatch("KV-CANCEL-1", call, got, f"{before!r} or {after!r}")
        else:
            self._note("cancelled put: it had not happened")
        self.last_write[key] = "KV-PUT-1"
        self.dirty.add(key)

    @precondition(lambda self: self.expiry)
    @rule(seconds=st.sampled_from(CLOCK_STEPS) | st.sampled_from(FAR_CLOCK_STEPS))
    def advance_clock(self, seconds: float) -> None:
        step = seconds or math.nextafter(self.model.now, math.inf) - self.model.now
        if seconds not in CLOCK_STEPS:
            self._note(f"clock: forward {seconds:g} s")
        self.model.now = self.clock.advance(step)
        self.latest = max(self.latest, self.model.now)
        self.dirty.update(self.last_write)

    @precondition(lambda self: self.expiry and self.model.now > self.model.earliest_safe_time())
    @rule(seconds=st.sampled_from((*CLOCK_STEPS, *FAR_CLOCK_STEPS, math.inf)))
    def move_clock_back(self, seconds: float) -> None:
        """Back, but never so far that an expired record not yet cleaned up would revive
        (``inf``: as far as that allows, which is before what a clean-up just removed)."""
        step = seconds or self.model.now - math.nextafter(self.model.now, -math.inf)
        target = max(self.model.now - step, self.model.earliest_safe_time())
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

    # -- what a run exercised -------------------------------------------------------------------

    def _note_key(self, key: str) -> None:
        if key in KEYS:
            return
        partition, item = key.split(":", 1)
        if len(key) > 64:
            self._note(f"key: {len(key)} bytes")
        else:
            odd = sorted(set(partition + item) - set("abcdefghijklmnopqrstuvwxyz"))
            self._note(*(f"key: holds {char!r}" for char in odd))

    def _note_ttl(self, ttl: float | None) -> None:
        if ttl in FAR_TTLS:
            self._note(f"expires_at: now {ttl:+g} s")

    def _note_after(self, after: str | None) -> None:
        if after is None:
            return
        kinds = {
            "surrogate" if 0xD800 <= ord(char) <= 0xDFFF else "non-ASCII"
            for char in after
            if not char.isascii()
        }
        self._note(*(f"after: holds {kind}" for kind in sorted(kinds)))
        if "\x00" in after:
            self._note("after: holds NUL")
        if after not in KEYS and after not in AFTERS and ":" in after:
            self._note("after: not a key")

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

    @pytest.mark.pmcp_clause(
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
    def test_backend_matches_model(
        self, backend_factory: BackendFactory, record_property: Callable[[str, object], None]
    ) -> None:
        """Stateful; the profile (``--hypothesis-profile``) sets how many sequences to run.

        A backend without ``injectable_clock`` runs the same machine without expiries and
        clock moves: the kit cannot move real time back, nor hit a boundary exactly. What the
        run exercised (input classes and rules, counted) goes to the kit's report.
        """
        expiry = read_capabilities(backend_factory).injectable_clock
        exercised = Counter[str]()
        try:
            # Hypothesis calls its argument for each sequence and documents that any callable
            # returning a machine will do; its annotation asks for the class itself.
            run_state_machine_as_test(
                lambda: BackendStateMachine(  # type: ignore[arg-type]
                    backend_factory, expiry=expiry, exercised=exercised
                )
            )
        finally:
            record_property(PROP_EXERCISED, json.dumps(dict(sorted(exercised.items()))))
