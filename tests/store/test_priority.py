"""Priority and the work queue (store/workflow/priority.py, store/queue.py), without a browser: the worked
example of the formula, a crafted set of cases in an order checked by hand, filters, cursor pagination, and
a recorded outcome moving its payer x bucket's cases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from store import queue, repo, work
from store.db import make_engine, session_factory
from store.models import DenialCase, Payer
from store.workflow.priority import Record, odds, priority


def test_the_documented_worked_example():
    assert odds("medical_necessity", Record(decided=2, won=1)) == pytest.approx(5.5 / 12)
    assert priority(120000, "medical_necessity", 20, Record(decided=2, won=1)) == 1375.0
    assert priority(15000, "coding", 3) == 1402.5
    assert priority(15000, "coding", 10) == 510.0
    assert priority(15000, "coding", None) == round(150 * 0.85 * (1 + 30 / 365), 2)
    assert priority(15000, "coding", -1) == round(150 * 0.85 * 0.05, 2)  # past the deadline: a person decides
    assert priority(15000, "coding", 0) == priority(15000, "coding", 1)  # due today counts as one day


@pytest.fixture
def Session(tmp_path, fresh_sqlite):
    return session_factory(make_engine(f"sqlite:///{fresh_sqlite(tmp_path / 'q.db')}"))


NOW = datetime(2026, 12, 7, 15, tzinfo=UTC)  # 09:00 in Chicago: today is 2026-12-07


def _case(s, org, payer, n, carc, dollars, *, dos=date(2026, 11, 2)):
    c = repo.add_claim(s, org=org, payer=payer, external_id=f"PCN-{n}", member_id="M1", billing_npi="1234567893",
                       dos_from=dos, dos_to=dos, submitted_on=dos,
                       lines=[{"line_no": 1, "cpt": "99213", "billed_cents": dollars * 100}])
    line = LineResult(line_no=1, cpt="99213", billed=Decimal(dollars), allowed=Decimal(0), paid=Decimal(0),
                      adjustments=[LineAdjustment(group="CO", carc=carc, amount=Decimal(dollars))])
    out = repo.record_result(s, c, ClaimStatusResult(
        claim_ref=c.external_id, portal_key="commercial", observed_at=NOW, status_category="F2",
        billed=Decimal(dollars), paid=Decimal(0), lines=[line], raw_label="Denied"))
    return s.get(DenialCase, out.new_cases[0])


def _world(s):
    org = repo.get_or_create_org(s, "ORG1", "Riverbend", "America/Chicago")
    # timely filing 90 days from the date of service; appeal 60 days from the denial (detected 12-07)
    bmh = Payer(org_id=org.id, key="BMH", name="Blue Meridian", portal_key="clearinghouse", timely_filing_days=90,
                appeal_window_days=60)
    nsh = Payer(org_id=org.id, key="NSH", name="Northstar", portal_key="commercial", timely_filing_days=365)
    s.add_all([bmh, nsh])
    s.flush()
    return org, bmh, nsh


def test_a_crafted_set_in_the_order_checked_by_hand(Session):
    with Session() as s:
        org, bmh, nsh = _world(s)
        # deadlines from 2026-12-07: BMH appeal 2027-02-05 (60 days), BMH filing from DOS 11-02: 2027-01-31 (55 days)
        a = _case(s, org, bmh, 1, "50", 1200)  # medical necessity 0.45; 55 days: 1200*.45*(1+30/55) = 834.55
        b = _case(s, org, nsh, 2, "97", 150)  # coding 0.85; NSH filing 2027-11-02 (330 days): 150*.85*(1+30/330) = 139.09
        c = _case(s, org, bmh, 3, "97", 150, dos=date(2026, 9, 10))  # filing 2026-12-09, 2 days: 150*.85*16 = 2040.0
        d = _case(s, org, nsh, 4, "29", 5000)  # timely filing 0.10, 330 days: 5000*.1*(1+30/330) = 545.45
        e = _case(s, org, bmh, 5, "97", 150, dos=date(2026, 9, 1))  # filing 2026-11-30: passed: 150*.85*.05 = 6.38
        expected = {a.id: 834.55, b.id: 139.09, c.id: 2040.0, d.id: 545.45, e.id: 6.38}
        assert {x.id: x.priority for x in (a, b, c, d, e)} == expected
        page = queue.work_queue(s, org.id, today=date(2026, 12, 7))
        assert [r.case.id for r in page.rows] == [c.id, a.id, d.id, b.id, e.id] and page.next_cursor is None


def test_filters_and_cursor_pagination(Session):
    with Session() as s:
        org, bmh, nsh = _world(s)
        ids = [_case(s, org, bmh if n % 2 else nsh, n, "97" if n % 3 else "50", 100 + n * 10).id for n in range(1, 13)]
        everyone = [r.case.id for r in queue.work_queue(s, org.id, limit=500).rows]
        assert sorted(everyone) == sorted(ids)
        pages, cursor = [], None
        while True:
            page = queue.work_queue(s, org.id, cursor=cursor, limit=5)
            pages.append([r.case.id for r in page.rows])
            cursor = page.next_cursor
            if cursor is None:
                break
        assert [len(p) for p in pages] == [5, 5, 2] and sum(pages, []) == everyone
        coders = queue.work_queue(s, org.id, role="coder").rows
        assert coders and all(r.case.owner_role == "coder" and r.case.bucket == "coding" for r in coders)
        assert all(r.payer.key == "BMH" for r in queue.work_queue(s, org.id, payer_key="BMH").rows)
        assert all(r.case.amount_cents >= 20000 for r in queue.work_queue(s, org.id, min_amount_cents=20000).rows)
        soon = queue.work_queue(s, org.id, deadline_within_days=60, today=date(2026, 12, 7)).rows
        assert {r.payer.key for r in soon} == {"BMH"}  # NSH's filing deadline is 330 days away
        with pytest.raises(queue.QueueError, match="cursor"):
            queue.work_queue(s, org.id, cursor="not-a-cursor")
        with pytest.raises(queue.QueueError, match="limit"):
            queue.work_queue(s, org.id, limit=0)


def test_a_recorded_outcome_moves_its_payer_and_buckets_open_cases(Session):
    with Session() as s:
        org, bmh, nsh = _world(s)
        won = _case(s, org, bmh, 1, "50", 1200)
        open_same = _case(s, org, bmh, 2, "50", 1200)
        other_payer = _case(s, org, nsh, 3, "50", 1200)
        before = (open_same.priority, other_payer.priority)
        clinician = work.add_person(s, org, "Dr Lee", ["clinician"], at=NOW)
        work.assign(s, won, clinician, at=NOW, actor="a")
        work.move(s, won, "in_progress", at=NOW, actor="a")
        work.file_appeal(s, won, channel="portal", filed_on=date(2026, 12, 7), at=NOW, actor="a")
        work.decide_appeal(s, won, "won", decided_on=date(2026, 12, 20), recovered_cents=120000, at=NOW, actor="a")
        # BMH x medical necessity: odds (4.5 + 1) / 11 = 0.5 (was 0.45): 1200 * 0.5 * (1 + 30/55) = 927.27
        assert open_same.priority == 927.27 and open_same.priority > before[0]
        assert other_payer.priority == before[1]  # another payer's odds did not move
        assert won.id not in [r.case.id for r in queue.work_queue(s, org.id).rows]  # resolved: off the queue
