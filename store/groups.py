"""Groups of similar denials: the same payer, main reason (CARC) and procedure (CPT of the reason's line),
detected within `window_days` of the group's first member. One fix or one batch appeal serves them all, so
a group shows its count and dollars, and working the group works each open member (all or none: a move
one member may not make is refused for the group, naming that member's case and both states).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import work
from store.models import Appeal, Claim, ClaimLine, DenialCase, DenialGroup, Person
from store.workflow.states import IllegalTransition, State, check_move

WINDOW_DAYS = 30


def join_group(s: Session, case: DenialCase, claim: Claim, *, window_days: int = WINDOW_DAYS) -> DenialGroup | None:
    """Put a new denial case in its group (made when it is the first of its kind in the window)."""
    if case.kind != "denial" or not case.reasons:
        return None
    main = case.reasons[0]
    cpt = s.scalar(select(ClaimLine.cpt).where(ClaimLine.claim_id == claim.id, ClaimLine.line_no == main["line"]))
    if cpt is None:  # a claim-level adjustment: its first line's procedure
        cpt = s.scalar(select(ClaimLine.cpt).where(ClaimLine.claim_id == claim.id).order_by(ClaimLine.line_no)
                       .limit(1)) or "-"
    group = s.scalar(select(DenialGroup).where(
        DenialGroup.org_id == case.org_id, DenialGroup.payer_id == claim.payer_id, DenialGroup.code == main["code"],
        DenialGroup.cpt == cpt, DenialGroup.opened_on >= case.detected_on - timedelta(days=window_days),
        DenialGroup.opened_on <= case.detected_on).order_by(DenialGroup.opened_on.desc()).limit(1))
    if group is None:
        group = DenialGroup(org_id=case.org_id, payer_id=claim.payer_id, code=main["code"], cpt=cpt,
                            opened_on=case.detected_on, window_days=window_days)
        s.add(group)
        s.flush()
    case.group_id = group.id
    return group


@dataclass(frozen=True)
class GroupSummary:
    group: DenialGroup
    members: int
    open_members: int
    amount_cents: int  # dollars denied across the members
    open_amount_cents: int


def summary(s: Session, group: DenialGroup) -> GroupSummary:
    open_ = DenialCase.resolved_at.is_(None)
    n, n_open, amount, open_amount = s.execute(
        select(func.count(), func.count().filter(open_), func.coalesce(func.sum(DenialCase.amount_cents), 0),
               func.coalesce(func.sum(DenialCase.amount_cents).filter(open_), 0))
        .where(DenialCase.group_id == group.id)).one()
    return GroupSummary(group, n, n_open, int(amount), int(open_amount))


def open_members(s: Session, group: DenialGroup) -> list[DenialCase]:
    return list(s.scalars(select(DenialCase).where(DenialCase.group_id == group.id, DenialCase.resolved_at.is_(None))
                          .order_by(DenialCase.id)))


def _check_all(members: list[DenialCase], target: str, reason: str | None = None) -> None:
    if not members:
        raise work.WorkError("group: no open member")
    for c in members:
        try:
            check_move(c.kind, c.state, target, reason=reason)
        except IllegalTransition as e:
            raise work.WorkError(f"group: case {c.id}: {e}") from None


def assign(s: Session, group: DenialGroup, person: Person, *, at: datetime, actor: str) -> list[DenialCase]:
    """Give every open member to one person (who must hold each member's owner role)."""
    members = open_members(s, group)
    if not members:
        raise work.WorkError("group: no open member")
    for c in members:
        if c.owner_role not in person.roles:
            raise work.WorkError(f"person: does not hold the owner role {c.owner_role!r} of case {c.id}")
    for c in members:
        work.assign(s, c, person, at=at, actor=actor)
    return members


def move(s: Session, group: DenialGroup, target: str, *, at: datetime, actor: str, reason: str | None = None,
         note: str | None = None) -> list[DenialCase]:
    """Move every open member (e.g. corrected and resubmitted together), or none."""
    members = open_members(s, group)
    _check_all(members, target, reason)
    for c in members:
        work.move(s, c, target, at=at, actor=actor, reason=reason, note=note)
    return members


def file_appeal(s: Session, group: DenialGroup, *, channel: str, filed_on: date, follow_up_days: int = 30,
                at: datetime, actor: str) -> list[Appeal]:
    """One batch appeal: an appeal record for every open member, or none."""
    members = open_members(s, group)
    _check_all(members, State.APPEALED.value)
    return [work.file_appeal(s, c, channel=channel, filed_on=filed_on, follow_up_days=follow_up_days, at=at,
                             actor=actor) for c in members]
