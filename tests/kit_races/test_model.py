"""The model's own choices where the contract leaves room (see conformance/model.py)."""

from __future__ import annotations

from conformance.model import NOT_FOUND, Conflict, KVModel, Record


def test_liveness_boundary_and_versions_restart_after_expiry() -> None:
    model = KVModel(now=100.0)
    assert model.put("p:a", b"x", 101.0) == 1
    assert model.put("p:a", b"y", 101.0) == 2
    model.now = 101.0  # clock() == expires_at: already gone (KV-LIVE-1)
    assert model.get("p:a") is None
    assert model.put_if_version("p:a", b"z", 2, None) is NOT_FOUND
    assert model.put("p:a", b"z", None) == 1


def test_cas_outcomes() -> None:
    model = KVModel(now=0.0)
    assert model.put_if_version("p:a", b"a", 0, None) == 1
    assert model.put_if_version("p:a", b"b", 0, None) == Conflict(1)
    assert model.put_if_version("p:a", b"b", 3, None) == Conflict(1)
    assert model.put_if_version("p:a", b"b", 1, 5.0) == 2
    assert model.get("p:a") == Record(b"b", 2, 5.0)


def test_listing_is_bounded_by_prefix_after_and_limit() -> None:
    model = KVModel(now=0.0)
    for key in ("p:b", "p:a", "pq:a", "p:c"):
        model.put(key, b"", None)
    model.put("p:a.x", b"", -1.0)  # written already expired
    assert [key for key, _ in model.list_by_prefix("p:")] == ["p:a", "p:b", "p:c"]
    assert [key for key, _ in model.list_by_prefix("p:", after="p:a", limit=1)] == ["p:b"]


def test_deleting_an_expired_record_may_or_may_not_remove_it() -> None:
    model = KVModel(now=10.0)
    model.put("p:a", b"", 5.0)
    model.put("p:b", b"", 8.0)
    assert model.delete("p:a") is False
    assert model.cleanup_expired() == (1, 2)  # p:b for sure, p:a if delete left it
    assert model.cleanup_expired() == (0, 0)


def test_clock_may_go_back_only_as_far_as_no_expired_record_revives() -> None:
    model = KVModel(now=10.0)
    model.put("p:a", b"", 12.0)
    model.now = 20.0
    assert model.earliest_safe_time() == 12.0  # p:a expired but still stored
    model.cleanup_expired()
    assert model.earliest_safe_time() == 10.0  # cleaned up: back to the start is fine
    assert "p:a" in model.cleaned
