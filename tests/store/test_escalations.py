"""Escalations happen exactly once (store/escalations.py): across repeated runs, a restart (a new engine on
the same store) and two overlapping runs; each with its history entry and outbox event."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import func, select

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from store import escalations, repo
from store.db import make_engine, session_factory
from store.models import CaseEvent, DenialCase, Escalation, OutboxEvent, Payer


def _store(tmp_path, fresh_sqlite):
    path = fresh_sqlite(tmp_path / "esc.db")
    Session = session_factory(make_engine(f"sqlite:///{path}"))
    with Session() as s:
        org = repo.get_or_create_org(s, "ORG1", "Riverbend", "America/New_York")
        payer = Payer(org_id=org.id, key="NSH", name="Northstar", portal_key="commercial", timely_filing_days=90)
        s.add(payer)
        s.flush()
        for n, (carc, billed) in enumerate((("16", "150"), ("50", "1500")), start=1):
            c = repo.add_claim(s, org=org, payer=payer, external_id=f"PCN-{n}", member_id="M1",
                               billing_npi="1234567893", dos_from=date(2026, 11, 2), dos_to=date(2026, 11, 2),
                               submitted_on=date(2026, 11, 3),
                               lines=[{"line_no": 1, "cpt": "99213", "billed_cents": int(billed) * 100}])
            line = LineResult(line_no=1, cpt="99213", billed=Decimal(billed), allowed=Decimal(0), paid=Decimal(0),
                              adjustments=[LineAdjustment(group="CO", carc=carc, amount=Decimal(billed))])
            repo.record_result(s, c, ClaimStatusResult(
                claim_ref=c.external_id, portal_key="commercial", observed_at=datetime(2026, 12, 23, 15, tzinfo=UTC),
                status_category="F2", billed=Decimal(billed), paid=Decimal(0), lines=[line], raw_label="Denied"))
        s.commit()
    return path, Session


def _steps(Session) -> list[tuple[str, str, str]]:
    with Session() as s:
        rows = s.execute(select(DenialCase.kind, Escalation.step, Escalation.to_role)
                         .join(DenialCase, DenialCase.id == Escalation.case_id).order_by(Escalation.id)).all()
        return [tuple(r) for r in rows]


def test_each_escalation_once_across_runs_and_a_restart(tmp_path, fresh_sqlite):
    path, Session = _store(tmp_path, fresh_sqlite)
    with Session() as s:
        soft = s.scalars(select(DenialCase).where(DenialCase.bucket == "coding")).one()
        assert [e["on"] for e in soft.escalations] == ["2027-01-01", "2027-01-06", "2027-01-22"]
    assert escalations.run(Session, now=datetime(2026, 12, 30, 17, tzinfo=UTC)) == []  # nothing due yet
    first = escalations.run(Session, now=datetime(2027, 1, 7, 1, tzinfo=UTC))  # still 01-06 in New York
    assert sorted(e.step for e in first) == ["peer-to-peer SLA passed (2026-12-31)", "unresolved 14 days (2027-01-06)",
                                             "unresolved 14 days (2027-01-06)", "work SLA passed (2027-01-01)"]
    assert {e.to_role for e in first} == {"supervisor"}
    assert escalations.run(Session, now=datetime(2027, 1, 7, 1, tzinfo=UTC)) == []
    restarted = session_factory(make_engine(f"sqlite:///{path}"))  # a new process on the same store
    assert escalations.run(restarted, now=datetime(2027, 1, 8, tzinfo=UTC)) == []
    later = escalations.run(restarted, now=datetime(2027, 1, 25, 17, tzinfo=UTC))
    assert sorted(e.step for e in later) == [
        "appeal SLA passed (2027-01-23)", "unresolved 30 days (2027-01-22)", "unresolved 30 days (2027-01-22)",
        "urgent: timely filing deadline 2027-01-31", "urgent: timely filing deadline 2027-01-31"]
    assert [e.to_role for e in later if "30 days" in e.step] == ["manager", "manager"]
    with Session() as s:
        n = s.scalar(select(func.count()).select_from(Escalation))
        assert n == 9
        assert s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.kind == "escalated")) == n
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == "denial.escalated")) == n


def test_two_overlapping_runs_record_each_escalation_once(tmp_path, fresh_sqlite):
    path, _ = _store(tmp_path, fresh_sqlite)
    now = datetime(2027, 1, 25, tzinfo=UTC)
    barrier = threading.Barrier(2)
    results: list = []
    errors: list = []

    def one_run() -> None:
        Session = session_factory(make_engine(f"sqlite:///{path}"))  # each run its own engine (process)
        barrier.wait()
        try:
            results.append(escalations.run(Session, now=now))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    recorded = [e.step for r in results for e in r]
    Session = session_factory(make_engine(f"sqlite:///{path}"))
    stored = _steps(Session)
    assert len(stored) == len(recorded) == 9  # between them, each once
    assert sorted(recorded) == sorted(step for _, step, _ in stored)


def test_a_near_hard_deadline_makes_the_case_urgent_once(tmp_path, fresh_sqlite):
    _, Session = _store(tmp_path, fresh_sqlite)

    def urgent(day: int) -> list[str]:
        return [e.step for e in escalations.run(Session, now=datetime(2027, 1, day, 17, tzinfo=UTC))
                if e.step.startswith("urgent")]

    # timely filing: 90 days from 2026-11-02 = 2027-01-31: within 10 days from 01-21 (New York)
    assert urgent(20) == []
    assert urgent(21) == ["urgent: timely filing deadline 2027-01-31"] * 2
    assert urgent(22) == [] and urgent(30) == []
    with Session() as s:
        assert {repo.as_utc(c.urgent_since) for c in s.scalars(select(DenialCase))} == {
            datetime(2027, 1, 21, 17, tzinfo=UTC)}


def test_resolved_cases_do_not_escalate(tmp_path, fresh_sqlite):
    _, Session = _store(tmp_path, fresh_sqlite)
    with Session() as s:
        for c in s.scalars(select(DenialCase)):
            c.resolved_at = datetime(2026, 12, 24, tzinfo=UTC)
        s.commit()
    assert escalations.run(Session, now=datetime(2027, 3, 1, tzinfo=UTC)) == []
