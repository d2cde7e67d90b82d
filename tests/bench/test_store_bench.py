"""bench.store: a tiny real run (SQLite, and PostgreSQL when reachable) must produce every figure of the
report, record what the bulk load's history says (unchanged re-reads stay unchanged), leave nothing behind
in the shared PostgreSQL database, and show no full scan of a large table in any hot statement's plan."""

from __future__ import annotations

import os
import re

import pytest
from sqlalchemy import text

from bench.store import DEFAULT_PG, full_scans, pg_reachable, run
from store.db import make_engine

PG = os.environ.get("PORTAL_AGENT_BENCH_PG", DEFAULT_PG)
SCAN = re.compile(r"^\s*(SCAN (claims|status_observations)\b|.*Seq Scan on (claims|status_observations)\b)")


def test_full_scan_detector():
    assert full_scans("sqlite", ["SCAN claims", "USE TEMP B-TREE FOR ORDER BY"]) == ["SCAN claims"]
    assert full_scans("sqlite", ["SCAN status_observations USING INDEX ix_observations_claim"]) != []
    assert full_scans("sqlite", ["SEARCH claims USING INDEX ix_claims_next_check (next_check_at>? AND "
                                 "next_check_at<?)", "SCAN payers"]) == []
    assert full_scans("postgresql", ["Limit", "  ->  Seq Scan on claims  (cost=0.00..1.00 rows=1 width=8)",
                                     "        Filter: (next_check_at <= now())"]) != []
    assert full_scans("postgresql", [
        "Limit", "  ->  Index Scan Backward using status_observations_pkey on status_observations  (cost=1)",
        "        Filter: (claim_id = 5)"]) != []
    assert full_scans("postgresql", [
        "Index Scan using ix_observations_claim on status_observations  (cost=0.29..10.08 rows=2 width=73)",
        "  Index Cond: (claim_id = '5'::bigint)", "Seq Scan on payers  (cost=0.00..1.60 rows=60 width=188)"]) == []


@pytest.mark.slow
def test_tiny_store_bench():
    pg = None if pg_reachable(PG) else PG
    results = 200
    report = run([1000, 5000], results, pg, batch=20, due_limit=100, rounds=4, log=lambda _m: None)
    backends = {"sqlite", "postgresql"} if pg else {"sqlite"}
    assert {(r["backend"], r["claims"]) for r in report["runs"]} == {(b, n) for b in backends for n in (1000, 5000)}
    for r in report["runs"]:
        rows = r["rows"]
        assert rows["claims"] == r["claims"] and rows["claim_lines"] >= r["claims"]
        assert r["claims"] <= rows["status_observations"] <= 3 * r["claims"]
        assert rows["denials"] > 0.1 * r["claims"] and rows["outbox_events"] > 0
        due = r["due"]
        assert 0 < due["due_returned"] == min(100, due["due_total"]) and due["due_query_ms"] > 0 and due["plan_ms"] > 0
        for mode, batch in (("one_per_txn", 1), ("batched", 20)):
            m = r[mode]
            assert m["results"] == results and m["batch"] == batch
            assert m["per_result_ms"] > 0 and m["median_ms"] > 0 and m["cpu_per_result_ms"] > 0
        # re-reads of what the loaded history says are recognized as unchanged: the loader wrote the
        # fingerprints record_result computes, so exactly the simulated changes count as changes
        mix = r["mix"]
        assert sum(mix.values()) == 2 * results
        assert mix["unchanged"] > results and mix["denied"] > 0 and mix["rejected"] > 0 and mix["paid"] > 0
        assert mix["appeal_paid"] > 0  # denials under appeal are rechecked, and some resolve
        assert r["one_per_txn"]["changed"] + r["batched"]["changed"] == 2 * results - mix["unchanged"]
        # each distinct statement once, under the step that sent it first (batching sends the same ones)
        phases = {p["phase"] for p in r["plans"]}
        assert {"claims_due", "plan", "record_result"} <= phases
        assert sum(p["phase"] == "record_result" for p in r["plans"]) >= 8  # reads, inserts, updates, delete
        due_plans = [ln for p in r["plans"] if p["phase"] == "claims_due" for ln in p["plan"]]
        assert any("ix_claims_next_check" in ln for ln in due_plans), due_plans
        # claims and observations are never scanned whole (at these tiny sizes PostgreSQL may rightly read a
        # few-page table such as denials sequentially; the full-size run's checks flag any large-table scan)
        for p in r["plans"]:
            assert not [ln for ln in p["plan"] if SCAN.match(ln)], (p["sql"], p["plan"])
            assert not [ln for ln in p["full_scans"] if re.search(r"\b(claims|status_observations)\b", ln)]
    assert set(report["checks"]["scaling"]) == {f"{b}.{m}" for b in backends
                                                for m in ("one_per_txn", "batched", "claims_due")}
    if pg:  # the shared database keeps nothing of the run
        e = make_engine(PG)
        with e.connect() as c:
            left = c.execute(text("SELECT count(*) FROM information_schema.schemata "
                                  "WHERE schema_name LIKE :p"), {"p": f"bench_store_{os.getpid()}_%"}).scalar()
        e.dispose()
        assert left == 0
