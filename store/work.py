"""Working denial cases: an organization's people, routing a case to one of them, the work states, appeals.
Every (re)assignment and every move is kept in the case's history (denial_case_history). Bad input is a
WorkError naming the field; nothing stored changes then. The caller commits.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import events, queue
from store.models import Appeal, CaseEvent, Claim, DenialCase, Organization, Person
from store.workflow.routing import RoutingError, parse_role
from store.workflow.states import OUTCOMES, IllegalTransition, State, check_move

STRATEGIES = ("least_open", "same_payer_carc")
APPEAL_CHANNELS = ("portal", "fax", "mail")


class WorkError(ValueError):
    """A request the workflow refuses; the message names the field (and both states for a move)."""


def case_ref(case: DenialCase, claim: Claim | None = None) -> dict:
    """The fields every case event carries (the claim is the PMS's own id: no PHI)."""
    return {"case_id": case.id, "claim_id": case.claim_id, "kind": case.kind,
            "claim": (claim or case_claim(case)).external_id}


def case_claim(case: DenialCase) -> Claim:
    from sqlalchemy.orm import object_session

    return object_session(case).get(Claim, case.claim_id)


def history(s: Session, case: DenialCase, at: datetime, kind: str, before: str | None, after: str | None,
            actor: str, detail: dict | None = None) -> None:
    s.add(CaseEvent(org_id=case.org_id, case_id=case.id, at=at, kind=kind, from_value=before, to_value=after,
                    actor=actor, detail=detail or {}))


# ---------------------------------------------------------------------- people and routing
def add_person(s: Session, org: Organization, name: str, roles: list[str], *, at: datetime) -> Person:
    if not name.strip():
        raise WorkError("name: empty")
    if not roles:
        raise WorkError("roles: a person needs at least one role")
    try:
        parsed = sorted({parse_role(r, "roles").value for r in roles})
    except RoutingError as e:
        raise WorkError(str(e)) from None
    p = Person(org_id=org.id, name=name.strip(), roles=parsed, active=True, created_at=at)
    s.add(p)
    s.flush()
    return p


def people(s: Session, org_id: int, *, role: str | None = None, active_only: bool = True) -> list[Person]:
    q = select(Person).where(Person.org_id == org_id).order_by(Person.id)
    if active_only:
        q = q.where(Person.active.is_(True))
    return [p for p in s.scalars(q) if role is None or role in p.roles]


def set_routing(org: Organization, routing: dict[str, str], strategy: str | None = None) -> None:
    """An organization's bucket -> role table (over the defaults) and how a person of the role is chosen."""
    from store.workflow.categorize import Bucket

    for bucket, role in routing.items():
        if bucket not in {b.value for b in Bucket}:
            raise WorkError(f"routing: {bucket!r} is not a bucket")
        try:
            parse_role(role, f"routing.{bucket}")
        except RoutingError as e:
            raise WorkError(str(e)) from None
    if strategy is not None and strategy not in STRATEGIES:
        raise WorkError(f"routing_strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    org.routing = dict(routing)
    if strategy is not None:
        org.routing_strategy = strategy


def pick_person(s: Session, org: Organization, role: str, *, payer_id: int, main_code: str | None) -> Person | None:
    """Who of `role` gets a new case: the one with the least open work (then the lowest id), or, with the
    `same_payer_carc` strategy, whoever was given the same payer + reason last (if still active in the role)."""
    team = people(s, org.id, role=role)
    if not team:
        return None
    if org.routing_strategy == "same_payer_carc" and main_code:
        from store.models import Claim

        recent = s.scalars(select(DenialCase).join(Claim, Claim.id == DenialCase.claim_id)
                           .where(DenialCase.org_id == org.id, Claim.payer_id == payer_id,
                                  DenialCase.owner_person_id.is_not(None))
                           .order_by(DenialCase.detected_at.desc(), DenialCase.id.desc()).limit(50))
        ids = {p.id for p in team}
        for c in recent:
            if c.reasons and c.reasons[0]["code"] == main_code and c.owner_person_id in ids:
                return next(p for p in team if p.id == c.owner_person_id)
    load = dict(s.execute(select(DenialCase.owner_person_id, func.count()).where(
        DenialCase.owner_person_id.in_([p.id for p in team]), DenialCase.resolved_at.is_(None))
        .group_by(DenialCase.owner_person_id)).all())
    return min(team, key=lambda p: (load.get(p.id, 0), p.id))


def assign(s: Session, case: DenialCase, person: Person, *, at: datetime, actor: str,
           claim: Claim | None = None) -> None:
    """Give the case to a person who holds its owner role (a reassignment too); kept in the history."""
    if person.org_id != case.org_id:
        raise WorkError("person: not of the case's organization")
    if not person.active:
        raise WorkError("person: inactive")
    if case.owner_role not in person.roles:
        raise WorkError(f"person: does not hold the case's owner role {case.owner_role!r}")
    if case.state == State.NEW:
        _move(s, case, State.ASSIGNED, at=at, actor=actor)
    elif case.state in (State.WON, State.PARTIALLY_WON, State.WRITTEN_OFF):
        raise WorkError(f"case: it is {case.state} (final)")
    before = case.owner_person_id
    case.owner_person_id = person.id
    history(s, case, at, "assigned", None if before is None else str(before), str(person.id), actor)
    events.emit(s, case.org_id, events.DenialRouted(**case_ref(case, claim), owner_role=case.owner_role,
                                                    owner_person_id=person.id, by=actor))


def reroute(s: Session, case: DenialCase, role: str, *, at: datetime, actor: str) -> None:
    """Send the case to another role's queue (its person is cleared); kept in the history."""
    try:
        new = parse_role(role, "role").value
    except RoutingError as e:
        raise WorkError(str(e)) from None
    before = case.owner_role
    case.owner_role, case.owner_person_id = new, None
    history(s, case, at, "routed", before, new, actor)
    events.emit(s, case.org_id, events.DenialRouted(**case_ref(case), owner_role=new, owner_person_id=None,
                                                    by=actor))


# ---------------------------------------------------------------------- states
def _move(s: Session, case: DenialCase, target: State, *, at: datetime, actor: str, reason: str | None = None,
          note: str | None = None) -> None:
    try:
        to = check_move(case.kind, case.state, target.value, reason=reason)
    except IllegalTransition as e:
        raise WorkError(str(e)) from None
    before = case.state
    case.state = to.value
    if to in (State.WON, State.PARTIALLY_WON, State.WRITTEN_OFF):
        case.resolved_at, case.resolution, case.resolution_note = at, reason or to.value, note
    history(s, case, at, "state", before, to.value, actor, {"reason": reason} if reason else None)
    if to in OUTCOMES:  # a decided case changes the odds of its payer x bucket: their open cases move
        queue.refresh(s, now=at, org_id=case.org_id, payer_id=case_claim(case).payer_id, bucket=case.bucket)
    if case.resolved_at is not None:
        events.emit(s, case.org_id, events.DenialResolved(**case_ref(case), state=case.state,
                                                          resolution=case.resolution, by=actor))


def move(s: Session, case: DenialCase, target: str, *, at: datetime, actor: str, reason: str | None = None,
         note: str | None = None) -> None:
    """Move the case to `target` (a WorkError naming both states when the workflow does not allow it).
    Appeals and their outcomes go through file_appeal / decide_appeal, which keep their record."""
    try:
        state = State(target)
    except ValueError:
        raise WorkError(f"state: {target!r} is not a state") from None
    if state is State.APPEALED:
        raise WorkError("state: an appeal is filed with its level, channel and dates (file_appeal)")
    if state in OUTCOMES and case.state == State.APPEALED:
        raise WorkError("state: an appeal's outcome is recorded with the appeal (decide_appeal)")
    _move(s, case, state, at=at, actor=actor, reason=reason, note=note)


def file_appeal(s: Session, case: DenialCase, *, channel: str, filed_on: date, follow_up_days: int = 30,
                at: datetime, actor: str) -> Appeal:
    """Record an appeal (the next level after a lost one) and move the case to appealed."""
    if channel not in APPEAL_CHANNELS:
        raise WorkError(f"channel: {channel!r} is not one of {', '.join(APPEAL_CHANNELS)}")
    if follow_up_days < 1:
        raise WorkError("follow_up_days: at least 1")
    _move(s, case, State.APPEALED, at=at, actor=actor)
    level = (s.scalar(select(func.max(Appeal.level)).where(Appeal.case_id == case.id)) or 0) + 1
    appeal = Appeal(org_id=case.org_id, case_id=case.id, level=level, channel=channel, filed_on=filed_on,
                    follow_up_on=filed_on + timedelta(days=follow_up_days), filed_by=actor)
    s.add(appeal)
    s.flush()
    return appeal


def decide_appeal(s: Session, case: DenialCase, outcome: str, *, decided_on: date, recovered_cents: int | None,
                  at: datetime, actor: str) -> Appeal:
    """The payer's answer to the open appeal: won, partially_won or lost (the case moves with it)."""
    if outcome not in (State.WON, State.PARTIALLY_WON, State.LOST):
        raise WorkError(f"outcome: {outcome!r} is not won, partially_won or lost")
    if recovered_cents is not None and recovered_cents < 0:
        raise WorkError("recovered_cents: negative")
    appeal = s.scalar(select(Appeal).where(Appeal.case_id == case.id, Appeal.outcome.is_(None))
                      .order_by(Appeal.level.desc()).limit(1))
    if appeal is None:
        raise WorkError("outcome: the case has no open appeal")
    _move(s, case, State(outcome), at=at, actor=actor)
    appeal.outcome, appeal.decided_on, appeal.recovered_cents = outcome, decided_on, recovered_cents
    return appeal
