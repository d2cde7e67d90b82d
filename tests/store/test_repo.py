"""Store: migrate on start, record checks as history, dedupe denials, record transitions, outbox."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, select

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from store import repo
from store.db import make_engine, migrate, session_factory
from store.models import Denial, OutboxEvent, Payer, StatusObservation, StatusTransition


@pytest.fixture
def db(tmp_path, fresh_sqlite):
    engine = make_engine(f"sqlite:///{fresh_sqlite(tmp_path / 'pa.db')}")  # migrated once per session
    migrate(engine)  # a start on a migrated store is a no-op
    Session = session_factory(engine)
    with Session() as s:
        repo.load_code_tables(s)  # as on every start: loading them again changes nothing
        s.commit()
    return engine, Session


def _claim(s):
    org = repo.get_or_create_org(s, "ORG1", "Riverbend Family Medicine")
    payer = Payer(org_id=org.id, key="NSH", name="Northstar Health", portal_key="commercial",
                  typical_days_to_pay=16)
    s.add(payer)
    s.flush()
    c = repo.add_claim(s, org=org, payer=payer, external_id="PCN-1", member_id="NS12345", billing_npi="1234567893",
                       dos_from=date(2026, 9, 1), dos_to=date(2026, 9, 1), submitted_on=date(2026, 9, 3),
                       lines=[{"line_no": 1, "cpt": "99213", "billed_cents": 15000},
                              {"line_no": 2, "cpt": "36415", "billed_cents": 2500}])
    return org, payer, c


def _result(cat, code, lines, at, **kw):
    return ClaimStatusResult(claim_ref="PCN-1", portal_key="commercial", observed_at=at, status_category=cat,
                             status_code=code, billed=Decimal("175.00"), lines=lines, raw_label=cat, **kw)


def _denied_lines():
    return [LineResult(line_no=1, cpt="99213", billed=Decimal("150"), allowed=Decimal("0"), paid=Decimal("0"),
                       adjustments=[LineAdjustment(group="CO", carc="197", amount=Decimal("150"))],
                       rarcs=["N54"]),
            LineResult(line_no=2, cpt="36415", billed=Decimal("25"), allowed=Decimal("20"), paid=Decimal("16"),
                       adjustments=[LineAdjustment(group="CO", carc="45", amount=Decimal("5")),
                                    LineAdjustment(group="PR", carc="2", amount=Decimal("4"))])]


def test_schema_migrated(db):
    engine, _ = db
    tables = set(inspect(engine).get_table_names())
    assert {"organizations", "payers", "portal_accounts", "claims", "claim_lines", "status_observations",
            "status_transitions", "adjustments", "denials", "sweep_runs", "outbox_events", "code_carc",
            "alembic_version"} <= tables


def test_recheck_unchanged_adds_observation_not_denial(db):
    _, Session = db
    t0 = datetime(2026, 10, 1, 12, tzinfo=UTC)
    with Session() as s:
        _, _, c = _claim(s)
        o1 = repo.record_result(s, c, _result("F2", "1", _denied_lines(), t0, payer_claim_number="X1"))
        o2 = repo.record_result(s, c, _result("F2", "1", _denied_lines(), t0 + timedelta(days=1),
                                              payer_claim_number="X1"))
        s.commit()
        assert o1.changed and not o2.changed
        assert len(o1.new_denials) == 1 and o2.new_denials == []
        assert s.scalar(select(func.count()).select_from(StatusObservation)) == 2
        assert s.scalar(select(func.count()).select_from(StatusTransition)) == 1
        d = s.scalars(select(Denial)).one()
        assert (d.kind, d.group_code, d.reason_code, d.line_key, d.amount_cents, d.rarcs) == (
            "denial", "CO", "197", 1, 15000, ["N54"])
        assert repo.as_utc(d.last_seen_at) == t0 + timedelta(days=1)
        assert c.finalized and c.next_check_at is None and c.payer_claim_number == "X1"
        types = [e.event_type for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]
        # the status change, then the one case (store/cases.py) opened and routed to its role's queue
        assert types == ["claim.status_changed", "denial.created", "denial.routed"]


def test_overturn_is_a_transition_and_resolves_the_denial(db):
    _, Session = db
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    paid = [LineResult(line_no=1, cpt="99213", billed=Decimal("150"), allowed=Decimal("100"), paid=Decimal("100"),
                       adjustments=[LineAdjustment(group="CO", carc="45", amount=Decimal("50"))])]
    with Session() as s:
        _, _, c = _claim(s)
        c.appeal_open = True
        repo.record_result(s, c, _result("F2", "1", _denied_lines(), t0))
        assert c.next_check_at is not None  # appeal open: keep checking a finalized denial
        out = repo.record_result(s, c, _result("F3", "65", paid, t0 + timedelta(days=30)))
        s.commit()
        assert out.transition == ("F2", "F3") and len(out.resolved_denials) == 1
        assert s.scalars(select(Denial)).one().open is False


def test_rejection_is_not_a_denial_and_normal_adjustments_are_not_denials(db):
    _, Session = db
    with Session() as s:
        _, _, c = _claim(s)
        out = repo.record_result(s, c, _result("A7", "33", [], datetime(2026, 9, 5, tzinfo=UTC),
                                               rejection_reason="Subscriber and subscriber id not found"))
        d = s.get(Denial, out.new_denials[0])
        assert (d.kind, d.reason_code, d.group_code) == ("rejection", "33", "")
        assert c.finalized
    lines = _denied_lines()[1:]
    assert repo.denial_keys(_result("F1", "65", lines, datetime.now(UTC))) == {}


def test_claims_due(db):
    _, Session = db
    with Session() as s:
        _, payer, c = _claim(s)
        s.commit()
        first = repo.first_check_at(date(2026, 9, 3), payer)
        assert repo.claims_due(s, now=first - timedelta(seconds=1)) == []
        assert repo.claims_due(s, now=first) == [c]
        repo.record_result(s, c, _result("P1", "20", [], first))
        assert repo.claims_due(s, now=first + timedelta(hours=23)) == []
        assert repo.claims_due(s, now=first + timedelta(hours=24)) == [c]
