"""Claims repository: intake, which claims are due, and recording what a check read.

Recording rules (DESIGN §5): every check is an observation (history); a changed status is a recorded
transition; re-reading an unchanged claim never duplicates a denial; rejections (front-end, never
adjudicated) and denials (adjudicated, CARC) are separate kinds from the moment they are seen; CO-45 and
PR-1/2/3 are normal adjudication, not denials. Events go to the outbox in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, delete, select
from sqlalchemy.orm import Session

from core import codes
from core.claims import ClaimStatusResult
from store import cases, events
from store.models import (
    Adjustment,
    AuditEntry,
    CarcCode,
    CheckFailure,
    Claim,
    ClaimLine,
    Denial,
    Evidence,
    Organization,
    Payer,
    PortalAccount,
    Provider,
    RarcCode,
    StatusCategoryCode,
    StatusObservation,
    StatusTransition,
)
from store.workflow.categorize import Categorizer, default_categorizer


def cents(d: Decimal | None) -> int | None:
    return None if d is None else int((d * 100).to_integral_value())


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything we store is UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def load_code_tables(s: Session) -> None:
    """Load the shipped CARC/RARC/277-category lists into the database (idempotent)."""
    if s.scalar(select(CarcCode.code).limit(1)) is None:
        s.add_all(CarcCode(code=k, description=v["description"], status=v["status"])
                  for k, v in codes.carc().items())
        s.add_all(RarcCode(code=k, description=v["description"], status=v["status"])
                  for k, v in codes.rarc().items())
        s.add_all(StatusCategoryCode(code=k, description=v) for k, v in codes.status_categories().items())


def claims_due(s: Session, *, now: datetime, org_id: int | None = None, payer_ids: list[int] | None = None,
               limit: int | None = None) -> list[Claim]:
    """Claims whose next check time has come: not finalized (or finalized with an appeal open)."""
    q = select(Claim).where(Claim.next_check_at.is_not(None), Claim.next_check_at <= now)
    if org_id is not None:
        q = q.where(Claim.org_id == org_id)
    if payer_ids is not None:
        q = q.where(Claim.payer_id.in_(payer_ids))
    q = q.order_by(Claim.next_check_at, Claim.id)
    if limit:
        q = q.limit(limit)
    return list(s.scalars(q))


def first_check_at(submitted_on: date, payer: Payer) -> datetime:
    """A new claim is first checked once the payer's typical days to respond have passed."""
    d = submitted_on + timedelta(days=payer.typical_days_to_pay)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def fingerprint(r: ClaimStatusResult) -> str:
    body = r.model_dump(mode="json", exclude={"observed_at", "evidence_ref", "raw", "raw_label", "claim_ref",
                                               "shown_member_id", "shown_dos_from", "shown_dos_to",
                                               "shown_claim_number", "shown_billed"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def last_fingerprint(s: Session, claim_id: int) -> str | None:
    """The fingerprint of the claim's latest observation (None if never read)."""
    return s.scalar(select(StatusObservation.fingerprint).where(StatusObservation.claim_id == claim_id)
                    .order_by(StatusObservation.id.desc()).limit(1))


def denial_keys(r: ClaimStatusResult, categorizer: Categorizer | None = None) -> dict[tuple, dict]:
    """(line_key, kind, group, reason) -> details, for everything in `r` that is a denial or rejection
    (normal adjudication, e.g. CO-45 or PR-2, is not: store/workflow/categorize.py)."""
    categorizer = categorizer or default_categorizer()
    out: dict[tuple, dict] = {}
    if r.is_rejection:
        out[(0, "rejection", "", r.status_code or r.status_category)] = {
            "rarcs": [], "amount": cents(r.billed) or 0, "text": r.rejection_reason}
        return out
    for line in r.lines:
        for a in line.adjustments:
            if categorizer.is_normal(a.group, a.carc):
                continue
            key = (line.line_no, "denial", a.group, a.carc)
            prev = out.get(key)
            amount = (prev["amount"] if prev else 0) + (cents(a.amount) or 0)
            out[key] = {"rarcs": sorted(set(line.rarcs)), "amount": amount, "text": a.raw}
    return out


@dataclass
class RecordOutcome:
    observation_id: int
    changed: bool
    transition: tuple[str | None, str] | None = None
    new_denials: list[int] = field(default_factory=list)
    resolved_denials: list[int] = field(default_factory=list)
    new_cases: list[int] = field(default_factory=list)


def record_result(s: Session, claim: Claim, r: ClaimStatusResult, *, account_id: int | None = None,
                  sweep_run_id: int | None = None, recheck_hours: float = 24) -> RecordOutcome:
    """Store one check of `claim`. The caller commits (one transaction with the outbox events)."""
    claim.last_error = None  # read: whatever failed before is behind it
    fp = fingerprint(r)
    changed = last_fingerprint(s, claim.id) != fp
    obs = StatusObservation(
        org_id=claim.org_id, claim_id=claim.id, observed_at=r.observed_at, source=r.portal_key,
        account_id=account_id, sweep_run_id=sweep_run_id, status_category=r.status_category,
        status_code=r.status_code, raw_label=r.raw_label, fingerprint=fp, changed=changed,
        result=r.model_dump(mode="json", exclude={"shown_member_id"}), evidence_ref=r.evidence_ref)
    s.add(obs)
    s.flush()
    out = RecordOutcome(observation_id=obs.id, changed=changed)

    if (claim.status_category, claim.status_code) != (r.status_category, r.status_code):
        s.add(StatusTransition(org_id=claim.org_id, claim_id=claim.id, observation_id=obs.id,
                               from_category=claim.status_category, from_code=claim.status_code,
                               to_category=r.status_category, to_code=r.status_code, at=r.observed_at))
        events.emit(s, claim.org_id, events.ClaimStatusChanged(
            claim_id=claim.id, claim=claim.external_id, from_category=claim.status_category,
            to_category=r.status_category, status_code=r.status_code, observed_at=r.observed_at))
        out.transition = (claim.status_category, r.status_category)

    claim.status_category, claim.status_code = r.status_category, r.status_code
    claim.finalized = r.finalized
    if r.payer_claim_number:
        claim.payer_claim_number = r.payer_claim_number
    claim.fresh_as_of = r.observed_at
    claim.last_checked_at = r.observed_at
    claim.next_check_at = (None if claim.finalized and not claim.appeal_open
                           else r.observed_at + timedelta(hours=recheck_hours))

    if changed:
        s.execute(delete(Adjustment).where(Adjustment.claim_id == claim.id))
        for line in r.lines:
            for a in line.adjustments:
                s.add(Adjustment(org_id=claim.org_id, claim_id=claim.id, observation_id=obs.id,
                                 line_no=line.line_no, group_code=a.group, carc=a.carc,
                                 amount_cents=cents(a.amount), rarcs=list(line.rarcs)))
        by_no = {ln.line_no: ln for ln in claim.lines}
        for line in r.lines:
            if line.line_no in by_no:
                by_no[line.line_no].allowed_cents = cents(line.allowed)
                by_no[line.line_no].paid_cents = cents(line.paid)

    seen = denial_keys(r)
    existing = {(d.line_key, d.kind, d.group_code, d.reason_code): d
                for d in s.scalars(select(Denial).where(Denial.claim_id == claim.id))}
    for k, info in seen.items():
        d = existing.get(k)
        if d is None:
            d = Denial(org_id=claim.org_id, claim_id=claim.id, line_key=k[0], kind=k[1], group_code=k[2],
                       reason_code=k[3], rarcs=info["rarcs"], amount_cents=info["amount"],
                       reason_text=info["text"], first_seen_at=r.observed_at, last_seen_at=r.observed_at)
            s.add(d)
            s.flush()
            out.new_denials.append(d.id)
        else:
            d.last_seen_at = r.observed_at
            d.amount_cents = info["amount"]
            if not d.open:  # the same denial came back (e.g. re-denied): reopen, no duplicate row
                d.open, d.closed_at = True, None
    for k, d in existing.items():
        if k not in seen and d.open:
            d.open, d.closed_at = False, r.observed_at
            out.resolved_denials.append(d.id)  # the reason is gone from the read; its case stays (store/cases.py)
    s.flush()
    out.new_cases = cases.intake(s, claim, r, seen)
    return out


def get_or_create_org(s: Session, external_id: str, name: str, time_zone: str | None = None) -> Organization:
    """The organization (created on first sight); `time_zone`: the practice's IANA zone, checked."""
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time_zone: {time_zone!r} is not an IANA time zone") from None
    org = s.scalar(select(Organization).where(Organization.external_id == external_id))
    if org is None:
        org = Organization(external_id=external_id, name=name, created_at=utcnow(),
                           **({"time_zone": time_zone} if time_zone else {}))
        s.add(org)
        s.flush()
    elif time_zone is not None:
        org.time_zone = time_zone
    return org


def get_or_create_provider(s: Session, org: Organization, npi: str, name: str) -> Provider:
    p = s.scalar(select(Provider).where(Provider.org_id == org.id, Provider.npi == npi))
    if p is None:
        p = Provider(org_id=org.id, npi=npi, name=name)
        s.add(p)
        s.flush()
    return p


def add_claim(s: Session, *, org: Organization, payer: Payer, external_id: str, member_id: str,
              billing_npi: str, dos_from: date, dos_to: date, submitted_on: date,
              lines: list[dict], payer_claim_number: str | None = None, patient_dob: date | None = None,
              patient_first_name: str | None = None, patient_last_name: str | None = None) -> Claim:
    """Intake of a claim to track (idempotent on (org, external_id): an existing claim is returned)."""
    existing = s.scalar(select(Claim).where(Claim.org_id == org.id, Claim.external_id == external_id))
    if existing is not None:
        return existing
    provider_id = s.scalar(select(Provider.id).where(Provider.org_id == org.id, Provider.npi == billing_npi))
    c = Claim(org_id=org.id, payer_id=payer.id, provider_id=provider_id, external_id=external_id,
              member_id=member_id,
              billing_npi=billing_npi, dos_from=dos_from, dos_to=dos_to, submitted_on=submitted_on,
              payer_claim_number=payer_claim_number, patient_dob=patient_dob,
              patient_first_name=patient_first_name, patient_last_name=patient_last_name, billed_cents=sum(ln["billed_cents"] for ln in lines),
              next_check_at=first_check_at(submitted_on, payer))
    c.lines = [ClaimLine(line_no=ln["line_no"], cpt=ln["cpt"], modifiers=ln.get("modifiers", []),
                         units=ln.get("units", 1), billed_cents=ln["billed_cents"]) for ln in lines]
    s.add(c)
    s.flush()
    return c


# ---------------------------------------------------------------- read helpers for the agent and the CLI
def claims_by_ids(s: Session, ids: list[int]) -> list[Claim]:
    return list(s.scalars(select(Claim).where(Claim.id.in_(ids)).order_by(Claim.id)))


def claim_ids(s: Session, external_id: str | None = None) -> list[int]:
    q = select(Claim.id).order_by(Claim.id)
    if external_id is not None:
        q = q.where(Claim.external_id == external_id)
    return list(s.scalars(q))


def all_claims(s: Session) -> list[Claim]:
    return list(s.scalars(select(Claim).order_by(Claim.id)))


def payers_by_id(s: Session) -> dict[int, Payer]:
    return {p.id: p for p in s.scalars(select(Payer))}


def orgs_by_id(s: Session) -> dict[int, Organization]:
    return {o.id: o for o in s.scalars(select(Organization))}


def portal_accounts(s: Session) -> list[PortalAccount]:
    return list(s.scalars(select(PortalAccount).order_by(PortalAccount.id)))


def open_denials(s: Session, kind: str | None = None) -> list[Denial]:
    q = select(Denial).where(Denial.open.is_(True))
    if kind:
        q = q.where(Denial.kind == kind)
    return list(s.scalars(q))


def payer_for(s: Session, org_id: int, key: str) -> Payer | None:
    return s.scalar(select(Payer).where(Payer.org_id == org_id, Payer.key == key))


def evidence_older_than(s: Session, cutoff: datetime) -> list[Evidence]:
    return list(s.scalars(select(Evidence).where(Evidence.observed_at < cutoff)))


def audit(s: Session, *, org_id: int | None, actor: str, action: str, subject: str,
          at: datetime | None = None) -> None:
    """Record a PHI read (or an evidence export). The caller commits."""
    s.add(AuditEntry(org_id=org_id, at=at or utcnow(), actor=actor, action=action, subject=subject))


def evidence_for_claim(s: Session, claim_id: int) -> list[Evidence]:
    return list(s.scalars(select(Evidence).where(Evidence.claim_id == claim_id)
                          .order_by(Evidence.observed_at, Evidence.id)))


def evidence_by_ref(s: Session, ref: str) -> Evidence | None:
    return s.scalar(select(Evidence).where(Evidence.ref == ref))


def recent_fingerprints(s: Session, claim_id: int, n: int) -> list[str]:
    return list(s.scalars(select(StatusObservation.fingerprint).where(StatusObservation.claim_id == claim_id)
                          .order_by(StatusObservation.id.desc()).limit(n)))


def canary_candidate(s: Session, acct: PortalAccount, exclude: set[int] = frozenset()) -> Claim | None:
    """A settled claim this account has read: finalized, adjudicated (paid or denied, not a rejection),
    no appeal open, oldest status first (the least likely to move)."""
    q = (select(Claim).join(Payer, Payer.id == Claim.payer_id)
         .where(Claim.org_id == acct.org_id, Payer.portal_key == acct.portal_key, Claim.finalized.is_(True),
                Claim.appeal_open.is_(False), Claim.status_category.in_(("F1", "F2", "F4")),
                Claim.fresh_as_of.is_not(None))
         .order_by(Claim.fresh_as_of, Claim.id).limit(20))
    for c in s.scalars(q):
        if c.id not in exclude:
            return c
    return None


def stale_claims(s: Session, *, older_than: datetime) -> dict[int, int]:
    """Unfinished claims per org whose last successful read is older than `older_than` (or never)."""
    from sqlalchemy import func, or_

    rows = s.execute(select(Claim.org_id, func.count()).where(
        Claim.finalized.is_(False), or_(Claim.fresh_as_of.is_(None), Claim.fresh_as_of < older_than))
        .group_by(Claim.org_id))
    return {org: n for org, n in rows}


def account_health(s: Session, *, now: datetime, stale_after: timedelta) -> list[dict]:
    """One row per portal account: logins, checks, failures, circuit, drift, canary, attention, and the
    freshness of the claims it serves (unfinished claims whose last successful read is older than
    `stale_after`, or that were never read)."""
    from sqlalchemy import func, or_

    stale_cut = now - stale_after
    fresh = {}
    for org_id, portal, total, stale, oldest in s.execute(
            select(Claim.org_id, Payer.portal_key, func.count(),
                   func.sum(case((or_(Claim.fresh_as_of.is_(None), Claim.fresh_as_of < stale_cut), 1), else_=0)),
                   func.min(Claim.fresh_as_of))
            .join(Payer, Payer.id == Claim.payer_id).where(Claim.finalized.is_(False))
            .group_by(Claim.org_id, Payer.portal_key)):
        fresh[(org_id, portal)] = (total, int(stale or 0), as_utc(oldest))
    canary_ids = {a.canary_claim_id for a in s.scalars(select(PortalAccount)) if a.canary_claim_id}
    canary_refs = {cid: ext for cid, ext in s.execute(
        select(Claim.id, Claim.external_id).where(Claim.id.in_(canary_ids)))} if canary_ids else {}
    rows = []
    for a in s.scalars(select(PortalAccount).order_by(PortalAccount.portal_key, PortalAccount.org_id,
                                                      PortalAccount.id)):
        total, stale, oldest = fresh.get((a.org_id, a.portal_key), (0, 0, None))
        drift = a.drift_at is not None and (a.last_check_at is None or as_utc(a.drift_at) >= as_utc(a.last_check_at))
        attention = a.attention_reason if a.status == "needs_attention" else None
        if drift and not attention:
            attention = f"drift: {a.drift_reason}"
        elif a.circuit_state == "open" and not attention:
            attention = "circuit open"
        elif a.canary_result in ("mismatch", "failed") and not attention:
            attention = f"canary {a.canary_result}"
        rows.append({
            "account_id": a.id, "org_id": a.org_id, "portal": a.portal_key, "username": a.username,
            "status": a.status, "last_login_at": as_utc(a.last_login_at), "last_check_at": as_utc(a.last_check_at),
            "last_failure_at": as_utc(a.last_failure_at), "consecutive_failures": a.consecutive_failures or 0,
            "circuit": a.circuit_state, "drift": drift, "drift_at": as_utc(a.drift_at),
            "drift_evidence_ref": a.drift_evidence_ref,
            "canary_claim": canary_refs.get(a.canary_claim_id), "canary_trusted": a.canary_fingerprint is not None,
            "canary_result": a.canary_result, "canary_checked_at": as_utc(a.canary_checked_at),
            "open_claims": total, "stale_claims": stale, "oldest_fresh_as_of": oldest,
            "needs_attention": attention,
        })
    return rows


def pin_canary(s: Session, acct: PortalAccount, claim: Claim | None) -> None:
    """A human names the account's canary: its latest reading is the known status (None: let the agent pick)."""
    if claim is None:
        acct.canary_claim_id, acct.canary_fingerprint, acct.canary_pinned = None, None, False
        return
    fp = last_fingerprint(s, claim.id)
    if fp is None:
        raise ValueError("the canary claim has never been read: check it first")
    acct.canary_claim_id, acct.canary_fingerprint, acct.canary_pinned = claim.id, fp, True
    acct.canary_result = None


def observation_status_by_evidence(s: Session, claim_id: int) -> dict[str, str]:
    """evidence ref -> the status read with it (category/code), for a claim's evidence list."""
    rows = s.execute(select(StatusObservation.evidence_ref, StatusObservation.status_category,
                            StatusObservation.status_code)
                     .where(StatusObservation.claim_id == claim_id, StatusObservation.evidence_ref.is_not(None)))
    return {ref: f"{cat}/{code or '-'}" for ref, cat, code in rows}


# ---------------------------------------------------------------- what a check that failed leaves
def record_check_failure(s: Session, claim: Claim, *, sweep_run_id: int | None, at: datetime, error_type: str,
                         message: str, retryable: bool, evidence_ref: str | None) -> CheckFailure:
    """A check of `claim` that failed, with its reason (no PHI) and the page as evidence. The claim keeps its
    last status and is due again at the next sweep, whatever its schedule (an open claim, or an appeal)."""
    row = CheckFailure(org_id=claim.org_id, claim_id=claim.id, sweep_run_id=sweep_run_id, at=at,
                       error_type=error_type, message=message[:2000], retryable=retryable, evidence_ref=evidence_ref)
    s.add(row)
    claim.last_error = error_type
    if not claim.finalized or claim.appeal_open:
        due = as_utc(claim.next_check_at)
        claim.next_check_at = at if due is None or due > at else claim.next_check_at
    return row


def add_evidence(s: Session, *, ref: str, portal_key: str, kind: str, observed_at: datetime, reason: str | None,
                 url_path: str | None, html_sha256: str, screenshot_sha256: str, screenshot_type: str,
                 blob_path: str, org_id: int | None = None, claim_id: int | None = None,
                 account_id: int | None = None) -> Evidence:
    """The row of a page kept as evidence (its encrypted blob written by the agent's evidence store)."""
    row = Evidence(ref=ref, org_id=org_id, claim_id=claim_id, account_id=account_id, portal_key=portal_key,
                   observed_at=observed_at, kind=kind, reason=reason, url_path=url_path, html_sha256=html_sha256,
                   screenshot_sha256=screenshot_sha256, screenshot_type=screenshot_type, blob_path=blob_path)
    s.add(row)
    return row


def forget_evidence(s: Session, rows: list[Evidence]) -> None:
    """Evidence rows past their retention (their blobs already deleted by the evidence store)."""
    for row in rows:
        s.delete(row)

