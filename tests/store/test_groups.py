"""Groups of similar denials (store/groups.py), without a browser: same payer + CARC + CPT within the window
form one group with its count and dollars; working the group works each open member, or none."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from store import groups, repo, work
from store.db import make_engine, session_factory
from store.models import Appeal, DenialCase, DenialGroup, Payer

T0 = datetime(2026, 12, 1, 15, tzinfo=UTC)


@pytest.fixture
def Session(tmp_path, fresh_sqlite):
    return session_factory(make_engine(f"sqlite:///{fresh_sqlite(tmp_path / 'g.db')}"))


def _denied(s, org, payer, n, *, carc="197", cpt="73721", dollars=500, at=T0):
    c = repo.add_claim(s, org=org, payer=payer, external_id=f"PCN-{n}", member_id=f"M{n}", billing_npi="1234567893",
                       dos_from=date(2026, 11, 2), dos_to=date(2026, 11, 2), submitted_on=date(2026, 11, 3),
                       lines=[{"line_no": 1, "cpt": cpt, "billed_cents": dollars * 100}])
    line = LineResult(line_no=1, cpt=cpt, billed=Decimal(dollars), allowed=Decimal(0), paid=Decimal(0),
                      adjustments=[LineAdjustment(group="CO", carc=carc, amount=Decimal(dollars))])
    out = repo.record_result(s, c, ClaimStatusResult(
        claim_ref=c.external_id, portal_key="commercial", observed_at=at, status_category="F2",
        billed=Decimal(dollars), paid=Decimal(0), lines=[line], raw_label="Denied"))
    return s.get(DenialCase, out.new_cases[0])


def _world(s):
    org = repo.get_or_create_org(s, "ORG1", "Riverbend", "America/Chicago")
    nsh = Payer(org_id=org.id, key="NSH", name="Northstar", portal_key="commercial", appeal_window_days=180)
    bmh = Payer(org_id=org.id, key="BMH", name="Blue Meridian", portal_key="clearinghouse")
    s.add_all([nsh, bmh])
    s.flush()
    return org, nsh, bmh


def test_similar_denials_form_a_group_with_its_count_and_dollars(Session):
    with Session() as s:
        org, nsh, bmh = _world(s)
        a = _denied(s, org, nsh, 1, dollars=500)
        b = _denied(s, org, nsh, 2, dollars=700, at=T0 + timedelta(days=10))
        c = _denied(s, org, nsh, 3, dollars=900, at=T0 + timedelta(days=29))  # 12-30: within 30 days of 12-01
        late = _denied(s, org, nsh, 4, at=T0 + timedelta(days=31))  # outside the window: a new group
        other_cpt = _denied(s, org, nsh, 5, cpt="99213")
        other_carc = _denied(s, org, nsh, 6, carc="50")
        other_payer = _denied(s, org, bmh, 7)
        assert a.group_id == b.group_id == c.group_id
        assert len({a.group_id, late.group_id, other_cpt.group_id, other_carc.group_id, other_payer.group_id}) == 5
        g = s.get(DenialGroup, a.group_id)
        assert (g.code, g.cpt, g.opened_on) == ("197", "73721", date(2026, 12, 1))
        summary = groups.summary(s, g)
        assert (summary.members, summary.open_members, summary.amount_cents) == (3, 3, 210000)


def test_working_a_group_works_each_open_member_or_none(Session):
    with Session() as s:
        org, nsh, _ = _world(s)
        members = [_denied(s, org, nsh, n) for n in (1, 2, 3)]
        g = s.get(DenialGroup, members[0].group_id)
        sched = work.add_person(s, org, "Sam", ["scheduler"], at=T0)
        assert [c.id for c in groups.assign(s, g, sched, at=T0, actor="a")] == [c.id for c in members]
        assert {c.owner_person_id for c in members} == {sched.id}
        # one member moves ahead alone; a group move it cannot make is refused for all, naming it
        work.move(s, members[2], "in_progress", at=T0, actor="a")
        work.move(s, members[2], "written_off", at=T0, actor="a", reason="below_threshold")
        groups.move(s, g, "in_progress", at=T0, actor="a")  # the written-off one is no longer a member at work
        assert [c.state for c in members] == ["in_progress", "in_progress", "written_off"]
        appeals = groups.file_appeal(s, g, channel="portal", filed_on=date(2026, 12, 8), at=T0, actor="a")
        assert [a.case_id for a in appeals] == [members[0].id, members[1].id]
        assert len(s.scalars(select(Appeal)).all()) == 2
        with pytest.raises(work.WorkError, match=f"case {members[0].id}: a case cannot go from 'appealed' to 'assigned'"):
            groups.move(s, g, "assigned", at=T0, actor="a")
        assert [c.state for c in members[:2]] == ["appealed", "appealed"]  # nothing moved
        assert groups.summary(s, g).open_members == 2
