"""SQLAlchemy 2.x models. Every business row belongs to an organization (tenant).

Amounts are integer cents. Times are timezone-aware UTC. PHI columns (member ids) are never logged;
secrets (portal passwords, TOTP secrets, saved browser sessions) are only stored encrypted (store/vault.py).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the practice's IANA zone: day 0 of every clock is a calendar date here (DESIGN.md §5 "Counting")
    time_zone: Mapped[str] = mapped_column(String(64), default="America/New_York",
                                           server_default="America/New_York")
    # denial routing: {bucket: role} over store/workflow/routing.py's defaults; who of the role gets a case
    routing: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    routing_strategy: Mapped[str] = mapped_column(String(32), default="least_open", server_default="least_open")
    # denials worked line by line (a case per denied service line) rather than one case per claim
    cases_per_line: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class Person(Base):
    """Someone of the organization who works denials (one role list for the whole product: core/roles.py)."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Payer(Base):
    """A payer and its playbook (each figure keeps its source; an administrator may override it)."""

    __tablename__ = "payers"
    __table_args__ = (UniqueConstraint("org_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    key: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    portal_key: Mapped[str] = mapped_column(String(64))
    # hard windows, in days OR months from their anchors (store/playbooks.py, DESIGN.md §5 "Counting")
    appeal_window_days: Mapped[int | None] = mapped_column(Integer)
    appeal_window_months: Mapped[int | None] = mapped_column(Integer)
    appeal_anchor: Mapped[str | None] = mapped_column(String(32))  # notice_date | date_of_service | ...
    timely_filing_days: Mapped[int | None] = mapped_column(Integer)
    timely_filing_months: Mapped[int | None] = mapped_column(Integer)
    tf_anchor: Mapped[str | None] = mapped_column(String(32))
    receipt_presumption_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rolls_to_business_day: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    typical_days_to_pay: Mapped[int] = mapped_column(Integer, default=30)
    # what an administrator fills (the public table has none of it)
    appeal_channel: Mapped[str | None] = mapped_column(String(32))  # portal | fax | mail
    appeal_address: Mapped[str | None] = mapped_column(Text)
    appeal_levels: Mapped[int | None] = mapped_column(Integer)
    playbook_row: Mapped[str | None] = mapped_column(String(200))  # "payer | plan type" of the public row
    playbook_source: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)


class Provider(Base):
    __tablename__ = "providers"
    __table_args__ = (UniqueConstraint("org_id", "npi"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    npi: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))


class PortalAccount(Base):
    """A login on a payer portal. Credentials and the saved browser session are encrypted (vault)."""

    __tablename__ = "portal_accounts"
    __table_args__ = (UniqueConstraint("org_id", "portal_key", "username"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    portal_key: Mapped[str] = mapped_column(String(64))
    base_url: Mapped[str] = mapped_column(String(500))
    username: Mapped[str] = mapped_column(String(200))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # {"password", "totp_secret"}
    storage_state_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    # active | needs_attention | disabled
    status: Mapped[str] = mapped_column(String(32), default="active")
    attention_reason: Mapped[str | None] = mapped_column(Text)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failed_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # health (issue 10): what a biller needs to see to trust or distrust this account's data
    last_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last claim read
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(64))  # error type of the last failed check/login
    circuit_state: Mapped[str] = mapped_column(String(16), default="closed")  # closed | open
    circuit_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    drift_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    drift_reason: Mapped[str | None] = mapped_column(Text)
    drift_evidence_ref: Mapped[str | None] = mapped_column(String(64))
    # canary: a settled claim read first on every sweep; a different reading stops the account as drift
    canary_claim_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    canary_fingerprint: Mapped[str | None] = mapped_column(String(64))
    canary_pinned: Mapped[bool] = mapped_column(Boolean, default=False)  # chosen by a human, not the agent
    canary_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    canary_result: Mapped[str | None] = mapped_column(String(16))  # ok | mismatch | failed


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        UniqueConstraint("org_id", "external_id"),
        Index("ix_claims_due", "org_id", "finalized", "next_check_at"),
        # claims_due (every org): the range on next_check_at, already in (next_check_at, id) order
        Index("ix_claims_next_check", "next_check_at", "id"),
        Index("ix_claims_payer_claim_number", "org_id", "payer_claim_number"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    external_id: Mapped[str] = mapped_column(String(64))  # the PMS's claim id / patient control number
    payer_claim_number: Mapped[str | None] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(String(64))  # PHI
    patient_dob: Mapped[date | None] = mapped_column(Date)  # PHI
    patient_first_name: Mapped[str | None] = mapped_column(String(100))  # PHI
    patient_last_name: Mapped[str | None] = mapped_column(String(100))  # PHI
    billing_npi: Mapped[str] = mapped_column(String(10))
    dos_from: Mapped[date] = mapped_column(Date)
    dos_to: Mapped[date] = mapped_column(Date)
    billed_cents: Mapped[int] = mapped_column(BigInteger)
    submitted_on: Mapped[date] = mapped_column(Date)
    status_category: Mapped[str | None] = mapped_column(String(4))
    status_code: Mapped[str | None] = mapped_column(String(8))
    finalized: Mapped[bool] = mapped_column(Boolean, default=False)
    appeal_open: Mapped[bool] = mapped_column(Boolean, default=False)
    fresh_as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(64))  # error type of the last failed check
    lines: Mapped[list[ClaimLine]] = relationship(back_populates="claim", order_by="ClaimLine.line_no",
                                                  cascade="all, delete-orphan")


class ClaimLine(Base):
    __tablename__ = "claim_lines"
    __table_args__ = (UniqueConstraint("claim_id", "line_no"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    cpt: Mapped[str] = mapped_column(String(8))
    modifiers: Mapped[list] = mapped_column(JSON, default=list)
    units: Mapped[int] = mapped_column(Integer, default=1)
    billed_cents: Mapped[int] = mapped_column(BigInteger)
    allowed_cents: Mapped[int | None] = mapped_column(BigInteger)
    paid_cents: Mapped[int | None] = mapped_column(BigInteger)
    claim: Mapped[Claim] = relationship(back_populates="lines")


class StatusObservation(Base):
    """Every check of a claim, kept as history: what was read, where, when, with which evidence."""

    __tablename__ = "status_observations"
    __table_args__ = (Index("ix_observations_claim", "claim_id", "observed_at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(64))  # portal key
    account_id: Mapped[int | None] = mapped_column(ForeignKey("portal_accounts.id"))
    sweep_run_id: Mapped[int | None] = mapped_column(ForeignKey("sweep_runs.id"))
    status_category: Mapped[str] = mapped_column(String(4))
    status_code: Mapped[str | None] = mapped_column(String(8))
    raw_label: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))  # hash of the normalized result
    changed: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[dict] = mapped_column(JSON)  # the normalized result as read
    evidence_ref: Mapped[str | None] = mapped_column(String(128))


class StatusTransition(Base):
    __tablename__ = "status_transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("status_observations.id"))
    from_category: Mapped[str | None] = mapped_column(String(4))
    from_code: Mapped[str | None] = mapped_column(String(8))
    to_category: Mapped[str] = mapped_column(String(4))
    to_code: Mapped[str | None] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Adjustment(Base):
    """The claim's current adjustments (replaced when a check reads different ones)."""

    __tablename__ = "adjustments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("status_observations.id"))
    line_no: Mapped[int | None] = mapped_column(Integer)
    group_code: Mapped[str] = mapped_column(String(2))
    carc: Mapped[str] = mapped_column(String(8))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    rarcs: Mapped[list] = mapped_column(JSON, default=list)


class Denial(Base):
    """A denial (adjudicated, CARC) or a rejection (front-end, never adjudicated): separate workflows.

    One row per claim x line x group x reason; re-reading the same denial only moves last_seen_at.
    """

    __tablename__ = "denials"
    __table_args__ = (UniqueConstraint("claim_id", "line_key", "kind", "group_code", "reason_code"),
                      Index("ix_denials_open", "org_id", "open"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    line_key: Mapped[int] = mapped_column(Integer)  # line number, 0 = whole claim
    kind: Mapped[str] = mapped_column(String(16))  # denial | rejection
    group_code: Mapped[str] = mapped_column(String(2))  # "" for rejections
    reason_code: Mapped[str] = mapped_column(String(16))  # CARC, or 277 status code for rejections
    rarcs: Mapped[list] = mapped_column(JSON, default=list)
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    reason_text: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    open: Mapped[bool] = mapped_column(Boolean, default=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("denial_cases.id"), index=True)


class DenialCase(Base):
    """The unit of denial work: one per claim and kind (denial | rejection; per line where lines are worked
    apart). Its reasons may change on later reads while its category, owner, clocks and history stay.
    Every date below was computed when the case arrived, in the organization's zone (never later)."""

    __tablename__ = "denial_cases"
    __table_args__ = (UniqueConstraint("claim_id", "kind", "line_key"),
                      Index("ix_denial_cases_work", "org_id", "state", "owner_role"),
                      # the work queues: a role's and a person's open cases by priority (store/queue.py)
                      Index("ix_denial_cases_role_queue", "org_id", "owner_role", "priority", "id"),
                      Index("ix_denial_cases_person_queue", "owner_person_id", "priority", "id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # denial | rejection
    line_key: Mapped[int] = mapped_column(Integer, default=0)  # 0: the whole claim
    state: Mapped[str] = mapped_column(String(32), default="new")
    # category (store/workflow/categorize.py), decided on intake from the reason with the most dollars
    bucket: Mapped[str] = mapped_column(String(32))
    hard: Mapped[bool] = mapped_column(Boolean)
    clinical: Mapped[bool] = mapped_column(Boolean)
    preventable: Mapped[bool] = mapped_column(Boolean)
    category_source: Mapped[str] = mapped_column(String(64))  # the table row that decided
    reasons: Mapped[list] = mapped_column(JSON, default=list)  # [{line, group, code, rarcs, amount_cents}]
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # clocks: day 0 = detected_on in time_zone; work SLAs apart from the payer's hard deadlines
    time_zone: Mapped[str] = mapped_column(String(64))
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detected_on: Mapped[date] = mapped_column(Date)
    denial_date: Mapped[date] = mapped_column(Date)  # the payer's notice date where shown, else detected_on
    work_by: Mapped[date | None] = mapped_column(Date)
    appeal_by: Mapped[date | None] = mapped_column(Date)
    peer_to_peer_by: Mapped[date | None] = mapped_column(Date)
    escalations: Mapped[list] = mapped_column(JSON, default=list)  # [{on, to, why}] due on these dates
    urgent_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a hard deadline is near
    appeal_deadline: Mapped[date | None] = mapped_column(Date)  # the payer's: last day to file an appeal
    timely_filing_deadline: Mapped[date | None] = mapped_column(Date)  # the payer's: last day to (re)file
    deadline_source: Mapped[str | None] = mapped_column(Text)  # which playbook figures, and their sources
    # store/workflow/priority.py: dollars at risk x odds of winning x urgency, recomputed when an input changes
    priority: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    owner_role: Mapped[str] = mapped_column(String(32))
    owner_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("denial_groups.id"), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolution_note: Mapped[str | None] = mapped_column(Text)


class Appeal(Base):
    """One appeal of a denial case: its level, channel, dates and outcome."""

    __tablename__ = "appeals"
    __table_args__ = (UniqueConstraint("case_id", "level"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("denial_cases.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)  # 1: reconsideration/redetermination, 2: the next, ...
    channel: Mapped[str] = mapped_column(String(16))  # portal | fax | mail
    filed_on: Mapped[date] = mapped_column(Date)
    follow_up_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str | None] = mapped_column(String(16))  # won | partially_won | lost
    decided_on: Mapped[date | None] = mapped_column(Date)
    recovered_cents: Mapped[int | None] = mapped_column(BigInteger)
    filed_by: Mapped[str] = mapped_column(String(64))


class DenialGroup(Base):
    """Similar denials: the same payer, reason (CARC) and procedure (CPT) detected within a window of the
    group's first. One fix or one batch appeal serves them all (store/groups.py)."""

    __tablename__ = "denial_groups"
    __table_args__ = (Index("ix_denial_groups_key", "org_id", "payer_id", "code", "cpt", "opened_on"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    code: Mapped[str] = mapped_column(String(16))  # the members' main CARC
    cpt: Mapped[str] = mapped_column(String(16))
    opened_on: Mapped[date] = mapped_column(Date)  # the first member's detection date (practice's zone)
    window_days: Mapped[int] = mapped_column(Integer)


class CategoryOverride(Base):
    """An organization's own categorization of a CARC (for one payer, or all): a row of
    store/workflow/data/carc_categories.csv's shape that wins over the default table."""

    __tablename__ = "category_overrides"
    __table_args__ = (UniqueConstraint("org_id", "payer_key", "carc", "group_code", "rarc"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    payer_key: Mapped[str] = mapped_column(String(32), default="")  # "" = every payer of the organization
    carc: Mapped[str] = mapped_column(String(8))
    group_code: Mapped[str] = mapped_column(String(2), default="")
    rarc: Mapped[str] = mapped_column(String(8), default="")
    bucket: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    nature: Mapped[str] = mapped_column(String(16))
    preventable: Mapped[bool] = mapped_column(Boolean)
    normal: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)


class Escalation(Base):
    """An escalation that happened: one row per case and step, so that it happens exactly once (a unique
    key, whatever runs overlap or restart)."""

    __tablename__ = "denial_case_escalations"
    __table_args__ = (UniqueConstraint("case_id", "step"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("denial_cases.id"), index=True)
    step: Mapped[str] = mapped_column(String(64))  # e.g. "unresolved 14 days", "appeal deadline in 10 days"
    to_role: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseEvent(Base):
    """A denial case's history: created, reasons changed, routed, assigned, state changed, escalated."""

    __tablename__ = "denial_case_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("denial_cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    from_value: Mapped[str | None] = mapped_column(String(64))
    to_value: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(64))  # agent | person:<id> | system
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class SweepRun(Base):
    __tablename__ = "sweep_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    portal_key: Mapped[str | None] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(32))  # schedule | on_demand | cli
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(32), default="running")
    counts: Mapped[dict] = mapped_column(JSON, default=dict)


class OutboxEvent(Base):
    """Events written in the same transaction as the change they describe (webhooks read from here)."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    aggregate_key: Mapped[str] = mapped_column(String(64))  # ordering key, e.g. "claim:123"
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CarcCode(Base):
    __tablename__ = "code_carc"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))


class RarcCode(Base):
    __tablename__ = "code_rarc"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))


class StatusCategoryCode(Base):
    __tablename__ = "code_status_category"
    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    description: Mapped[str] = mapped_column(Text)


class Evidence(Base):
    """A page as read (HTML + screenshot), encrypted on disk; the row keeps hashes and where it is."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_claim", "claim_id", "observed_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claims.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("portal_accounts.id"))
    portal_key: Mapped[str] = mapped_column(String(64))
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))  # failure | status_change
    reason: Mapped[str | None] = mapped_column(Text)
    url_path: Mapped[str | None] = mapped_column(String(500))
    html_sha256: Mapped[str] = mapped_column(String(64))
    screenshot_sha256: Mapped[str] = mapped_column(String(64))
    screenshot_type: Mapped[str] = mapped_column(String(8), default="jpeg", server_default="png")  # png | jpeg
    blob_path: Mapped[str] = mapped_column(String(500))


class CheckFailure(Base):
    """A due claim that could not be checked in a sweep, with the reason (it stays due: retried next sweep)."""

    __tablename__ = "check_failures"
    __table_args__ = (Index("ix_check_failures_claim", "claim_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    sweep_run_id: Mapped[int | None] = mapped_column(ForeignKey("sweep_runs.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    error_type: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    retryable: Mapped[bool] = mapped_column(Boolean)
    evidence_ref: Mapped[str | None] = mapped_column(String(64))


class AuditEntry(Base):
    """Who read PHI (or exported evidence), when, about what. The subject is an id, never the PHI itself."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_org_at", "org_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))  # cli:<os user> | api:<key id> | agent
    action: Mapped[str] = mapped_column(String(64))  # claim.read | evidence.list | evidence.export ...
    subject: Mapped[str] = mapped_column(String(200))  # claim:<id> | evidence:<ref>
