"""The event catalog: every event the product writes to its outbox, by type, with its payload. The webhook
issue delivers and documents these (at least once, in order per aggregate); nothing else names an event.

Rules: an event is written in the same transaction as the change it describes (`emit` takes that change's
session); each belongs to one organization; payloads carry ids and codes, never PHI (no member id, name or
date of birth: `claim` is the PMS's own claim id). Payload models forbid extra fields, so a payload cannot
grow a field the catalog does not name.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from store.models import OutboxEvent


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str]

    def aggregate_key(self) -> str:
        raise NotImplementedError


# ---------------------------------------------------------------------- claims
class ClaimStatusChanged(Event):
    type: ClassVar[str] = "claim.status_changed"
    claim_id: int
    claim: str
    from_category: str | None
    to_category: str
    status_code: str | None
    observed_at: datetime

    def aggregate_key(self) -> str:
        return f"claim:{self.claim_id}"


# ---------------------------------------------------------------------- denial cases
class _Case(Event):
    case_id: int
    claim_id: int
    claim: str
    kind: str  # denial | rejection

    def aggregate_key(self) -> str:
        return f"claim:{self.claim_id}"  # in order with the claim's status changes


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    line: int
    group: str
    code: str
    rarcs: list[str]
    amount_cents: int


class DenialCreated(_Case):
    """A denial (or rejection) case opened: categorized, routed and clocked on arrival."""

    type: ClassVar[str] = "denial.created"
    bucket: str
    severity: str  # soft | hard
    clinical: bool
    preventable: bool
    reasons: list[Reason]
    amount_cents: int
    owner_role: str
    detected_on: date
    denial_date: date
    work_by: date | None
    appeal_by: date | None
    peer_to_peer_by: date | None
    appeal_deadline: date | None
    timely_filing_deadline: date | None


class RejectionCreated(DenialCreated):
    type: ClassVar[str] = "rejection.created"


class DenialReasonsChanged(_Case):
    """A later read shows other reasons (the case, its owner and clocks stay)."""

    type: ClassVar[str] = "denial.reasons_changed"
    reasons: list[Reason]
    amount_cents: int


class DenialRouted(_Case):
    """The case went to a role's queue and/or a person of that role."""

    type: ClassVar[str] = "denial.routed"
    owner_role: str
    owner_person_id: int | None
    by: str


class DenialEscalated(_Case):
    type: ClassVar[str] = "denial.escalated"
    step: str
    to_role: str
    due_on: date


class DenialResolved(_Case):
    """The case reached a final state (won, partially won, written off)."""

    type: ClassVar[str] = "denial.resolved"
    state: str
    resolution: str | None
    by: str


# ---------------------------------------------------------------------- portals and sweeps
class _Account(Event):
    account_id: int
    portal: str

    def aggregate_key(self) -> str:
        return f"account:{self.account_id}"


class PortalAccountFailed(_Account):
    type: ClassVar[str] = "portal.account_failed"
    error: str
    evidence_ref: str | None


class PortalBlockedAction(_Account):
    type: ClassVar[str] = "portal.blocked_action"
    claim_id: int
    requests: list[dict[str, str]]
    evidence_ref: str | None


class PortalDriftDetected(_Account):
    type: ClassVar[str] = "portal.drift_detected"
    reason: str  # the error type and message (messages never carry PHI)
    evidence_ref: str | None


class PortalCircuitOpen(Event):
    """The portal's circuit breaker opened (the breaker is in memory: this event is the change)."""

    type: ClassVar[str] = "portal.circuit_open"
    portal: str
    error: str

    def aggregate_key(self) -> str:
        return f"portal:{self.portal}"


class SweepCompleted(Event):
    type: ClassVar[str] = "sweep.completed"
    run_id: int
    counts: dict

    def aggregate_key(self) -> str:
        return f"sweep:{self.run_id}"


CATALOG: dict[str, type[Event]] = {cls.type: cls for cls in (
    ClaimStatusChanged, DenialCreated, RejectionCreated, DenialReasonsChanged, DenialRouted, DenialEscalated,
    DenialResolved, PortalAccountFailed, PortalBlockedAction, PortalDriftDetected, PortalCircuitOpen,
    SweepCompleted)}


def emit(s: Session, org_id: int, event: Event) -> OutboxEvent:
    """Write `event` to the outbox in the caller's transaction (the change it describes)."""
    if CATALOG.get(event.type) is not type(event):
        raise TypeError(f"{type(event).__name__} is not in the event catalog")
    row = OutboxEvent(event_id=f"evt_{uuid.uuid4().hex}", org_id=org_id, event_type=event.type,
                      aggregate_key=event.aggregate_key(), payload=event.model_dump(mode="json"),
                      created_at=datetime.now(UTC))
    s.add(row)
    return row
