"""Denial cases on intake (store/cases.py), without a browser: categorized, routed and clocked in the
practice's zone when the denial arrives; a CARC that changes on a later read keeps the case, its owner and
its clocks; a rejection is its own case."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from store import repo
from store.db import make_engine, session_factory
from store.models import CaseEvent, Denial, DenialCase, Payer


@pytest.fixture
def Session(tmp_path, fresh_sqlite):
    return session_factory(make_engine(f"sqlite:///{fresh_sqlite(tmp_path / 'cases.db')}"))


def _claim(s, *, zone="America/Los_Angeles", billed=150000):
    org = repo.get_or_create_org(s, "ORG1", "Riverbend Family Medicine")
    org.time_zone = zone
    payer = Payer(org_id=org.id, key="NSH", name="Northstar Health", portal_key="commercial",
                  appeal_window_days=180, timely_filing_days=90, playbook_source="test playbook")
    s.add(payer)
    s.flush()
    return repo.add_claim(s, org=org, payer=payer, external_id="PCN-1", member_id="NS12345",
                          billing_npi="1234567893", dos_from=date(2026, 11, 2), dos_to=date(2026, 11, 2),
                          submitted_on=date(2026, 11, 4), lines=[{"line_no": 1, "cpt": "73721", "billed_cents": billed}])


def _denial(at, group, carc, rarcs=(), billed=Decimal("1500.00"), check_date=None):
    line = LineResult(line_no=1, cpt="73721", billed=billed, allowed=Decimal("0"), paid=Decimal("0"),
                      adjustments=[LineAdjustment(group=group, carc=carc, amount=billed)], rarcs=list(rarcs))
    return ClaimStatusResult(claim_ref="PCN-1", portal_key="commercial", observed_at=at, status_category="F2",
                             billed=billed, paid=Decimal("0"), lines=[line], raw_label="Denied",
                             payer_claim_number="X1", check_date=check_date)


def test_a_denial_is_categorized_routed_and_clocked_on_arrival(Session):
    at = datetime(2026, 12, 24, 3, 30, tzinfo=UTC)  # 12-23 in Los Angeles
    with Session() as s:
        c = _claim(s)
        out = repo.record_result(s, c, _denial(at, "CO", "50", ["N115"], check_date=date(2026, 12, 18)))
        s.commit()
        case = s.get(DenialCase, out.new_cases[0])
        assert (case.kind, case.state, case.bucket, case.hard, case.clinical, case.owner_role) == (
            "denial", "new", "medical_necessity", True, True, "clinician")
        assert (case.detected_on, case.denial_date, case.time_zone) == (date(2026, 12, 23), date(2026, 12, 18),
                                                                        "America/Los_Angeles")
        # hard: appeal filed within 30 days of the denial date; $1,500 >= $1,000: peer-to-peer within 7
        assert (case.work_by, case.appeal_by, case.peer_to_peer_by) == (None, date(2027, 1, 17), date(2026, 12, 25))
        # the payer's: appeal 180 days from the notice, timely filing 90 days from the date of service
        assert (case.appeal_deadline, case.timely_filing_deadline) == (date(2027, 6, 16), date(2027, 1, 31))
        assert "test playbook" in case.deadline_source
        assert {e["why"] for e in case.escalations} >= {"unresolved 14 days", "unresolved 30 days"}
        assert s.scalars(select(Denial)).one().case_id == case.id
        kinds = [e.kind for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
        assert kinds == ["created", "routed"]


def test_a_soft_denial_is_worked_in_five_business_days_of_the_practices_calendar(Session):
    with Session() as s:
        c = _claim(s, zone="America/New_York", billed=15000)
        out = repo.record_result(s, c, _denial(datetime(2026, 12, 23, 15, tzinfo=UTC), "CO", "16", ["N382"],
                                               billed=Decimal("150.00")))
        case = s.get(DenialCase, out.new_cases[0])
        assert (case.bucket, case.hard, case.owner_role) == ("demographic", False, "front_desk")
        assert case.work_by == date(2026, 12, 31)  # skips 12-25 and the weekend
        assert case.appeal_by is None and case.peer_to_peer_by is None
        assert case.escalations[0] == {"on": "2027-01-01", "to": "supervisor", "why": "work SLA passed"}


def test_a_carc_that_changes_on_a_later_read_keeps_the_case_its_owner_and_clocks(Session):
    t0 = datetime(2026, 12, 1, 15, tzinfo=UTC)
    with Session() as s:
        c = _claim(s)
        first = repo.record_result(s, c, _denial(t0, "CO", "197", ["N54"]))
        case = s.get(DenialCase, first.new_cases[0])
        before = (case.id, case.owner_role, case.bucket, case.work_by, case.appeal_by, case.appeal_deadline,
                  case.detected_on)
        later = repo.record_result(s, c, _denial(t0 + timedelta(days=9), "CO", "16", ["N706"]))
        s.commit()
        assert later.new_cases == []
        s.refresh(case)
        assert (case.id, case.owner_role, case.bucket, case.work_by, case.appeal_by, case.appeal_deadline,
                case.detected_on) == before
        assert [x["code"] for x in case.reasons] == ["16"]
        assert s.scalars(select(DenialCase)).all() == [case]
        changed = s.scalars(select(CaseEvent).where(CaseEvent.kind == "reasons_changed")).one()
        assert (changed.from_value, changed.to_value) == ("CO-197", "CO-16")
        # both reason rows belong to the one case (the first is closed, the case is not)
        assert {d.case_id for d in s.scalars(select(Denial))} == {case.id}
        assert case.state == "new" and case.resolved_at is None


def test_a_rejection_is_its_own_case_and_keeps_the_timely_filing_clock(Session):
    with Session() as s:
        c = _claim(s, zone="America/Chicago")
        r = ClaimStatusResult(claim_ref="PCN-1", portal_key="clearinghouse",
                              observed_at=datetime(2026, 12, 7, 18, tzinfo=UTC), status_category="A7",
                              status_code="33", billed=Decimal("1500.00"), raw_label="Rejected",
                              rejection_reason="Subscriber and subscriber id not found")
        out = repo.record_result(s, c, r)
        case = s.get(DenialCase, out.new_cases[0])
        assert (case.kind, case.bucket, case.hard, case.owner_role) == ("rejection", "demographic", False, "front_desk")
        assert case.work_by == date(2026, 12, 14) and case.appeal_by is None and case.appeal_deadline is None
        assert case.timely_filing_deadline == date(2027, 1, 31)


def test_normal_adjudication_opens_no_case(Session):
    with Session() as s:
        c = _claim(s)
        line = LineResult(line_no=1, cpt="73721", billed=Decimal("1500"), allowed=Decimal("900"), paid=Decimal("880"),
                          adjustments=[LineAdjustment(group="CO", carc="45", amount=Decimal("600")),
                                       LineAdjustment(group="PR", carc="3", amount=Decimal("20"))])
        r = ClaimStatusResult(claim_ref="PCN-1", portal_key="commercial", observed_at=datetime(2026, 12, 7, tzinfo=UTC),
                              status_category="F1", billed=Decimal("1500"), paid=Decimal("880"), lines=[line],
                              raw_label="Paid")
        assert repo.record_result(s, c, r).new_cases == []
        assert s.scalars(select(DenialCase)).all() == []


def test_an_organizations_own_rule_categorizes_its_cases(Session):
    from store import cases
    from store.workflow.categorize import TableError

    with Session() as s:
        c = _claim(s, zone="America/New_York")
        org = s.get(cases.Organization, c.org_id)
        # this practice works CO-197 for NSH as documentation (its payer's policy), everything else as shipped
        cases.add_override(s, org, carc="197", payer_key="NSH", bucket="documentation", severity="soft",
                           nature="clinical", preventable=True, note="NSH accepts retro auth with notes")
        cases.add_override(s, org, carc="197", bucket="coding", severity="soft", nature="administrative",
                           preventable=True)
        with pytest.raises(TableError, match="'severity'"):
            cases.add_override(s, org, carc="50", bucket="coding", severity="medium", nature="clinical",
                               preventable=True)
        out = repo.record_result(s, c, _denial(datetime(2026, 12, 7, 15, tzinfo=UTC), "CO", "197", ["N54"]))
        case = s.get(DenialCase, out.new_cases[0])
        assert (case.bucket, case.hard, case.owner_role) == ("documentation", False, "coder")
        assert case.category_source == "org:ORG1:payer:NSH:197"


def test_a_practice_that_works_lines_apart_gets_a_case_per_denied_line(Session):
    with Session() as s:
        c = _claim(s)
        s.get(repo.Organization, c.org_id).cases_per_line = True
        lines = [LineResult(line_no=n, cpt="73721", billed=Decimal("750"), allowed=Decimal("0"), paid=Decimal("0"),
                            adjustments=[LineAdjustment(group="CO", carc=carc, amount=Decimal("750"))], rarcs=rarcs)
                 for n, carc, rarcs in ((1, "197", ["N54"]), (2, "16", ["N382"]))]
        r = ClaimStatusResult(claim_ref="PCN-1", portal_key="commercial", observed_at=datetime(2026, 12, 7, 15, tzinfo=UTC),
                              status_category="F2", billed=Decimal("1500"), paid=Decimal("0"), lines=lines,
                              raw_label="Denied")
        out = repo.record_result(s, c, r)
        cases = [s.get(DenialCase, i) for i in out.new_cases]
        assert [(x.line_key, x.bucket, x.owner_role) for x in cases] == [(1, "authorization", "scheduler"),
                                                                         (2, "demographic", "front_desk")]
        assert {d.line_key: d.case_id for d in s.scalars(select(Denial))} == {1: cases[0].id, 2: cases[1].id}
        # line 2 is corrected and paid on the next read: its case stays (the work decides), line 1's updates
        again = repo.record_result(s, c, r.model_copy(update={"lines": lines[:1],
                                                            "observed_at": datetime(2026, 12, 9, tzinfo=UTC)}))
        assert again.new_cases == [] and len(s.scalars(select(DenialCase)).all()) == 2
