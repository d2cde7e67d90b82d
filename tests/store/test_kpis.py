"""KPIs (store/kpis.py) on a crafted store, every figure checked by hand, without a browser."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from store import kpis, repo, work
from store.db import make_engine, migrate, session_factory
from store.models import DenialCase, Payer

T0 = datetime(2026, 12, 1, 15, tzinfo=UTC)


PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def Session(request, tmp_path, fresh_sqlite):
    """The same store on SQLite and on PostgreSQL (a schema of its own; skipped where no server runs)."""
    if request.param == "sqlite":
        yield session_factory(make_engine(f"sqlite:///{fresh_sqlite(tmp_path / 'k.db')}"))
        return
    import uuid

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    schema = f"kpi_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG)
    try:
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError:
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    engine = make_engine(f"{PG}?options=-csearch_path%3D{schema}")
    migrate(engine)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _claim(s, org, payer, n, cpt, dollars, *, submitted=date(2026, 11, 20)):
    return repo.add_claim(s, org=org, payer=payer, external_id=f"PCN-{n}", member_id=f"M{n}",
                          billing_npi="1234567893" if n % 2 else "1588667638", dos_from=submitted,
                          dos_to=submitted, submitted_on=submitted,
                          lines=[{"line_no": 1, "cpt": cpt, "billed_cents": dollars * 100}])


def _read(s, c, cat, dollars, adjustments=(), code=None):
    line = LineResult(line_no=1, cpt=c.lines[0].cpt, billed=Decimal(dollars), allowed=Decimal(0), paid=Decimal(0),
                      adjustments=[LineAdjustment(group=g, carc=k, amount=Decimal(dollars)) for g, k in adjustments])
    return repo.record_result(s, c, ClaimStatusResult(
        claim_ref=c.external_id, portal_key="commercial", observed_at=T0, status_category=cat, status_code=code,
        billed=Decimal(dollars), paid=Decimal(dollars if cat == "F1" else 0), lines=[line] if cat.startswith("F") else [],
        raw_label=cat, rejection_reason="Subscriber not found" if cat == "A7" else None))


def test_every_kpi_on_a_crafted_store(Session):
    with Session() as s:
        org = repo.get_or_create_org(s, "ORG1", "Riverbend", "America/Chicago")
        nsh = Payer(org_id=org.id, key="NSH", name="Northstar", portal_key="commercial")
        bmh = Payer(org_id=org.id, key="BMH", name="Blue Meridian", portal_key="clearinghouse")
        s.add_all([nsh, bmh])
        s.flush()
        c1, c2 = _claim(s, org, nsh, 1, "99213", 100), _claim(s, org, nsh, 2, "99213", 150)
        c3, c4 = _claim(s, org, bmh, 3, "73721", 1200), _claim(s, org, bmh, 4, "99214", 400)
        c5 = _claim(s, org, bmh, 5, "99214", 200)
        c6 = _claim(s, org, nsh, 6, "99213", 300, submitted=date(2026, 8, 1))
        _read(s, c1, "F1", 100)
        soft = s.get(DenialCase, _read(s, c2, "F2", 150, [("CO", "97")]).new_cases[0])
        hard = s.get(DenialCase, _read(s, c3, "F2", 1200, [("CO", "50")]).new_cases[0])
        _read(s, c4, "A7", 400, code="33")
        gone = s.get(DenialCase, _read(s, c5, "F2", 200, [("CO", "27")]).new_cases[0])
        _read(s, c6, "F2", 300, [("CO", "97")])
        coder = work.add_person(s, org, "Priya", ["coder", "clinician", "front_desk"], at=T0)
        for case_ in (soft, hard, gone):
            work.assign(s, case_, coder, at=T0, actor="t")
            work.move(s, case_, "in_progress", at=T0, actor="t")
        work.move(s, soft, "corrected_resubmitted", at=T0 + timedelta(days=3), actor="t")
        work.file_appeal(s, hard, channel="portal", filed_on=date(2026, 12, 2), at=T0, actor="t")
        work.decide_appeal(s, hard, "won", decided_on=date(2026, 12, 20), recovered_cents=120000, at=T0, actor="t")
        work.move(s, gone, "written_off", at=T0, actor="t", reason="not_appealable")
        s.commit()
        r = kpis.report(s, org.id, today=date(2026, 12, 7))
        assert r["claims"] == {"adjudicated": 5, "denied": 4, "rejected": 1, "paid_first_pass": 1, "billed_cents": 195000}
        assert (r["denial_rate"], r["first_pass_resolution_rate"], r["final_denial_rate"]) == (0.8, 0.1667, 0.2)
        assert r["dollars_denied_cents"] == 185000
        assert r["denial_rate_by_payer"] == [{"key": "BMH", "adjudicated": 2, "denied": 2, "rate": 1.0},
                                             {"key": "NSH", "adjudicated": 3, "denied": 2, "rate": 0.6667}]
        assert {x["key"]: x["rate"] for x in r["denial_rate_by_cpt"]} == {"73721": 1.0, "99213": 0.6667, "99214": 1.0}
        assert sum(x["adjudicated"] for x in r["denial_rate_by_provider"]) == 5
        assert r["avg_days_to_rework_soft"] == 3.0
        assert r["appeal_overturn_rate"] == [{"payer": "BMH", "bucket": "medical_necessity", "decided": 1,
                                              "overturn_rate": 1.0}]
        assert r["never_worked_rate"] == 0.4  # PCN-6's case and the rejection: 2 of 5 cases
        assert r["write_offs"] == {"cases": 1, "dollars_cents": 20000, "share_of_billed": 0.1026}
        assert r["revenue_recovered_cents"] == 120000
        assert r["ar_aging"] == {"0-30": {"claims": 4, "billed_cents": 195000}, "31-60": {"claims": 0, "billed_cents": 0},
                                 "61-90": {"claims": 0, "billed_cents": 0}, ">90": {"claims": 1, "billed_cents": 30000}}
        assert [(x["reason"], x["count"]) for x in r["top_reasons_by_count"]] == [("CO-97", 2), ("CO-27", 1), ("CO-50", 1)]
        assert [x["reason"] for x in r["top_reasons_by_dollars"]] == ["CO-50", "CO-97", "CO-27"]
        assert r["trend_by_month"] == [{"month": "2026-12", "denials": 4, "rejections": 1, "dollars_cents": 185000}]
        # the period: nothing submitted in August -> September
        later = kpis.report(s, org.id, since=date(2026, 11, 1), until=date(2026, 12, 1), today=date(2026, 12, 7))
        assert later["claims"]["adjudicated"] == 4 and later["ar_aging"][">90"]["claims"] == 0
        assert len(s.scalars(select(DenialCase)).all()) == 5
