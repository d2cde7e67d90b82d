"""Working denial cases (store/work.py, store/workflow/states.py), without a browser: every illegal move is
refused naming both states, routing to a person, every (re)assignment kept, appeals with their record."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from store import repo, work
from store.db import make_engine, session_factory
from store.models import Appeal, CaseEvent, DenialCase, Payer, Person
from store.workflow.states import FINAL, IllegalTransition, State, all_moves, check_move

T0 = datetime(2026, 12, 1, 15, tzinfo=UTC)


def test_every_illegal_transition_is_refused_naming_both_states():
    moves = all_moves()
    refused = 0
    for frm in State:
        for to in State:
            if to in moves[frm]:
                check_move("denial", frm, to, reason="other")
                continue
            with pytest.raises(IllegalTransition, match=f"'{frm}' to '{to}'"):
                check_move("denial", frm, to, reason="other")
            refused += 1
    assert refused == len(State) ** 2 - sum(len(v) for v in moves.values())
    for final in FINAL:
        assert not moves[final]
    with pytest.raises(IllegalTransition, match="'in_progress' to 'appealed'"):
        check_move("rejection", "in_progress", "appealed")
    with pytest.raises(IllegalTransition, match="needs a reason"):
        check_move("denial", "in_progress", "written_off")
    with pytest.raises(IllegalTransition, match="'closed' is not a state"):
        check_move("denial", "new", "closed")


@pytest.fixture
def Session(tmp_path, fresh_sqlite):
    return session_factory(make_engine(f"sqlite:///{fresh_sqlite(tmp_path / 'work.db')}"))


def _denied(s, org, payer, n: int, carc="197", group="CO", at=T0):
    line = LineResult(line_no=1, cpt="99213", billed=Decimal("150"), allowed=Decimal("0"), paid=Decimal("0"),
                      adjustments=[LineAdjustment(group=group, carc=carc, amount=Decimal("150"))])
    c = repo.add_claim(s, org=org, payer=payer, external_id=f"PCN-{n}", member_id="M1", billing_npi="1234567893",
                       dos_from=date(2026, 11, 2), dos_to=date(2026, 11, 2), submitted_on=date(2026, 11, 3),
                       lines=[{"line_no": 1, "cpt": "99213", "billed_cents": 15000}])
    r = ClaimStatusResult(claim_ref=c.external_id, portal_key="commercial", observed_at=at, status_category="F2",
                          billed=Decimal("150"), paid=Decimal("0"), lines=[line], raw_label="Denied")
    return s.get(DenialCase, repo.record_result(s, c, r).new_cases[0])


def _world(s, strategy="least_open"):
    org = repo.get_or_create_org(s, "ORG1", "Riverbend", "America/Chicago")
    payers = []
    for key in ("NSH", "BMH"):
        p = Payer(org_id=org.id, key=key, name=key, portal_key="commercial", appeal_window_days=180)
        s.add(p)
        payers.append(p)
    s.flush()
    work.set_routing(org, {}, strategy)
    return org, payers


def test_cases_go_to_the_person_of_the_role_with_the_least_open_work(Session):
    with Session() as s:
        org, (nsh, _) = _world(s)
        nobody = _denied(s, org, nsh, 1)  # no scheduler yet: the case waits in the role's queue
        assert (nobody.owner_role, nobody.owner_person_id, nobody.state) == ("scheduler", None, "new")
        ana = work.add_person(s, org, "Ana", ["scheduler"], at=T0)
        ben = work.add_person(s, org, "Ben", ["scheduler", "biller"], at=T0)
        work.add_person(s, org, "Cy", ["coder"], at=T0)
        got = [_denied(s, org, nsh, n).owner_person_id for n in range(2, 6)]
        assert got == [ana.id, ben.id, ana.id, ben.id]
        ben.active = False
        assert _denied(s, org, nsh, 6).owner_person_id == ana.id
        case = s.get(DenialCase, nobody.id)
        work.assign(s, case, ana, at=T0, actor="person:9")
        assert case.state == "assigned"
        ben.active = True
        work.assign(s, case, ben, at=T0 + timedelta(hours=1), actor="person:9")
        assigned = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "assigned")).all()
        assert [(e.from_value, e.to_value, e.actor) for e in assigned] == [(None, str(ana.id), "person:9"),
                                                                          (str(ana.id), str(ben.id), "person:9")]
        coder = s.scalars(select(Person).where(Person.name == "Cy")).one()
        with pytest.raises(work.WorkError, match="owner role 'scheduler'"):
            work.assign(s, case, coder, at=T0, actor="x")


def test_same_payer_and_carc_go_to_whoever_worked_them_last(Session):
    with Session() as s:
        org, (nsh, bmh) = _world(s, "same_payer_carc")
        ana = work.add_person(s, org, "Ana", ["scheduler"], at=T0)
        ben = work.add_person(s, org, "Ben", ["scheduler"], at=T0)
        first = _denied(s, org, nsh, 1)
        other_payer = _denied(s, org, bmh, 2, at=T0 + timedelta(minutes=1))
        same = _denied(s, org, nsh, 3, at=T0 + timedelta(minutes=2))
        assert first.owner_person_id == ana.id and other_payer.owner_person_id == ben.id
        assert same.owner_person_id == ana.id  # not the least loaded: ana worked NSH + 197 last


def test_an_organization_routes_a_bucket_to_another_role(Session):
    with Session() as s:
        org, (nsh, _) = _world(s)
        work.set_routing(org, {"authorization": "biller"})
        assert _denied(s, org, nsh, 1).owner_role == "biller"
        with pytest.raises(work.WorkError, match="routing.authorization"):
            work.set_routing(org, {"authorization": "service"})
        with pytest.raises(work.WorkError, match="routing: 'auth'"):
            work.set_routing(org, {"auth": "biller"})
        with pytest.raises(work.WorkError, match="routing_strategy"):
            work.set_routing(org, {}, "round_robin")


def test_appeals_are_recorded_level_by_level(Session):
    with Session() as s:
        org, (nsh, _) = _world(s)
        case = _denied(s, org, nsh, 1)
        with pytest.raises(work.WorkError, match="'new' to 'appealed'"):
            work.file_appeal(s, case, channel="portal", filed_on=date(2026, 12, 2), at=T0, actor="a")
        with pytest.raises(work.WorkError, match="'new' to 'in_progress'"):
            work.move(s, case, "in_progress", at=T0, actor="a")
        ana = work.add_person(s, org, "Ana", ["scheduler"], at=T0)
        work.assign(s, case, ana, at=T0, actor="a")
        work.move(s, case, "in_progress", at=T0, actor="a")
        with pytest.raises(work.WorkError, match="channel"):
            work.file_appeal(s, case, channel="carrier pigeon", filed_on=date(2026, 12, 2), at=T0, actor="a")
        first = work.file_appeal(s, case, channel="portal", filed_on=date(2026, 12, 2), at=T0, actor="a")
        assert (first.level, first.follow_up_on, case.state) == (1, date(2027, 1, 1), "appealed")
        with pytest.raises(work.WorkError, match="decide_appeal"):
            work.move(s, case, "won", at=T0, actor="a")
        work.decide_appeal(s, case, "lost", decided_on=date(2027, 1, 10), recovered_cents=0, at=T0, actor="a")
        second = work.file_appeal(s, case, channel="mail", filed_on=date(2027, 1, 12), at=T0, actor="a")
        work.decide_appeal(s, case, "won", decided_on=date(2027, 2, 1), recovered_cents=15000, at=T0, actor="a")
        assert (second.level, second.outcome, case.state, case.resolution) == (2, "won", "won", "won")
        assert case.resolved_at is not None
        assert [a.outcome for a in s.scalars(select(Appeal).order_by(Appeal.level))] == ["lost", "won"]
        with pytest.raises(work.WorkError, match="'won' to 'written_off' .*final"):
            work.move(s, case, "written_off", at=T0, actor="a", reason="other")


def test_a_write_off_needs_a_reason_and_resolves_the_case(Session):
    with Session() as s:
        org, (nsh, _) = _world(s)
        case = _denied(s, org, nsh, 1)
        with pytest.raises(work.WorkError, match="needs a reason"):
            work.move(s, case, "written_off", at=T0, actor="a")
        assert case.state == "new" and case.resolved_at is None  # nothing changed
        work.move(s, case, "written_off", at=T0, actor="a", reason="below_threshold", note="under $5")
        assert (case.state, case.resolution, case.resolution_note) == ("written_off", "below_threshold", "under $5")
