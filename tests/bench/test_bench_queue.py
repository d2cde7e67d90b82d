"""bench.queue at a tiny size (the figures themselves are the benchmark's, never asserted): the book loads
through the real migrations on SQLite (and PostgreSQL when it runs here), every role's and person's queue
and every KPI are measured, the plans are printed, and the generator is deterministic."""

from __future__ import annotations

from datetime import date

from bench import queue as bench_queue
from bench.store import DEFAULT_PG, pg_reachable


def test_generator_is_deterministic_and_realistic():
    today = date(2026, 12, 7)
    a, b = bench_queue.book_rows(1, 401, today), bench_queue.book_rows(1, 401, today)
    assert a == b
    cases = a["denial_cases"]
    kinds = {c[3] for c in cases}
    assert kinds == {"denial", "rejection"} and len(cases) == 400 and len(a["claims"]) == 500  # +1 paid per 4
    amounts = sorted(c[12] for c in cases)
    assert 2500 <= amounts[0] and amounts[len(amounts) // 2] < amounts[-1] // 3  # a long tail
    assert {c[5] for c in cases} >= {"new", "assigned", "won", "written_off"}


def test_a_tiny_run_measures_every_queue_and_kpi():
    pg = None if pg_reachable(DEFAULT_PG) else DEFAULT_PG
    report = bench_queue.run([300], reps=2, pg=pg, log=lambda _m: None)
    assert {r["backend"] for r in report["runs"]} == ({"sqlite", "postgresql"} if pg else {"sqlite"})
    for r in report["runs"]:
        assert r["cases"] == 300 and len(r["queue"]) >= 10
        assert all(0 < q["rows"] <= 50 and q["p95_ms"] >= q["p50_ms"] > 0 for q in r["queue"].values())
        assert set(r["kpis"]) >= {"denial_rate_by_payer", "ar_aging", "top_reasons", "trend_by_month"}
        assert r["plans"] and all(p["plan"] for p in r["plans"])
    lines: list[str] = []
    bench_queue.print_report(report, log=lines.append)
    assert any("work queue (top 50)" in ln for ln in lines)
