"""Denial KPIs and root-cause reports (shared/DESIGN.md §5 "KPIs"), each one SQL query on the store (SQLite and
PostgreSQL alike), for one organization and a period.

The period selects claims by submission date and cases by detection date (`since` inclusive, `until`
exclusive). Rates are fractions (0.05 = 5 %); money is integer cents. Definitions:
- adjudicated: claims the payer finalized (277 category F*); rejected: claims with a rejection case.
- denial rate: adjudicated claims with a denial case / adjudicated claims (overall, by payer, by billing
  provider); by CPT: denied service lines / adjudicated service lines.
- first-pass resolution: claims paid (F1) with no denial or rejection case / adjudicated and rejected claims.
- final denial rate: cases lost or written off / adjudicated claims.
- days to rework a soft denial: detection to the move to corrected_resubmitted, averaged.
- appeal overturn rate (payer x bucket): (appeals won + half the partially won) / appeals decided.
- never worked: open cases still new or assigned / all cases of the period.
- write-offs: cases written off, their dollars and their share of the period's billed dollars.
- revenue recovered: what decided appeals recovered.
- A/R aging: claims not paid yet (not F1/F3), by days since submission (0-30, 31-60, 61-90, >90).
- top denial reasons by count and by dollars; denial cases by month of detection.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from store.models import Appeal, CaseEvent, Claim, ClaimLine, Denial, DenialCase, Payer

PAID = ("F1", "F3")


def _ratio(n: float, d: float) -> float | None:
    return None if not d else round(n / d, 4)


def _cases(org_id: int, since: date | None, until: date | None, kind: str | None = None):
    q = select(DenialCase).where(DenialCase.org_id == org_id)
    if since:
        q = q.where(DenialCase.detected_on >= since)
    if until:
        q = q.where(DenialCase.detected_on < until)
    if kind:
        q = q.where(DenialCase.kind == kind)
    return q


def _days_between(s: Session, later, earlier):
    if s.get_bind().dialect.name == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return func.extract("epoch", later - earlier) / 86400.0


def _month(s: Session, column):
    if s.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m", column)
    return func.to_char(column, "YYYY-MM")


class _Ticker:
    """Seconds each KPI's queries took (bench/queue.py prints them)."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self.into, self.t = into, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        if self.into is not None:
            self.into[name] = self.into.get(name, 0.0) + now - self.t
        self.t = now


def report(s: Session, org_id: int, *, since: date | None = None, until: date | None = None,
           today: date | None = None, top: int = 10, timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Every KPI of the organization for the period, as plain data (the CLI prints it, --json dumps it).
    `timings`: filled with each KPI's query seconds."""
    today = today or date.today()
    tick = _Ticker(timings)
    # per claim: does it have a denial case, a rejection case (joined, never IN inside an aggregate: on
    # PostgreSQL that is a subplan per row, minutes at a million claims)
    flags = (select(DenialCase.claim_id.label("claim_id"),
                    func.max(case((DenialCase.kind == "denial", 1), else_=0)).label("denied"),
                    func.max(case((DenialCase.kind == "rejection", 1), else_=0)).label("rejected"))
             .where(DenialCase.org_id == org_id).group_by(DenialCase.claim_id).subquery())
    adjudicated = Claim.status_category.like("F%")
    denied = flags.c.denied == 1

    def claims(q):
        """`q` over the organization's claims of the period, each with its case flags."""
        q = q.select_from(Claim).outerjoin(flags, flags.c.claim_id == Claim.id).where(Claim.org_id == org_id)
        if since:
            q = q.where(Claim.submitted_on >= since)
        if until:
            q = q.where(Claim.submitted_on < until)
        return q

    # claims: adjudicated, denied, rejected, paid first time, billed
    row = s.execute(claims(select(
        func.count().filter(adjudicated),
        func.count().filter(adjudicated, denied),
        func.count().filter(flags.c.rejected == 1),
        func.count().filter(Claim.status_category == "F1", flags.c.claim_id.is_(None)),
        func.coalesce(func.sum(Claim.billed_cents).filter(adjudicated), 0),
    ))).one()
    n_adj, n_denied, n_rejected, n_first_pass, billed = (int(x or 0) for x in row)
    tick("denial_and_first_pass_rates")

    def denial_rate_by(column) -> list[dict]:
        q = claims(select(column, func.count().filter(adjudicated), func.count().filter(adjudicated, denied)))
        if column is Payer.key:
            q = q.join(Payer, Payer.id == Claim.payer_id)
        return [{"key": k, "adjudicated": a, "denied": d, "rate": _ratio(d, a)}
                for k, a, d in s.execute(q.group_by(column).order_by(column))]

    by_payer = denial_rate_by(Payer.key)
    tick("denial_rate_by_payer")
    by_provider = denial_rate_by(Claim.billing_npi)
    tick("denial_rate_by_provider")

    # CPT: service lines of adjudicated claims, denied when a denial reason names the line
    denied_lines = (select(Denial.claim_id, Denial.line_key).where(Denial.org_id == org_id, Denial.kind == "denial")
                    .group_by(Denial.claim_id, Denial.line_key).subquery())
    q = (select(ClaimLine.cpt, func.count(), func.count(denied_lines.c.claim_id)).select_from(ClaimLine)
         .join(Claim, Claim.id == ClaimLine.claim_id)
         .outerjoin(denied_lines, (denied_lines.c.claim_id == ClaimLine.claim_id)
                    & (denied_lines.c.line_key == ClaimLine.line_no))
         .where(Claim.org_id == org_id, adjudicated))
    if since:
        q = q.where(Claim.submitted_on >= since)
    if until:
        q = q.where(Claim.submitted_on < until)
    by_cpt = [{"key": cpt, "adjudicated": a, "denied": d, "rate": _ratio(d, a)}
              for cpt, a, d in s.execute(q.group_by(ClaimLine.cpt).order_by(ClaimLine.cpt))]

    tick("denial_rate_by_cpt")
    cases_q = _cases(org_id, since, until).subquery()
    c = cases_q.c
    final_lost, never_worked, n_cases, written_off_n, written_off_cents = (int(x or 0) for x in s.execute(select(
        func.count().filter(c.state.in_(("lost", "written_off"))),
        func.count().filter(c.state.in_(("new", "assigned")), c.resolved_at.is_(None)),
        func.count(),
        func.count().filter(c.state == "written_off"),
        func.coalesce(func.sum(c.amount_cents).filter(c.state == "written_off"), 0),
    ).select_from(cases_q)).one())
    dollars_denied = int(s.scalar(select(func.coalesce(func.sum(c.amount_cents), 0)).select_from(cases_q)
                                  .where(c.kind == "denial")) or 0)

    tick("final_denial_never_worked_write_offs")
    reworked = (select(CaseEvent.case_id, func.min(CaseEvent.at).label("at")).where(
        CaseEvent.org_id == org_id, CaseEvent.kind == "state", CaseEvent.to_value == "corrected_resubmitted")
        .group_by(CaseEvent.case_id).subquery())
    avg_rework = s.scalar(select(func.avg(_days_between(s, reworked.c.at, c.detected_at))).select_from(cases_q)
                          .join(reworked, reworked.c.case_id == c.id).where(c.kind == "denial", c.hard.is_(False)))

    tick("days_to_rework_soft")
    points = case((Appeal.outcome == "won", 1.0), (Appeal.outcome == "partially_won", 0.5), else_=0.0)
    overturn = [{"payer": p, "bucket": b, "decided": n, "overturn_rate": _ratio(float(w or 0), n)}
                for p, b, n, w in s.execute(
        select(Payer.key, DenialCase.bucket, func.count(), func.sum(points))
        .join(DenialCase, DenialCase.id == Appeal.case_id).join(Claim, Claim.id == DenialCase.claim_id)
        .join(Payer, Payer.id == Claim.payer_id)
        .where(Appeal.org_id == org_id, Appeal.outcome.is_not(None), DenialCase.id.in_(select(c.id)))
        .group_by(Payer.key, DenialCase.bucket).order_by(Payer.key, DenialCase.bucket))]
    recovered = int(s.scalar(select(func.coalesce(func.sum(Appeal.recovered_cents), 0)).where(
        Appeal.org_id == org_id, Appeal.case_id.in_(select(c.id)))) or 0)

    tick("appeal_overturn_and_recovered")
    cut = [today - timedelta(days=n) for n in (30, 60, 90)]
    bucket = case((Claim.submitted_on >= cut[0], literal("0-30")), (Claim.submitted_on >= cut[1], literal("31-60")),
                  (Claim.submitted_on >= cut[2], literal("61-90")), else_=literal(">90"))
    aging = {b: {"claims": n, "billed_cents": int(v or 0)} for b, n, v in s.execute(
        claims(select(bucket, func.count(), func.sum(Claim.billed_cents)))
        .where((Claim.status_category.is_(None)) | Claim.status_category.not_in(PAID)).group_by(bucket))}

    tick("ar_aging")
    reasons = (select(Denial.group_code, Denial.reason_code, func.count(), func.sum(Denial.amount_cents))
               .join(DenialCase, DenialCase.id == Denial.case_id)
               .where(DenialCase.id.in_(select(c.id)), Denial.kind == "denial")
               .group_by(Denial.group_code, Denial.reason_code))
    rows = [{"reason": f"{g}-{r}", "count": n, "dollars_cents": int(v or 0)} for g, r, n, v in s.execute(reasons)]
    tick("top_reasons")
    month = _month(s, c.detected_on)
    trend = [{"month": m, "denials": d, "rejections": r, "dollars_cents": int(v or 0)} for m, d, r, v in s.execute(
        select(month, func.count().filter(c.kind == "denial"), func.count().filter(c.kind == "rejection"),
               func.sum(c.amount_cents).filter(c.kind == "denial")).group_by(month).order_by(month))]

    tick("trend_by_month")
    return {
        "period": {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None},
        "claims": {"adjudicated": n_adj, "denied": n_denied, "rejected": n_rejected, "paid_first_pass": n_first_pass,
                   "billed_cents": billed},
        "denial_rate": _ratio(n_denied, n_adj),
        "first_pass_resolution_rate": _ratio(n_first_pass, n_adj + n_rejected),
        "final_denial_rate": _ratio(final_lost, n_adj),
        "dollars_denied_cents": dollars_denied,
        "denial_rate_by_payer": by_payer,
        "denial_rate_by_provider": by_provider,
        "denial_rate_by_cpt": by_cpt,
        "avg_days_to_rework_soft": None if avg_rework is None else round(float(avg_rework), 2),
        "appeal_overturn_rate": overturn,
        "never_worked_rate": _ratio(never_worked, n_cases),
        "write_offs": {"cases": written_off_n, "dollars_cents": written_off_cents,
                       "share_of_billed": _ratio(written_off_cents, billed)},
        "revenue_recovered_cents": recovered,
        "ar_aging": {b: aging.get(b, {"claims": 0, "billed_cents": 0}) for b in ("0-30", "31-60", "61-90", ">90")},
        "top_reasons_by_count": sorted(rows, key=lambda x: (-x["count"], x["reason"]))[:top],
        "top_reasons_by_dollars": sorted(rows, key=lambda x: (-x["dollars_cents"], x["reason"]))[:top],
        "trend_by_month": trend,
    }
