"""The work queue: a role's or a person's open denial cases, the case worth working next first
(store/workflow/priority.py), with filters and cursor pagination; the store function the API serves.

Priority is stored with the case and recomputed when an input changes: on intake and when a later read
changes the case's dollars (store/cases.py), when an outcome is recorded for its payer x bucket
(store/work.py), and each day as deadlines come closer (`refresh`, run with the escalations).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from store.models import Claim, DenialCase, Payer
from store.workflow.clocks import day_zero
from store.workflow.priority import Record, days_left, priority

OPEN = DenialCase.resolved_at.is_(None)
DECIDED = ("won", "partially_won", "lost")


class QueueError(ValueError):
    """A queue request that cannot be served (names the field)."""


def outcome_records(s: Session, org_id: int, *, payer_id: int | None = None,
                    bucket: str | None = None) -> dict[tuple[int, str], Record]:
    """The organization's decided cases by payer x bucket (won 1, partially won 0.5, lost 0)."""
    points = case((DenialCase.state == "won", 1.0), (DenialCase.state == "partially_won", 0.5), else_=0.0)
    q = (select(Claim.payer_id, DenialCase.bucket, func.count(), func.sum(points))
         .join(Claim, Claim.id == DenialCase.claim_id)
         .where(DenialCase.org_id == org_id, DenialCase.state.in_(DECIDED))
         .group_by(Claim.payer_id, DenialCase.bucket))
    if payer_id is not None:
        q = q.where(Claim.payer_id == payer_id)
    if bucket is not None:
        q = q.where(DenialCase.bucket == bucket)
    return {(p, b): Record(int(n), float(w or 0)) for p, b, n, w in s.execute(q)}


def score(c: DenialCase, payer_id: int, today: date, records: dict[tuple[int, str], Record]) -> float:
    left = days_left(today, (c.appeal_deadline, c.timely_filing_deadline))
    return priority(c.amount_cents, c.bucket, left, records.get((payer_id, c.bucket), Record()))


def rescore(s: Session, c: DenialCase, payer_id: int, now: datetime) -> None:
    """One case's priority from what is stored now (its payer x bucket record included)."""
    records = outcome_records(s, c.org_id, payer_id=payer_id, bucket=c.bucket)
    c.priority = score(c, payer_id, day_zero(now, c.time_zone), records)


def _open_cases(columns, org_id: int | None, payer_id: int | None, bucket: str | None):
    """Open cases joined to their claims (the priorities' and the queue's base), optionally narrowed."""
    q = select(*columns).join(Claim, Claim.id == DenialCase.claim_id).where(OPEN)
    if org_id is not None:
        q = q.where(DenialCase.org_id == org_id)
    if payer_id is not None:
        q = q.where(Claim.payer_id == payer_id)
    if bucket is not None:
        q = q.where(DenialCase.bucket == bucket)
    return q


def refresh(s: Session, *, now: datetime, org_id: int | None = None, payer_id: int | None = None,
            bucket: str | None = None) -> int:
    """Recompute the open cases' priorities (all, or one organization's payer x bucket); returns how many
    changed. The caller commits."""
    q = _open_cases((DenialCase, Claim.payer_id), org_id, payer_id, bucket)
    records: dict[int, dict[tuple[int, str], Record]] = {}
    changed = 0
    for c, pid in s.execute(q):
        if c.org_id not in records:
            records[c.org_id] = outcome_records(s, c.org_id)
        new = score(c, pid, day_zero(now, c.time_zone), records[c.org_id])
        if new != c.priority:
            c.priority = new
            changed += 1
    return changed


@dataclass(frozen=True)
class QueueRow:
    case: DenialCase
    claim: Claim
    payer: Payer


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None  # None: this was the last page


def _cursor(c: DenialCase) -> str:
    return base64.urlsafe_b64encode(f"{c.priority!r}|{c.id}".encode()).decode()


def _parse_cursor(cursor: str) -> tuple[float, int]:
    try:
        p, i = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return float(p), int(i)
    except (ValueError, UnicodeDecodeError):
        raise QueueError("cursor: not a cursor this queue handed out") from None


def all_open(s: Session, org_id: int, **filters) -> list[QueueRow]:
    """Every open case of the organization's queue (page after page), for reports and the demo."""
    rows: list[QueueRow] = []
    cursor = None
    while True:
        page = work_queue(s, org_id, cursor=cursor, limit=500, **filters)
        rows += page.rows
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def work_queue(s: Session, org_id: int, *, role: str | None = None, person_id: int | None = None,
               payer_key: str | None = None, bucket: str | None = None, deadline_within_days: int | None = None,
               min_amount_cents: int | None = None, today: date | None = None, cursor: str | None = None,
               limit: int = 50) -> QueuePage:
    """Open cases of the organization (a role's, a person's), highest priority first (then newest), after
    `cursor`. `deadline_within_days`: a payer deadline (appeal or timely filing) on or before today + N."""
    if not 1 <= limit <= 500:
        raise QueueError("limit: between 1 and 500")
    if deadline_within_days is not None and deadline_within_days < 0:
        raise QueueError("deadline_within_days: not negative")
    if min_amount_cents is not None and min_amount_cents < 0:
        raise QueueError("min_amount_cents: not negative")
    q = _open_cases((DenialCase, Claim, Payer), org_id, None, bucket).join(Payer, Payer.id == Claim.payer_id)
    if role is not None:
        q = q.where(DenialCase.owner_role == role)
    if person_id is not None:
        q = q.where(DenialCase.owner_person_id == person_id)
    if payer_key is not None:
        q = q.where(Payer.key == payer_key)
    if min_amount_cents is not None:
        q = q.where(DenialCase.amount_cents >= min_amount_cents)
    if deadline_within_days is not None:
        last = (today or date.today()) + timedelta(days=deadline_within_days)
        q = q.where(or_(DenialCase.appeal_deadline <= last, DenialCase.timely_filing_deadline <= last))
    if cursor is not None:
        p, i = _parse_cursor(cursor)
        q = q.where(or_(DenialCase.priority < p, and_(DenialCase.priority == p, DenialCase.id < i)))
    # priority, then the newest case: both descending, so the queue indexes are read backwards, in order
    rows = [QueueRow(*r) for r in s.execute(q.order_by(DenialCase.priority.desc(), DenialCase.id.desc())
                                            .limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return QueuePage(rows, _cursor(rows[-1].case) if more else None)
