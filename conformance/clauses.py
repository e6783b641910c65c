"""The contract's clauses as data, so that every kit failure can name its rule in words.

The ``KV-*`` table mirrors ``docs/contract.md`` word for word (``tests/kit/test_clauses.py``
keeps the two in step); the ``DOM-*`` clauses state the domain rules the kit checks on top of a
backend. ``area`` groups clauses for the end-of-run summary; it is also the name of the module
in :mod:`conformance.contract` that holds most of the clause's tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clause:
    """One rule a backend (or, for ``DOM-*`` clauses, the domain on top of it) must keep."""

    id: str
    area: str
    rule: str


CONTRACT_CLAUSES: tuple[Clause, ...] = (
    # Keys and arguments
    Clause(
        "KV-KEY-1",
        "keys",
        (
            "A key is `partition:item`; both parts are non-empty and made only of "
            "`[A-Za-z0-9_.~%-]` (the output alphabet of percent-encoding, so a key holds exactly "
            "one `:`). Anything else raises `ValueError` from every method that takes a key."
        ),
    ),
    Clause(
        "KV-KEY-2",
        "keys",
        ("A key is at most 1024 bytes; a longer one raises `ValueError`."),
    ),
    Clause(
        "KV-KEY-3",
        "keys",
        (
            "Backends do not interpret keys beyond splitting at the `:` (no globbing, no hash-tag"
            " parsing of user text): keys that differ only in characters such as `%`, `~`, `.`, "
            "`-` are distinct records."
        ),
    ),
    Clause(
        "KV-ARG-1",
        "keys",
        (
            "`data` must be `bytes`; anything else (str, bytearray, None) raises `ValueError` and"
            " writes nothing."
        ),
    ),
    Clause(
        "KV-ARG-2",
        "keys",
        ("`expected_version` must be an `int` (not `bool`) in `0 .. 2**63-1`, else `ValueError`."),
    ),
    Clause(
        "KV-ARG-3",
        "keys",
        (
            "`expires_at` is `None` or a finite `int`/`float` (not `bool`, NaN or infinity), else"
            " `ValueError`. A time in the past is allowed: the record is written and is not live."
        ),
    ),
    Clause(
        "KV-ARG-4",
        "keys",
        (
            "`after` is `None` or a `str`; `limit` is `None` or an `int >= 1`; anything else "
            "raises `ValueError`."
        ),
    ),
    # Liveness
    Clause(
        "KV-LIVE-1",
        "expiry",
        (
            "A record is live iff `expires_at is None or clock() < expires_at`: at `clock() == "
            "expires_at` it is already gone."
        ),
    ),
    Clause(
        "KV-LIVE-2",
        "expiry",
        (
            "A record that is not live is absent for every method: `get` returns `None`, "
            "`list_by_prefix` omits it, `put` treats the key as absent (returns 1), "
            "`put_if_version` treats it as missing, `delete` returns `False`."
        ),
    ),
    Clause(
        "KV-LIVE-3",
        "expiry",
        (
            "Expiry decisions use the backend's injected clock and no other clock, read afresh "
            "for each call: not the real time, nor the latest time the clock has shown (the kit's "
            "clock may move back); a server's own expiry may reclaim memory later, never earlier "
            "than the injected clock says."
        ),
    ),
    Clause(
        "KV-LIVE-4",
        "expiry",
        ("Every write sets `expires_at` to the value it was given (`None` clears an expiry)."),
    ),
    # Writes
    Clause(
        "KV-PUT-1",
        "get_put",
        (
            "`put` is an unconditional upsert: returns 1 when the key was absent, else the "
            "previous version + 1, and `get` then returns exactly the data, version and expiry "
            "written."
        ),
    ),
    Clause(
        "KV-PUT-2",
        "get_put",
        (
            "`put` is atomic: concurrent puts on one key never hand out the same version twice, "
            "and the versions they return are exactly `n+1 .. n+k`."
        ),
    ),
    Clause(
        "KV-CAS-1",
        "cas",
        (
            "`put_if_version(key, data, 0)` creates: version 1 when the key is absent, else "
            "`VersionConflict(expected=0, actual=<current version>)` and nothing written."
        ),
    ),
    Clause(
        "KV-CAS-2",
        "cas",
        (
            "`put_if_version` with `expected_version >= 1` on an absent key raises "
            "`RecordNotFound(key)`, not `VersionConflict`."
        ),
    ),
    Clause(
        "KV-CAS-3",
        "cas",
        (
            "A version mismatch raises `VersionConflict(key, expected, actual)` where `actual` is"
            " the real current version, and writes nothing."
        ),
    ),
    Clause(
        "KV-CAS-4",
        "cas",
        ("A matching version writes and returns `expected + 1`."),
    ),
    Clause(
        "KV-CAS-5",
        "cas",
        (
            "`put_if_version` is linearizable per key: among concurrent CAS calls with the same "
            "expected version exactly one wins, and the history of gets, puts, CAS and deletes "
            "can be ordered consistently with real time."
        ),
    ),
    Clause(
        "KV-CAS-6",
        "cas",
        (
            "A request the backend retries internally (lost reply, reconnect) never turns its own"
            " success into a `VersionConflict`: it checks whether the stored version and data are"
            " its own write before reporting a conflict."
        ),
    ),
    Clause(
        "KV-DEL-1",
        "delete",
        (
            "`delete` returns `True` iff a live record was removed; deleting again (or an absent "
            "or expired key) returns `False`."
        ),
    ),
    # Listing
    Clause(
        "KV-LIST-1",
        "listing",
        (
            "`prefix` must contain `:` (it names a whole partition; the partition part must be a "
            "valid partition and the item part, possibly empty, only key characters), else "
            "`ValueError`: `list_by_prefix('p:*')` is an error, not a glob."
        ),
    ),
    Clause(
        "KV-LIST-2",
        "listing",
        (
            "The result holds exactly the live records whose key starts with `prefix` (`a:` never"
            " returns `ab:` keys; `a:x` never returns `a:y`)."
        ),
    ),
    Clause(
        "KV-LIST-3",
        "listing",
        ("Ascending by key, in code-point order (= UTF-8 byte order; the key alphabet is ASCII)."),
    ),
    Clause(
        "KV-LIST-4",
        "listing",
        (
            "`after` is exclusive: only keys `> after` are returned. `after` need not be a stored"
            " key."
        ),
    ),
    Clause(
        "KV-LIST-5",
        "listing",
        (
            "At most `limit` items, and fewer only when no more match: a short page means the "
            "listing is complete, so paging with `after = last key` visits exactly the records of"
            " one full listing. While other clients write, paging still visits every record that "
            "stays live and unchanged throughout exactly once, in order, and lists no record with"
            " data it never held."
        ),
    ),
    Clause(
        "KV-LIST-6",
        "listing",
        ("One page costs a bounded number of round trips, never one per record."),
    ),
    # Expiry clean-up, sizes, versions
    Clause(
        "KV-CLEAN-1",
        "expiry",
        (
            "`cleanup_expired` physically removes the records that are not live at the time of "
            "the call (and any index entries pointing at them) and returns how many it removed; "
            "live records are untouched."
        ),
    ),
    Clause(
        "KV-CLEAN-2",
        "expiry",
        (
            "A record removed by `cleanup_expired` never comes back, even when the clock is later"
            " moved back before its expiry."
        ),
    ),
    Clause(
        "KV-SIZE-1",
        "sizes",
        (
            "`data` longer than `capabilities.max_record_bytes` raises `CapacityExceeded` and "
            "writes nothing (no truncation, no partial record)."
        ),
    ),
    Clause(
        "KV-SIZE-2",
        "sizes",
        ("`data` of exactly `max_record_bytes` bytes is accepted and round-trips."),
    ),
    Clause(
        "KV-DATA-1",
        "data",
        (
            '`data` round-trips byte-exact: empty, `b"\\x00"`, non-UTF-8, every byte value, and 1 '
            "MiB where the size limit allows it."
        ),
    ),
    Clause(
        "KV-VER-1",
        "data",
        (
            "Versions are Python `int`s, exact up to `2**63-1` (no floats anywhere: 2**53+1 stays"
            " 2**53+1). A write that would go past `2**63-1` raises `CapacityExceeded`."
        ),
    ),
    # Clients, namespaces, errors
    Clause(
        "KV-ISO-1",
        "isolation",
        (
            "Two backends opened on different namespaces never see each other's records, through "
            "any method (including `cleanup_expired` counts)."
        ),
    ),
    Clause(
        "KV-SHARED-1",
        "shared",
        (
            "When `capabilities.shared_in_process` is true, a second instance in the same process"
            " on the same namespace sees the same data, and CAS between the two instances is"
            " linearizable."
        ),
    ),
    Clause(
        "KV-SHARED-2",
        "cross_process",
        (
            "When `capabilities.shared_across_processes` is true (it implies"
            " `shared_in_process`), the same holds for an instance in another process opened by"
            " the same factory with the same options and namespace: it sees the same records"
            " and expiries, and no acknowledged CAS between the processes is lost."
        ),
    ),
    Clause(
        "KV-CAP-1",
        "capabilities",
        (
            "Declared capabilities are true: `max_record_bytes` is enforced exactly, the sharing "
            "declared holds, and with `injectable_clock` expiry follows the injected clock."
        ),
    ),
    Clause(
        "KV-CONC-1",
        "capabilities",
        ("A backend is safe to use from many asyncio tasks at once."),
    ),
    Clause(
        "KV-ERR-1",
        "capabilities",
        (
            "Only `StorageError` subclasses and `ValueError` escape a backend; a `BackendError` "
            "carries the underlying exception as `__cause__`."
        ),
    ),
    Clause(
        "KV-DAMAGE-1",
        "damage",
        (
            "A stored record the backend cannot decode (one it could not have written: a version "
            "that is not an integer in `1 .. 2**63-1`, an expiry that is not a finite number, no "
            "data, a value of the wrong type, an index entry that names no valid key) never hides"
            " the others. `get` of its key raises `BackendError` (not `BackendUnavailable`) whose"
            " message names the key; `list_by_prefix` leaves it out, logs a warning naming it on "
            "the `pmcp_tasks` logger (or a child of it) and returns the other records, pages "
            "still full (KV-LIST-5); `put` replaces it (returning a version >= 1, which `get` "
            "then shows with the data written) and `delete` removes it; `put_if_version` either "
            "treats it as absent (expected 0 replaces it and returns 1, expected >= 1 raises "
            "`RecordNotFound`), or, when the damage spares the version, compares with that "
            "version as on a healthy record, or raises `BackendError` naming the key and writes "
            "nothing; it never reports a version it could not read."
        ),
    ),
    Clause(
        "KV-CLOSE-1",
        "capabilities",
        (
            "`aclose` releases what the client holds (connections, file descriptors, background "
            "tasks) and may be called more than once."
        ),
    ),
    Clause(
        "KV-CLOSE-2",
        "lifecycle",
        (
            "When `capabilities.shared_in_process` is true, a client opened on a namespace after "
            "every client of it has closed sees every write acknowledged before."
        ),
    ),
    Clause(
        "KV-CANCEL-1",
        "lifecycle",
        (
            "A call cancelled at any of its await points leaves every record whole and the "
            "backend usable: once `CancelledError` reaches the caller, the call has taken effect "
            "entirely or not at all and never takes effect later, and the calls that follow get "
            "their own answers (no lock, connection or reply left behind)."
        ),
    ),
)

DOMAIN_CLAUSES: tuple[Clause, ...] = (
    Clause(
        "DOM-LIFE-1",
        "domain",
        "Task statuses follow MCP 2025-11-25: `working` -> `input_required|completed|failed|"
        "cancelled`, `input_required` -> `working|completed|failed|cancelled`; terminal states "
        "are final and self-transitions are rejected with `InvalidTransition`.",
    ),
    Clause(
        "DOM-OWNER-1",
        "domain",
        "Another owner's task answers exactly like a missing one (`TaskNotFound`, same message), "
        "for reads and writes; owners such as `a` and `a:b` never see each other's tasks.",
    ),
    Clause(
        "DOM-VAR-1",
        "domain",
        "`set_variables` merges into the stored map, a `None` value deletes that name, and "
        "concurrent `set_variables` calls lose no update.",
    ),
    Clause(
        "DOM-TTL-1",
        "domain",
        "A task lives for its TTL on the store's clock and is then not found by any method; a "
        "TTL over `max_ttl` raises `TtlTooLarge` (never clamped).",
    ),
    Clause(
        "DOM-PAGE-1",
        "domain",
        "Listing is oldest-first (by creation millisecond); paging with the returned cursor "
        "lists every task created before the first page that is still live exactly once and "
        "no task twice, also while tasks are being created (those may or may not appear); a "
        "cursor of another owner's listing, or not a cursor, raises `InvalidCursor`.",
    ),
    Clause(
        "DOM-CAP-1",
        "domain",
        "An owner never holds more than `max_tasks_per_owner` live tasks, even under concurrent "
        "creates (`TaskLimitExceeded`); other owners are not affected.",
    ),
    Clause(
        "DOM-INPUT-1",
        "domain",
        "`request_input` stores each request under a key never used before by that task and "
        "makes it `input_required`; `answer_input` delivers only outstanding keys (others are "
        "ignored), a partial answer keeps the rest outstanding, the last one makes the task "
        "`working`, and concurrent answers lose none.",
    ),
    Clause(
        "DOM-INPUT-2",
        "domain",
        "Input requests must be objects with a str `method`, responses objects; anything else, "
        "or more than `max_input_bytes`, raises `TaskValidationError` and writes nothing.",
    ),
    Clause(
        "DOM-ERROR-1",
        "domain",
        "`fail(..., error=...)` stores the JSON-RPC error (`code`, `message`, `data`) as given; "
        "a malformed error raises `TaskValidationError`; a final task asks for no input.",
    ),
    Clause(
        "DOM-CANCEL-1",
        "domain",
        "`request_cancel` cancels an unfinished task and leaves a final one unchanged (no "
        "error, no write); `cancel` of a final task still raises `InvalidTransition`.",
    ),
    Clause(
        "DOM-LEASE-1",
        "domain",
        "A task whose worker's lease ran out without renewal is ended `failed` with an error "
        "naming the lost worker by the next `get_checking_lease`; renewals keep it alive and do "
        "not change `lastUpdatedAt`.",
    ),
    Clause(
        "DOM-WIRE-1",
        "domain",
        "`to_task()` spells `ttlMs`/`pollIntervalMs` (2026-07-28) while `to_wire()` keeps "
        "`ttl`/`pollInterval` (2025-11-25); `to_detailed_task()` inlines `inputRequests`, "
        "`result` or `error` by status.",
    ),
)
"""Rules of ``GenericTaskStore`` (docs/domain.md) that the kit checks on top of the
backend under test: a backend can keep every KV clause and still break these through
behaviour the domain relies on (CAS under contention, listing order, expiry)."""

CLAUSES: dict[str, Clause] = {clause.id: clause for clause in CONTRACT_CLAUSES + DOMAIN_CLAUSES}

TIERS: tuple[tuple[str, ...], ...] = (
    ("KV-LIVE-1", "KV-LIVE-2", "KV-LIVE-3"),
    (
        "KV-LIVE-4",
        "KV-PUT-1",
        "KV-DATA-1",
        "KV-VER-1",
        "KV-SIZE-1",
        "KV-SIZE-2",
        "KV-KEY-1",
        "KV-KEY-2",
        "KV-KEY-3",
        "KV-ARG-1",
        "KV-ARG-2",
        "KV-ARG-3",
        "KV-ARG-4",
        "KV-ERR-1",
        "KV-CAP-1",
    ),
    ("KV-CAS-1", "KV-CAS-2", "KV-CAS-3", "KV-CAS-4", "KV-DEL-1", "KV-PUT-2"),
    ("KV-LIST-1", "KV-LIST-2", "KV-LIST-3", "KV-LIST-4", "KV-LIST-5", "KV-LIST-6"),
    ("KV-CAS-5", "KV-CAS-6", "KV-CLEAN-1", "KV-CLEAN-2"),
    (
        "KV-ISO-1",
        "KV-SHARED-1",
        "KV-SHARED-2",
        "KV-CONC-1",
        "KV-CLOSE-1",
        "KV-CLOSE-2",
        "KV-CANCEL-1",
        "KV-DAMAGE-1",
    ),
    tuple(clause.id for clause in DOMAIN_CLAUSES),
)
"""The clauses from the most basic up: liveness, then get and put (with the arguments and
keys they take), then CAS and delete, listing, races and clean-up, then sharing, the client's
lifecycle and damage, and last the domain. Every test of a tier reads and writes through the
tiers below it, so a defect below shows up above too: a failure is charged to its own clause
only when no clause of a lower tier failed in the same run, and is otherwise reported as a
consequence of the lowest ones that did (``conformance.report``)."""

_TIER = {clause_id: index for index, tier in enumerate(TIERS) for clause_id in tier}


def root_causes(clause_id: str, failed: set[str]) -> tuple[str, ...]:
    """The clauses of ``failed`` that ``clause_id``'s failure probably follows from: those of
    the lowest tier below its own, in table order; none when it is a root itself."""
    own = _TIER.get(clause_id, len(TIERS))
    below = [c for c in failed if _TIER.get(c, len(TIERS)) < own]
    if not below:
        return ()
    lowest = min(_TIER[c] for c in below)
    return tuple(c for c in CLAUSES if c in below and _TIER[c] == lowest)


def describe(clause_id: str) -> str:
    """``"KV-CAS-3: <rule>"``, or the bare ID when a test cites a clause the table lacks."""
    clause = CLAUSES.get(clause_id)
    return clause_id if clause is None else f"{clause.id}: {clause.rule}"
