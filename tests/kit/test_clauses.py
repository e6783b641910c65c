"""The clause table in conformance/clauses.py says exactly what docs/contract.md says."""

from __future__ import annotations

import re
from pathlib import Path

from conformance.clauses import CLAUSES, TIERS, root_causes
from conformance.contract import BackendContract

CONTRACT_MD = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
ROW = re.compile(r"^\| (KV-[A-Z]+-\d+) \| (.*) \|$", re.MULTILINE)


def test_clause_table_mirrors_the_contract_document() -> None:
    documented = dict(ROW.findall(CONTRACT_MD.read_text(encoding="utf-8")))
    kit = {clause.id: clause.rule for clause in CLAUSES.values() if clause.id.startswith("KV-")}
    assert list(kit) == list(documented), "clause IDs or their order differ"
    for clause_id, rule in documented.items():
        assert kit[clause_id] == rule, clause_id


def test_every_cited_clause_exists_and_every_test_cites_one() -> None:
    uncited = []
    for name in dir(BackendContract):
        if not name.startswith("test_"):
            continue
        marks = getattr(getattr(BackendContract, name), "pytestmark", [])
        cited = [arg for mark in marks if mark.name == "pmcp_clause" for arg in mark.args]
        if not cited:
            uncited.append(name)
        assert set(cited) <= set(CLAUSES), (name, cited)
    assert not uncited, f"kit tests without a clause marker: {uncited}"


def test_every_clause_has_exactly_one_tier() -> None:
    tiered = [clause_id for tier in TIERS for clause_id in tier]
    assert sorted(tiered) == sorted(CLAUSES), set(tiered) ^ set(CLAUSES)
    assert len(tiered) == len(set(tiered))


def test_a_failure_follows_from_the_lowest_failed_tier_below_it() -> None:
    failed = {"KV-LIVE-1", "KV-CAS-3", "KV-SHARED-1", "KV-LIST-5"}
    assert root_causes("KV-LIVE-1", failed) == ()
    assert root_causes("KV-SHARED-1", failed) == ("KV-LIVE-1",)
    assert root_causes("KV-LIST-5", {"KV-CAS-3", "KV-DEL-1", "KV-LIST-5"}) == (
        "KV-CAS-3",
        "KV-DEL-1",
    )
    assert root_causes("KV-PUT-1", {"KV-PUT-1", "KV-DATA-1"}) == ()
