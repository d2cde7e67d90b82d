"""Escalations of open denial cases, run on the scheduler (portal_agent/jobs.py `escalate`).

Each case carries the dates its escalations fall due (computed on intake: the work SLA passed -> supervisor;
unresolved at 14 days -> supervisor, at 30 days -> manager); a hard deadline of the payer within N days
makes the case urgent. Each escalation happens and is recorded exactly once, whatever runs overlap or
restart: its row is keyed (case, step); a run that loses a race to another hits the key at its commit, rolls
back everything it did and runs again, finding the rows there (`run`). The history entry and the outbox
event go in the same transaction as the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import events, work
from store.models import DenialCase, Escalation
from store.workflow.clocks import day_zero

SYSTEM = "system:escalation"


@dataclass(frozen=True)
class Escalated:
    case_id: int
    step: str
    to_role: str
    due_on: date


def escalate_due(s: Session, *, now: datetime, urgent_within_days: int = 10,
                 org_id: int | None = None) -> list[Escalated]:
    """Record every escalation due by `now` (each case's dates in its own zone) that has not happened yet;
    returns those this run recorded. The caller commits."""
    q = select(DenialCase).where(DenialCase.resolved_at.is_(None))
    if org_id is not None:
        q = q.where(DenialCase.org_id == org_id)
    done: list[Escalated] = []
    for case in s.scalars(q.order_by(DenialCase.id)):
        today = day_zero(now, case.time_zone)
        due = [(date.fromisoformat(e["on"]), e["why"], e["to"]) for e in case.escalations
               if date.fromisoformat(e["on"]) <= today]
        deadlines = [(d, what) for d, what in ((case.appeal_deadline, "appeal deadline"),
                                               (case.timely_filing_deadline, "timely filing deadline"))
                     if d is not None and (d - today).days <= urgent_within_days]
        if deadlines:
            d, what = min(deadlines)
            due.append((today, f"urgent: {what} {d.isoformat()}", case.owner_role))
        for on, why, to in due:
            step = (why if why.startswith("urgent") else f"{why} ({on.isoformat()})")[:64]
            if _record(s, case, step, to, on, now):
                if why.startswith("urgent") and case.urgent_since is None:
                    case.urgent_since = now
                work.history(s, case, now, "escalated", case.owner_role, to, SYSTEM, {"step": step})
                events.emit(s, case.org_id, events.DenialEscalated(**work.case_ref(case), step=step, to_role=to,
                                                                   due_on=on))
                done.append(Escalated(case.id, step, to, on))
    return done


def _record(s: Session, case: DenialCase, step: str, to: str, on: date, now: datetime) -> bool:
    """Add the (case, step) row; False when it already happened. A concurrent run's row surfaces as an
    IntegrityError at flush or commit (see `run`)."""
    if s.scalar(select(Escalation.id).where(Escalation.case_id == case.id, Escalation.step == step)):
        return False
    s.add(Escalation(org_id=case.org_id, case_id=case.id, step=step, to_role=to, due_on=on, at=now))
    s.flush()
    return True


def run(Session, *, now: datetime, urgent_within_days: int = 10, attempts: int = 3) -> list[Escalated]:
    """One escalation run in its own transaction; when another run recorded some of the same escalations
    first (the unique key), this run's work is rolled back and done again on what is now stored."""
    for attempt in range(1, attempts + 1):
        with Session() as s:
            try:
                done = escalate_due(s, now=now, urgent_within_days=urgent_within_days)
                s.commit()
                return done
            except IntegrityError:
                s.rollback()
                if attempt == attempts:
                    raise
    return []
