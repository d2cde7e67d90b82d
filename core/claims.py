"""Claim status queries and results: what any source (a portal page, an X12 277, an ERA 835) says of a claim.

No browser types: an HTTP/FHIR adapter or a remittance parser produces the same results. Results hold what
the source said (raw label, raw reason text/codes) AND the normalized form.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field


def id_key(value: str) -> str:
    """A member id (or an NPI) as a comparable key: the same id whatever the spacing or case it is printed in."""
    return "".join(value.split()).upper()


class ClaimQuery(BaseModel):
    """What we know of a claim. The adapter searches by payer claim number when known, else by
    member + date of service, and proves the page it read belongs to this claim."""

    claim_ref: str  # our id for the claim (the PMS's), for evidence and logs (not PHI)
    payer_key: str
    payer_claim_number: str | None = None
    member_id: str = Field(repr=False)
    # PHI some portals' search forms require (date of birth, patient name when not the subscriber)
    patient_dob: date | None = Field(default=None, repr=False)
    patient_first_name: str | None = Field(default=None, repr=False)
    patient_last_name: str | None = Field(default=None, repr=False)
    dos_from: date
    dos_to: date
    billing_npi: str
    billed: Decimal
    org_external_id: str | None = None


class LineAdjustment(BaseModel):
    group: str  # CO | PR | OA | PI | CR
    carc: str
    amount: Decimal
    raw: str | None = None  # the portal's own words/code for this reason


class LineResult(BaseModel):
    line_no: int
    cpt: str
    modifiers: list[str] = []
    billed: Decimal
    allowed: Decimal | None = None
    paid: Decimal | None = None
    adjustments: list[LineAdjustment] = []
    rarcs: list[str] = []


class ClaimStatusResult(BaseModel):
    claim_ref: str
    portal_key: str
    observed_at: datetime
    # normalized
    status_category: str  # X12 277 claim status category (A3, P1, F1, F2, ...)
    status_code: str | None = None  # X12 277 claim status code
    payer_claim_number: str | None = None
    billed: Decimal
    allowed: Decimal | None = None
    paid: Decimal | None = None
    patient_responsibility: Decimal | None = None
    check_number: str | None = None
    check_date: date | None = None
    lines: list[LineResult] = []
    rejection_reason: str | None = None
    # what the page showed, verbatim
    raw_label: str
    raw: dict[str, Any] = {}
    # proof: the identifiers the page showed for the claim it read (checked against the query before
    # returning; the runner checks them again and refuses a result that does not prove its claim)
    shown_member_id: str | None = Field(default=None, repr=False)
    shown_dos_from: date | None = None
    shown_dos_to: date | None = None
    shown_claim_number: str | None = None  # as the page printed it (before normalization)
    shown_billed: Decimal | None = None
    evidence_ref: str | None = None

    @property
    def is_rejection(self) -> bool:
        return self.status_category in ("A3", "A6", "A7", "A8")

    @property
    def finalized(self) -> bool:
        return self.status_category.startswith("F") or self.is_rejection
