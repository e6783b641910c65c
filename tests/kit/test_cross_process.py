"""Sharing across processes (issue 11, point 3): declared and verified apart from sharing in one
process; the kit's second-process client fails a backend that shares only in process."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import pytest

from conformance.cross_process import FactoryReference, reference_of
from pmcp_tasks.backend import BackendCapabilities
from reference_backends.memory import kit_factory

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent.parent  # tests/, where the broken_backends package lives


def test_backend_sharing_only_in_process_fails_kv_shared_2(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(HERE)
    report_path = pytester.path / "report.json"
    result = pytester.runpytest(
        "--backend=broken_backends:in_process_only",
        "-k",
        "TestCrossProcess or TestShared",
        f"--conformance-report={report_path}",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    results = json.loads(report_path.read_text())["clauses"]
    backend = "broken_backends:in_process_only"
    shared_2 = results["KV-SHARED-2"]["results"][backend]
    assert shared_2["status"] == "failed", shared_2
    assert shared_2["failed"] == 3, shared_2  # visibility, expiry and the CAS race
    # Within one process it does share: the old check passes, which is why KV-SHARED-2 exists.
    assert results["KV-SHARED-1"]["results"][backend]["status"] == "passed"
    assert results["KV-LIVE-2"]["results"][backend]["status"] != "failed"
    result.stdout.fnmatch_lines(["*BROKEN KV-SHARED-2: *"])


def test_reference_backends_declare_where_they_share() -> None:
    memory = kit_factory(namespace="n", clock=lambda: 0.0).backend.capabilities
    assert (memory.shared_in_process, memory.shared_across_processes) == (True, False)


def test_old_shared_field_still_declares_sharing_in_process() -> None:
    with pytest.warns(DeprecationWarning, match="old spelling of shared_in_process"):
        old = BackendCapabilities(max_record_bytes=10, shared=True)
    assert old == BackendCapabilities(max_record_bytes=10, shared_in_process=True)
    assert old.shared is True
    assert old.shared_across_processes is False
    across = BackendCapabilities(shared_across_processes=True)
    assert across.shared_in_process is True
    assert dataclasses.asdict(across) == {
        "max_record_bytes": None,
        "shared_in_process": True,
        "shared_across_processes": True,
        "injectable_clock": True,
    }


def _local_factory(*, namespace: str, clock: object) -> None:
    raise NotImplementedError


def test_factory_reference_for_the_second_process() -> None:
    bound = functools.partial(kit_factory, max_record_bytes="64")
    assert reference_of(bound) == FactoryReference(
        "reference_backends.memory:kit_factory", {"max_record_bytes": "64"}
    )

    def closure(*, namespace: str, clock: object) -> None:
        raise NotImplementedError

    assert "is not bound to a name in module" in str(reference_of(closure))
    assert "not strings" in str(reference_of(functools.partial(_local_factory, size=3)))
