"""Denial cases on intake: a denial or rejection read for a claim becomes (or updates) its case, categorized,
routed to an owner role and clocked in the same transaction as the read (shared/DESIGN.md §5).

One case per claim and kind (denial | rejection): a later read whose reasons differ (a CARC that changes
during rework) updates the case's reasons and keeps its category, owner, clocks and history; a read with
no denial leaves an open case open (closing is the work's decision, or the appeal's outcome). Every date
is computed here, when the denial arrives, in the organization's time zone: never later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.claims import ClaimStatusResult
from core.roles import Role
from store import events, groups, playbooks, queue, work
from store.models import CategoryOverride, Claim, Denial, DenialCase, Organization, Payer
from store.workflow.categorize import Categorizer, Category, default_categorizer
from store.workflow.clocks import (
    US_FEDERAL,
    BusinessCalendar,
    SlaPolicy,
    day_zero,
    work_clocks,
)
from store.workflow.routing import owner_role

AGENT = "agent"


@dataclass(frozen=True)
class Reason:
    """One denial reason of a case as read (no PHI): line, group, CARC (or 277 status code), RARCs, dollars."""

    line: int
    group: str
    code: str
    rarcs: tuple[str, ...]
    amount_cents: int

    def as_json(self) -> dict:
        return {"line": self.line, "group": self.group, "code": self.code, "rarcs": list(self.rarcs),
                "amount_cents": self.amount_cents}


def reason_label(x: dict) -> str:
    """A stored reason as people read it: 'CO-97'; a rejection's 277 status code alone: '33'."""
    return f"{x['group']}-{x['code']}".strip("-")


def reasons_of(seen: dict[tuple, dict]) -> dict[str, list[Reason]]:
    """repo.denial_keys(result) grouped by kind, largest dollars first (then line, group, code)."""
    out: dict[str, list[Reason]] = {}
    for (line, kind, group, code), info in seen.items():
        out.setdefault(kind, []).append(Reason(line, group, code, tuple(info["rarcs"]), int(info["amount"])))
    for reasons in out.values():
        reasons.sort(key=lambda x: (-x.amount_cents, x.line, x.group, x.code))
    return out


def intake(s: Session, claim: Claim, r: ClaimStatusResult, seen: dict[tuple, dict], *,
           categorizer: Categorizer | None = None, calendar: BusinessCalendar = US_FEDERAL,
           policy: SlaPolicy = SlaPolicy()) -> list[int]:
    """Open or update the claim's cases for what `r` shows (`seen`: repo.denial_keys(r)); link the denial
    rows to their case. Returns the ids of the cases opened. The caller commits."""
    by_kind = reasons_of(seen)
    if not by_kind:
        return []
    org = s.get(Organization, claim.org_id)
    categorizer = categorizer or categorizer_for(s, org)
    payer = s.get(Payer, claim.payer_id)
    opened: list[int] = []
    for kind, all_reasons in by_kind.items():
        # one case per claim, or per denied line where the organization works lines apart
        per_line = org.cases_per_line and kind == "denial"
        groups: dict[int, list[Reason]] = {}
        for x in all_reasons:
            groups.setdefault(x.line if per_line else 0, []).append(x)
        for line_key, reasons in sorted(groups.items()):
            case = s.scalar(select(DenialCase).where(DenialCase.claim_id == claim.id, DenialCase.kind == kind,
                                                     DenialCase.line_key == line_key))
            if case is None:
                case = _open(s, claim, r, kind, reasons, org, payer, categorizer, calendar, policy, line_key)
                opened.append(case.id)
            else:
                _update(s, case, claim, r, reasons)
            q = select(Denial).where(Denial.claim_id == claim.id, Denial.kind == kind, Denial.case_id.is_(None))
            for d in s.scalars(q.where(Denial.line_key == line_key) if line_key else q):
                d.case_id = case.id
    return opened


def categorizer_for(s: Session, org: Organization) -> Categorizer:
    """The default table with the organization's own rules over it (category_overrides)."""
    rows = s.scalars(select(CategoryOverride).where(CategoryOverride.org_id == org.id)
                     .order_by(CategoryOverride.id)).all()
    if not rows:
        return default_categorizer()
    return Categorizer([override_row(org, r) for r in rows])


def override_row(org: Organization, r: CategoryOverride) -> dict[str, str]:
    scope = f"org:{org.external_id}" + (f":payer:{r.payer_key}" if r.payer_key else "")
    return {"scope": scope, "carc": r.carc, "group": r.group_code, "rarc": r.rarc, "bucket": r.bucket,
            "severity": r.severity, "nature": r.nature, "preventable": "yes" if r.preventable else "no",
            "normal": "yes" if r.normal else "no", "deactivated": "", "note": r.note or ""}


def add_override(s: Session, org: Organization, *, carc: str, bucket: str, severity: str, nature: str,
                 preventable: bool, normal: bool = False, group: str = "", rarc: str = "", payer_key: str = "",
                 note: str | None = None) -> CategoryOverride:
    """An organization's own rule for a CARC (checked like a table row: a bad field is a TableError naming it)."""
    row = CategoryOverride(org_id=org.id, payer_key=payer_key, carc=carc, group_code=group, rarc=rarc,
                           bucket=bucket, severity=severity, nature=nature, preventable=preventable, normal=normal,
                           note=note)
    Categorizer([override_row(org, row)])  # validates
    s.add(row)
    s.flush()
    return row


def _category(kind: str, reasons: list[Reason], r: ClaimStatusResult, categorizer: Categorizer,
              org: Organization, payer: Payer) -> Category:
    if kind == "rejection":
        return categorizer.rejection(r.status_code)
    main = reasons[0]  # the reason with the most dollars decides
    return categorizer.categorize(main.group, main.code, main.rarcs, payer=payer.key, org=org.external_id)


def _open(s: Session, claim: Claim, r: ClaimStatusResult, kind: str, reasons: list[Reason], org: Organization,
          payer: Payer, categorizer: Categorizer, calendar: BusinessCalendar, policy: SlaPolicy,
          line_key: int = 0) -> DenialCase:
    category = _category(kind, reasons, r, categorizer, org, payer)
    detected = day_zero(r.observed_at, org.time_zone)
    # the payer's decision/notice date where the page shows one (the remittance date), else detection
    denial_date = r.check_date if kind == "denial" and r.check_date else detected
    hard = category.hard and kind == "denial"  # a rejection is always corrected and resubmitted
    clocks = work_clocks(detected=detected, denial_date=denial_date, hard=hard, clinical=category.clinical,
                         billed=Decimal(claim.billed_cents) / 100, policy=policy, calendar=calendar)
    appeal_deadline, tf_deadline, source = _hard_deadlines(kind, payer, claim, denial_date)
    role = owner_role(category.bucket, org.routing)
    case = DenialCase(
        org_id=claim.org_id, claim_id=claim.id, kind=kind, line_key=line_key, state="new",
        bucket=category.bucket.value, hard=hard, clinical=category.clinical, preventable=category.preventable,
        category_source=category.source, reasons=[x.as_json() for x in reasons],
        amount_cents=sum(x.amount_cents for x in reasons), time_zone=org.time_zone, detected_at=r.observed_at,
        detected_on=detected, denial_date=denial_date, work_by=clocks.work_by, appeal_by=clocks.appeal_by,
        peer_to_peer_by=clocks.peer_to_peer_by, escalations=_escalations(clocks),
        appeal_deadline=appeal_deadline, timely_filing_deadline=tf_deadline, deadline_source=source,
        owner_role=role.value, last_seen_at=r.observed_at)
    s.add(case)
    s.flush()
    groups.join_group(s, case, claim)
    queue.rescore(s, case, payer.id, r.observed_at)
    _history(s, case, r.observed_at, "created", None, kind, detail={"bucket": case.bucket, "source": case.category_source})
    _history(s, case, r.observed_at, "routed", None, role.value, detail={"bucket": case.bucket})
    created = events.RejectionCreated if kind == "rejection" else events.DenialCreated
    events.emit(s, case.org_id, created(
        **work.case_ref(case, claim), bucket=case.bucket, severity="hard" if case.hard else "soft",
        clinical=case.clinical, preventable=case.preventable, reasons=case.reasons, amount_cents=case.amount_cents,
        owner_role=case.owner_role, detected_on=case.detected_on, denial_date=case.denial_date,
        work_by=case.work_by, appeal_by=case.appeal_by, peer_to_peer_by=case.peer_to_peer_by,
        appeal_deadline=case.appeal_deadline, timely_filing_deadline=case.timely_filing_deadline))
    person = work.pick_person(s, org, role.value, payer_id=payer.id, main_code=reasons[0].code)
    if person is not None:
        work.assign(s, case, person, at=r.observed_at, actor=AGENT, claim=claim)
    else:
        events.emit(s, case.org_id, events.DenialRouted(**work.case_ref(case, claim), owner_role=case.owner_role,
                                                        owner_person_id=None, by=AGENT))
    return case


def _update(s: Session, case: DenialCase, claim: Claim, r: ClaimStatusResult, reasons: list[Reason]) -> None:
    case.last_seen_at = r.observed_at
    now = [x.as_json() for x in reasons]
    if now != case.reasons:
        before = ",".join(map(reason_label, case.reasons))
        after = ",".join(map(reason_label, now))
        case.reasons = now
        case.amount_cents = sum(x.amount_cents for x in reasons)
        queue.rescore(s, case, claim.payer_id, r.observed_at)
        _history(s, case, r.observed_at, "reasons_changed", before[:64], after[:64])
        events.emit(s, case.org_id, events.DenialReasonsChanged(**work.case_ref(case, claim), reasons=now,
                                                                amount_cents=case.amount_cents))


def _escalations(clocks) -> list[dict]:
    out = []
    for due, why in ((clocks.work_by, "work SLA passed"), (clocks.appeal_by, "appeal SLA passed"),
                     (clocks.peer_to_peer_by, "peer-to-peer SLA passed")):
        if due is not None:
            out.append({"on": (due + timedelta(days=1)).isoformat(), "to": Role.SUPERVISOR.value, "why": why})
    first, *rest = clocks.escalations
    out.append({"on": first.isoformat(), "to": Role.SUPERVISOR.value, "why": "unresolved 14 days"})
    out += [{"on": d.isoformat(), "to": Role.MANAGER.value, "why": "unresolved 30 days"} for d in rest]
    return sorted(out, key=lambda e: e["on"])


def _hard_deadlines(kind: str, payer: Payer, claim: Claim, denial_date: date) -> tuple[date | None, date | None, str]:
    """The payer's playbook windows (store/playbooks.py): the appeal window for a denial (its notice: the
    denial date), timely filing for both kinds (a corrected claim or a resubmitted rejection must still be
    filed in time; the date of service is the claim's first)."""
    appeal_w = playbooks.appeal_window(payer) if kind == "denial" else None
    tf_w = playbooks.timely_filing_window(payer)
    appeal = appeal_w.last_day(notice_date=denial_date, service_date=claim.dos_from) if appeal_w else None
    tf = tf_w.last_day(notice_date=denial_date, service_date=claim.dos_from) if tf_w else None
    parts = [p for p in (playbooks.describe(appeal_w, "appeal"), playbooks.describe(tf_w, "timely filing")) if p]
    if not parts:
        return None, None, "no payer deadline on file"
    origin = f"{payer.playbook_row}: " if payer.playbook_row else ""
    return appeal, tf, "; ".join(parts) + (f" ({origin}{payer.playbook_source})" if payer.playbook_source else "")


def _history(s: Session, case: DenialCase, at: datetime, kind: str, before: str | None, after: str | None,
             actor: str = AGENT, detail: dict | None = None) -> None:
    work.history(s, case, at, kind, before, after, actor, detail)


def intake_counts(s: Session) -> dict[str, int]:
    """How many cases the store holds by kind, and how many lack a category, an owner or a clock (the demo's
    summary: all three must be 0)."""
    cases = s.scalars(select(DenialCase)).all()
    return {
        "denial": sum(1 for c in cases if c.kind == "denial"),
        "rejection": sum(1 for c in cases if c.kind == "rejection"),
        "uncategorized": sum(1 for c in cases if not c.bucket or not c.category_source),
        "unrouted": sum(1 for c in cases if not c.owner_role),
        "assigned": sum(1 for c in cases if c.owner_person_id is not None),
        "unclocked": sum(1 for c in cases if c.detected_on is None or (c.work_by is None and c.appeal_by is None)
                         or not c.escalations),
    }
