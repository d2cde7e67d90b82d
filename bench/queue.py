"""Work-queue and KPI benchmark (issue 32): a real organization's denial book at 10k and 1M denial cases.

    .venv/bin/python -m bench.queue [--sizes 10000,1000000] [--reps 20] [--pg URL | --no-pg] [--json FILE]

For each size and backend (SQLite in a temp dir; PostgreSQL when reachable, in a schema of its own that is
dropped afterwards) it:
  1. builds the schema with the real migrations and bulk-loads one organization's denial book (`book_rows`:
     payers with a realistic volume mix, a billing team, a claim and service line per case plus paid claims
     for the rates, denial cases with the sandbox's CARC mix and RARC-free reasons, dollar amounts from a
     long-tailed distribution, states by age (older cases mostly decided), deadlines from payer windows,
     priorities from store/workflow/priority.py, the reason rows and appeals); the generator is the one the
     API issue reuses;
  2. times the top-50 work-queue query (store/queue.work_queue) for every role and for sampled people,
     `--reps` times each: p50 and p95;
  3. times each KPI of store/kpis.report (the median of 3 runs);
  4. prints the query plans of the queue and KPI statements (full scans of a large table flagged).
Ends with the targets of the issue on PostgreSQL at the largest size (queue p95 < 100 ms, each KPI < 2 s)
and the ratio of each figure at the largest size to the smallest. Synthetic data: no member data printed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import event

from bench.store import DEFAULT_PG, Capture, PostgresBackend, SqliteBackend, explain_all, pg_reachable
from store import kpis, queue
from store.db import migrate, session_factory
from store.workflow.categorize import default_categorizer
from store.workflow.priority import days_left, priority
from store.workflow.routing import DEFAULT_OWNER_ROLES

PAYERS = (("BMH", 25), ("NSH", 18), ("KMI", 14), ("CBP", 12), ("FMA", 10), ("AET", 9), ("CIG", 7), ("HUM", 5))
# (group, CARC, weight): the sandbox's denial mix
REASONS = (("CO", "16", 14), ("OA", "18", 8), ("OA", "22", 6), ("CO", "27", 8), ("CO", "29", 5), ("CO", "50", 9),
           ("CO", "96", 8), ("CO", "97", 10), ("CO", "167", 6), ("CO", "197", 10), ("CO", "B7", 5), ("CO", "4", 4),
           ("CO", "11", 4), ("CO", "109", 3))
REJECTIONS = (("33", 5), ("562", 3), ("21", 3), ("187", 2), ("255", 2))
CPTS = ("99213", "99214", "99203", "73721", "20610", "71046", "90834", "90837", "36415", "93000")
TEAM = {"front_desk": 4, "scheduler": 2, "coder": 5, "biller": 6, "clinician": 2, "credentialing": 1,
        "supervisor": 1, "manager": 1}
BIG = ("denial_cases", "claims", "claim_lines", "denials", "appeals")
TARGET_QUEUE_P95_MS = 100.0
TARGET_KPI_S = 2.0

COLS = {
    "organizations": ("id", "name", "external_id", "created_at", "time_zone", "routing", "routing_strategy",
                      "cases_per_line"),
    "payers": ("id", "org_id", "key", "name", "portal_key", "appeal_window_days", "timely_filing_days",
               "receipt_presumption_days", "rolls_to_business_day", "typical_days_to_pay"),
    "people": ("id", "org_id", "name", "roles", "active", "created_at"),
    "claims": ("id", "org_id", "payer_id", "external_id", "member_id", "billing_npi", "dos_from", "dos_to",
               "billed_cents", "submitted_on", "status_category", "finalized", "appeal_open"),
    "claim_lines": ("id", "claim_id", "line_no", "cpt", "modifiers", "units", "billed_cents"),
    "denial_cases": ("id", "org_id", "claim_id", "kind", "line_key", "state", "bucket", "hard", "clinical",
                     "preventable", "category_source", "reasons", "amount_cents", "time_zone", "detected_at",
                     "detected_on", "denial_date", "escalations", "appeal_deadline", "timely_filing_deadline",
                     "priority", "owner_role", "owner_person_id", "last_seen_at", "resolved_at", "resolution"),
    "denials": ("id", "org_id", "claim_id", "line_key", "kind", "group_code", "reason_code", "rarcs", "amount_cents",
                "first_seen_at", "last_seen_at", "open", "case_id"),
    "appeals": ("id", "org_id", "case_id", "level", "channel", "filed_on", "follow_up_on", "outcome", "decided_on",
                "recovered_cents", "filed_by"),
}
NPIS = ("1234567893", "1588667638", "1942217733", "1376543214")


def _pick(rng: random.Random, table) -> tuple:
    return rng.choices(table, weights=[t[-1] for t in table])[0]


def team() -> list[tuple[int, str, list[str]]]:
    out, pid = [], 0
    for role, n in TEAM.items():
        for k in range(n):
            pid += 1
            out.append((pid, f"{role.replace('_', ' ').title()} {k + 1}", [role]))
    return out


def book_rows(lo: int, hi: int, today: date, seed: int = 7) -> dict[str, list[tuple]]:
    """Cases lo..hi-1 of the book (one claim and line each; every fourth case also brings a paid claim), as
    rows of COLS (Python values). Deterministic for (lo, seed)."""
    rng = random.Random(seed * 1_000_003 + lo)
    cat = default_categorizer()
    people = team()
    by_role: dict[str, list[int]] = {}
    for pid, _, roles in people:
        by_role.setdefault(roles[0], []).append(pid)
    rows: dict[str, list[tuple]] = {t: [] for t in ("claims", "claim_lines", "denial_cases", "denials", "appeals")}
    for i in range(lo, hi):
        payer_id = PAYERS.index(_pick(rng, PAYERS)) + 1
        dos = today - timedelta(days=rng.randint(20, 420))
        submitted = dos + timedelta(days=rng.randint(1, 10))
        amount = min(2_000_000, max(2500, int(rng.lognormvariate(10.4, 0.9))))  # ~$330 median, long tail
        cpt = rng.choice(CPTS)
        claim_id = 2 * i - 1
        rows["claims"].append((claim_id, 1, payer_id, f"B{i:08d}", f"M{i:08d}", rng.choice(NPIS), dos, dos, amount,
                               submitted, "F2", True, False))
        rows["claim_lines"].append((claim_id, claim_id, 1, cpt, "[]", 1, amount))
        if i % 4 == 0:  # a paid claim beside it, for the rates
            rows["claims"].append((claim_id + 1, 1, payer_id, f"P{i:08d}", f"N{i:08d}", rng.choice(NPIS), dos, dos,
                                   amount, submitted, "F1", True, False))
            rows["claim_lines"].append((claim_id + 1, claim_id + 1, 1, cpt, "[]", 1, amount))
        detected = min(today, submitted + timedelta(days=rng.randint(14, 45)))
        at = datetime(detected.year, detected.month, detected.day, 15, tzinfo=UTC)
        if rng.random() < 0.05:
            code = _pick(rng, REJECTIONS)[0]
            kind, group, category = "rejection", "", cat.rejection(code)
        else:
            group, code, _ = _pick(rng, REASONS)
            kind, category = "denial", cat.categorize(group, code)
        age = (today - detected).days
        r = rng.random()
        if age > 120 and r < 0.7:
            state = rng.choices(("won", "partially_won", "lost", "written_off"), weights=(25, 10, 15, 20))[0]
        else:
            state = rng.choices(("new", "assigned", "in_progress", "corrected_resubmitted", "appealed"),
                                weights=(30, 40, 20, 5, 5))[0]
        if kind == "rejection" and state in ("appealed", "lost"):
            state = "in_progress"
        resolved = state in ("won", "partially_won", "written_off")
        appeal_deadline = detected + timedelta(days=rng.choice((60, 90, 180, 365))) if kind == "denial" else None
        tf_deadline = dos + timedelta(days=rng.choice((90, 95, 180, 365)))
        role = DEFAULT_OWNER_ROLES[category.bucket].value
        person = None if state == "new" else rng.choice(by_role[role])
        prio = priority(amount, category.bucket.value, days_left(today, (appeal_deadline, tf_deadline)))
        reasons = json.dumps([{"line": 1, "group": group, "code": code, "rarcs": [], "amount_cents": amount}])
        rows["denial_cases"].append((
            i, 1, claim_id, kind, 0, state, category.bucket.value, category.hard, category.clinical,
            category.preventable, category.source, reasons, amount, "America/Chicago", at, detected, detected, "[]",
            appeal_deadline, tf_deadline, prio, role, person, at, at + timedelta(days=30) if resolved else None,
            state if resolved else None))
        rows["denials"].append((i, 1, claim_id, 1, kind, group, code, "[]", amount, at, at, not resolved, i))
        if state in ("appealed", "won", "partially_won", "lost"):
            outcome = None if state == "appealed" else state
            rows["appeals"].append((
                i, 1, i, 1, rng.choice(("portal", "fax", "mail")), detected + timedelta(days=10),
                detected + timedelta(days=40), outcome, detected + timedelta(days=60) if outcome else None,
                {"won": amount, "partially_won": amount // 2, "lost": 0}.get(outcome), "bench"))
    return rows


def _sql_value(v):
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, list | dict):
        return json.dumps(v)
    return v


def load(b, n: int, today: date, chunk: int = 20000, log=print) -> float:
    """The book into backend `b` (parents first, then in chunks); returns seconds."""
    t0 = time.perf_counter()
    raw = b.engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        now = datetime(today.year, today.month, today.day, tzinfo=UTC)
        fixed = {
            "organizations": [(1, "Bench Health", "BENCH", now, "America/Chicago", "{}", "least_open", False)],
            "payers": [(k + 1, 1, key, key, "commercial", 180, 365, 0, False, 30) for k, (key, _) in enumerate(PAYERS)],
            "people": [(pid, 1, name, json.dumps(roles), True, now) for pid, name, roles in team()],
        }
        for table, rows in fixed.items():
            b.copy(dbapi, table, COLS[table], [tuple(map(_sql_value, r)) if b.name == "sqlite" else r for r in rows])
        dbapi.commit()
        for lo in range(1, n + 1, chunk):
            rows = book_rows(lo, min(n + 1, lo + chunk), today)
            for table in ("claims", "claim_lines", "denial_cases", "denials", "appeals"):
                data = rows[table] if b.name != "sqlite" else [tuple(map(_sql_value, r)) for r in rows[table]]
                if data:
                    b.copy(dbapi, table, COLS[table], data)
            dbapi.commit()
            if lo > 1 and (lo - 1) % (chunk * 10) == 0:
                log(f"  ... {lo - 1:,} of {n:,} cases loaded ({b.name})")
        if b.name == "sqlite":
            dbapi.execute("ANALYZE")
            dbapi.commit()
        else:
            old = dbapi.autocommit
            dbapi.autocommit = True
            with dbapi.cursor() as cur:
                cur.execute("ANALYZE")
            dbapi.autocommit = old
    finally:
        raw.close()
    return time.perf_counter() - t0


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))], 3)


def measure(b, today: date, reps: int, cap: Capture) -> dict:
    Session = session_factory(b.engine)
    out: dict = {"queue": {}, "kpis": {}}
    roles = sorted({r.value for r in DEFAULT_OWNER_ROLES.values()})
    people = [pid for pid, _, roles_ in team() if roles_[0] in roles][::3]
    with Session() as s:
        for label, kw in [*((f"role {r}", {"role": r}) for r in roles),
                          *((f"person {p}", {"person_id": p}) for p in people),
                          ("role biller, BMH, deadline in 30 days", {"role": "biller", "payer_key": "BMH",
                                                                     "deadline_within_days": 30})]:
            times = []
            for k in range(reps):
                with cap.phase_of(f"queue {label}") if k == 0 else _nothing():
                    t = time.perf_counter()
                    page = queue.work_queue(s, 1, today=today, limit=50, **kw)
                    times.append((time.perf_counter() - t) * 1000)
            out["queue"][label] = {"p50_ms": _pct(times, 0.5), "p95_ms": _pct(times, 0.95), "rows": len(page.rows)}
        runs: list[dict[str, float]] = []
        for k in range(3):
            timings: dict[str, float] = {}
            with cap.phase_of("kpis") if k == 0 else _nothing():
                kpis.report(s, 1, today=today, timings=timings)
            runs.append(timings)
        out["kpis"] = {name: round(statistics.median(r[name] for r in runs), 4) for name in runs[0]}
    return out


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run(sizes: list[int], reps: int, pg: str | None, log=print) -> dict:
    today = date(2026, 12, 7)
    report: dict = {"sizes": sizes, "reps": reps, "runs": []}
    for n in sizes:
        backends = [SqliteBackend(n)] + ([PostgresBackend(pg, n)] if pg else [])
        try:
            for b in backends:
                b.engine = b.make_engine()
                migrate(b.engine)
                log(f"{b.name}: loading {n:,} denial cases")
                load_s = load(b, n, today, log=log)
                cap = Capture()
                event.listen(b.engine, "before_cursor_execute", cap.listener)
                m = measure(b, today, reps, cap)
                plans = [p for p in explain_all(b, cap) if not p["sql"].startswith("INSERT")]
                for p in plans:
                    p["full_scans"] = [ln for ln in p["full_scans"] if any(t in ln for t in BIG)]
                report["runs"].append({"backend": b.name, "cases": n, "load_s": round(load_s, 1), **m,
                                       "plans": plans})
                log(f"{b.name} {n:,}: loaded in {load_s:.1f} s")
        finally:
            for b in backends:
                b.close()
    return report


def checks(report: dict) -> dict:
    """The issue's targets on PostgreSQL at the largest size, and the largest-to-smallest ratios."""
    runs = report["runs"]
    big, small = max(report["sizes"]), min(report["sizes"])
    out: dict = {"targets": {}, "ratios": {}}
    for r in runs:
        if r["backend"] == "postgresql" and r["cases"] == big:
            out["targets"] = {
                "queue_p95_under_100ms": all(q["p95_ms"] < TARGET_QUEUE_P95_MS for q in r["queue"].values()),
                "each_kpi_under_2s": all(v < TARGET_KPI_S for v in r["kpis"].values()),
            }
    for backend in {r["backend"] for r in runs}:
        a = next((r for r in runs if r["backend"] == backend and r["cases"] == small), None)
        z = next((r for r in runs if r["backend"] == backend and r["cases"] == big), None)
        if a and z and a is not z:
            out["ratios"][backend] = {
                **{f"queue {k} p95": round(z["queue"][k]["p95_ms"] / max(a["queue"][k]["p95_ms"], 1e-6), 1)
                   for k in a["queue"]},
                **{f"kpi {k}": round(z["kpis"][k] / max(a["kpis"][k], 1e-6), 1) for k in a["kpis"]},
            }
    return out


def print_report(report: dict, log=print) -> None:
    for r in report["runs"]:
        log(f"\n== {r['backend']} {r['cases']:,} denial cases (loaded in {r['load_s']} s) ==")
        log(f"{'work queue (top 50)':48} {'p50 ms':>8} {'p95 ms':>8} {'rows':>5}")
        for k, q in r["queue"].items():
            log(f"{k:48} {q['p50_ms']:>8.2f} {q['p95_ms']:>8.2f} {q['rows']:>5}")
        log(f"{'KPI':48} {'seconds':>8}")
        for k, v in r["kpis"].items():
            log(f"{k:48} {v:>8.4f}")
        scans = [p for p in r["plans"] if p["full_scans"]]
        log(f"plans: {len(r['plans'])} statements, {len(scans)} with a full scan of a large table")
        for p in r["plans"]:
            log(f"-- [{p['phase']}] {p['sql'][:160]}")
            for ln in p["plan"][:12]:
                log(f"     {ln}")
    c = checks(report)
    log("\n== ratios (largest size / smallest) ==")
    for backend, ratios in c["ratios"].items():
        for k, v in ratios.items():
            log(f"{backend:10} {k:60} x{v}")
    log(f"\ntargets (PostgreSQL, largest size): {c['targets'] or 'not measured (no PostgreSQL or one size)'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--pg", default=DEFAULT_PG)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--json", default=None, help="also write the report here")
    a = ap.parse_args(argv)
    pg = None if a.no_pg else a.pg
    if pg and (why := pg_reachable(pg)):
        print(f"PostgreSQL not reachable at {pg} ({why}): SQLite only")
        pg = None
    report = run([int(x) for x in a.sizes.split(",")], a.reps, pg)
    print_report(report)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({**report, "checks": checks(report)}, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
