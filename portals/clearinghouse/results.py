"""What Meridian Exchange's claim pages showed (strings, as printed) and what they prove: which results can be
the query's claim, that the detail is the row opened and the query's claim, that the remittance is the
detail's, and the normalized result with the lines adding up to the claim's totals (DESIGN.md §4: every
field from the page; an unknown badge, a contradiction or a missing element is PortalDrift). Pure: no
browser, so each rule is tested on its own (tests/portals/test_clearinghouse_results.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from core.claims import ClaimQuery, ClaimStatusResult, LineAdjustment, LineResult, id_key
from core.errors import ClaimMismatch, PortalDrift
from portals.clearinghouse import mapping as M
from portals.formats import mdy, money, optional

_LINE_NO = re.compile(r"^Line (\d+):")


@dataclass
class ResultRow:
    index: int
    cells: dict[str, str]


@dataclass
class LinePanel:
    title: str
    fields: dict[str, str]
    adjustments: list[dict[str, str]] | None  # None: this payer prints no adjustments here
    remarks: str | None


@dataclass
class ClaimDetail:
    """The detail modal as printed (strings)."""

    badge: str
    rejection: str | None
    summary: dict[str, str]
    payment: dict[str, str]
    no_payment: bool
    lines: list[LinePanel]
    codes: list[dict[str, str]] | None  # None: this payer returns no reason codes with claim status
    remit_link: bool


@dataclass
class Remit:
    """The remittance viewer's remit row and its adjustment rows."""

    remit: dict[str, str]
    adjustments: list[dict[str, str]]


def need(fields: dict[str, str], name: str, where: str) -> str:
    if name not in fields:
        raise PortalDrift(f"{where}: '{name}' not shown")
    return fields[name]


def candidates(rows: list[ResultRow], q: ClaimQuery) -> list[ResultRow]:
    """The results that can be the query's claim by what the results table shows (NPI is on the detail):
    the same claim number, or the exact service dates and billed amount (a payer may list the member's
    other claims near those dates, or another provider's claim for the same visit)."""
    if q.payer_claim_number:
        number = M.claim_number_key(q.payer_claim_number)
        same = [r for r in rows if M.claim_number_key(r.cells["Claim Number"]) == number]
    else:
        same = [r for r in rows
                if M.service_dates(r.cells["Service Dates"]) == (q.dos_from, q.dos_to)
                and money(r.cells["Billed"], what="results billed") == q.billed]
    if not same:
        raise ClaimMismatch(f"claim {q.claim_ref}: the portal listed only other claims")
    if len(same) > 1:  # same member, dates and amount: the patient account number is the practice's own
        ours = [r for r in same if r.cells["Patient Account"] == q.claim_ref]
        same = ours if len(ours) == 1 else same
    return same


def same_as_row(d: ClaimDetail, row: ResultRow, q: ClaimQuery) -> None:
    """The detail shows the claim of the row that was opened (not the previous claim still on screen)."""
    shown = M.claim_number_key(d.summary.get("Payer claim number"))
    listed = row.cells["Claim Number"].strip()
    listed = "" if listed == "Not assigned" else M.claim_number_key(listed)
    if shown != listed or need(d.summary, "Patient account number", "claim detail") != row.cells["Patient Account"]:
        raise ClaimMismatch(f"claim {q.claim_ref}: the detail shows another claim than the result opened")


def proves(d: ClaimDetail, q: ClaimQuery) -> bool:
    """Every identifier the detail shows is the query's: member ID, exact service dates, billed amount,
    billing NPI, and the claim number when the query has one."""
    s = d.summary
    if id_key(need(s, "Member ID", "claim detail")) != id_key(q.member_id):
        return False
    if q.payer_claim_number and \
            M.claim_number_key(s.get("Payer claim number")) != M.claim_number_key(q.payer_claim_number):
        return False
    first = mdy(need(s, "Service from", "claim detail"), what="service from")
    last = mdy(need(s, "Service to", "claim detail"), what="service to")
    return ((first, last) == (q.dos_from, q.dos_to)
            and money(need(d.payment, "Billed amount", "claim detail"), what="billed") == q.billed
            and need(s, "Billing provider NPI", "claim detail").strip() == q.billing_npi)


def result(portal_key: str, q: ClaimQuery, d: ClaimDetail, remit: Remit | None) -> ClaimStatusResult:
    s, pay = d.summary, d.payment
    category = M.category_for(d.badge)
    if M.code_part(need(s, "Status category", "claim detail"), what="277 category") != category:
        raise PortalDrift("claim detail: the status badge and the 277 category disagree")
    code = M.status_code(need(s, "Status code", "claim detail"))
    rejected = category in M.REJECTION_CATEGORIES
    shown_number = s.get("Payer claim number")
    if rejected != (d.rejection is not None) or rejected != (shown_number is None):
        raise PortalDrift("claim detail: rejection, reason and claim number contradict each other")
    billed = money(need(pay, "Billed amount", "payment"), what="billed amount")
    adjudicated = category.startswith("F")
    allowed = paid = liability = None
    check_number: str | None = None
    check_date: date | None = None
    lines: list[LineResult] = []
    if adjudicated:
        allowed = money(need(pay, "Allowed amount", "payment"), what="allowed amount")
        paid = money(need(pay, "Paid amount", "payment"), what="paid amount")
        liability = money(need(pay, "Patient responsibility", "payment"), what="patient responsibility")
        need(pay, "Payment method", "payment")
        check_number = optional(pay.get("Check/EFT number"))
        raw_date = optional(pay.get("Check/EFT date"))
        if (check_number is None) != (raw_date is None):
            raise PortalDrift("payment: check number and check date contradict each other")
        check_date = mdy(raw_date, what="check date") if raw_date else None
        lines = _lines(d, remit)
        if remit is not None:
            _remit_matches(remit, q, shown_number, s, billed, paid, liability, check_number, check_date)
        if (sum((ln.allowed or 0 for ln in lines), start=0) != allowed
                or sum((ln.paid or 0 for ln in lines), start=0) != paid
                or sum((a.amount for ln in lines for a in ln.adjustments if a.group == "PR"), start=0)
                != liability):
            raise PortalDrift("claim detail: the lines do not add up to the claim's amounts")
    elif not d.no_payment or any(k in pay for k in ("Allowed amount", "Paid amount", "Patient responsibility")):
        raise PortalDrift("claim detail: payment information contradicts the claim status")
    if sum((money(need(p.fields, "Billed", "service line"), what="line billed") for p in d.lines),
           start=0) != billed or not d.lines:
        raise PortalDrift("claim detail: the service lines do not add up to the billed amount")
    return ClaimStatusResult(
        claim_ref=q.claim_ref,
        portal_key=portal_key,
        observed_at=datetime.now(UTC),
        status_category=category,
        status_code=code,
        # the PMS's spelling when the query has the number (proven equal), else the portal's, normalized
        payer_claim_number=None if shown_number is None else
        (q.payer_claim_number if q.payer_claim_number else M.claim_number_key(shown_number)),
        billed=billed,
        allowed=allowed,
        paid=paid,
        patient_responsibility=liability,
        check_number=check_number,
        check_date=check_date,
        lines=lines,
        rejection_reason=d.rejection if rejected else None,
        raw_label=d.badge,
        raw=_raw(d, remit, by_number=bool(q.payer_claim_number)),
        shown_member_id=s["Member ID"],
        shown_dos_from=mdy(need(s, "Service from", "claim detail"), what="service from"),
        shown_dos_to=mdy(need(s, "Service to", "claim detail"), what="service to"),
        shown_claim_number=shown_number,
        shown_billed=billed,
    )


def _lines(d: ClaimDetail, remit: Remit | None) -> list[LineResult]:
    """Adjudicated lines: amounts from the detail; adjustments and remarks from the detail's bare codes,
    or from the remittance viewer for payers that print them only there."""
    remit_rows: dict[str, list[dict[str, str]]] = {}
    if remit is not None:
        for r in remit.adjustments:
            remit_rows.setdefault(r["Line"], []).append(r)
    described = {(c["Type"], c["Code"]): c["Description"] for c in d.codes or []}
    out = []
    for panel in d.lines:
        m = _LINE_NO.match(panel.title)
        if not m:
            raise PortalDrift("service lines: unreadable line number")
        f = panel.fields
        cpt = need(f, "Procedure", "service line")
        adjustments: list[LineAdjustment] = []
        rarcs: list[str] = []
        if d.codes is not None:
            if panel.adjustments is None or panel.remarks is None:
                raise PortalDrift("service lines: adjustments not shown for an adjudicated line")
            for a in panel.adjustments:
                group, carc = M.group(a["Group"]), M.carc_code(a["Reason code"])
                if ("Reason", carc) not in described:
                    raise PortalDrift("claim detail: a reason code missing from the code descriptions")
                adjustments.append(LineAdjustment(group=group, carc=carc, amount=money(a["Amount"], what="adjustment"),
                                                  raw=f"{group}-{carc}: {described[('Reason', carc)]}"))
            rarcs = M.rarc_codes(panel.remarks)
            if any(("Remark", r) not in described for r in rarcs):
                raise PortalDrift("claim detail: a remark code missing from the code descriptions")
        else:
            if remit is None or panel.adjustments is not None:
                raise PortalDrift("service lines: reasons neither on the detail nor in the remittance")
            for r in remit_rows.pop(m.group(1), []):
                if r["Procedure"] != cpt:
                    raise PortalDrift("remittance viewer: adjustment procedure differs from the line's")
                group, carc = M.group(r["Group"]), M.carc_code(r["CARC"])
                adjustments.append(LineAdjustment(group=group, carc=carc, amount=money(r["Amount"], what="adjustment"),
                                                  raw=f"{group}-{r['Description']}"))
                rarcs += [x for x in M.rarc_codes(r["RARC"]) if x not in rarcs]
        out.append(LineResult(
            line_no=int(m.group(1)),
            cpt=cpt,
            modifiers=need(f, "Modifiers", "service line").split(),
            billed=money(need(f, "Billed", "service line"), what="line billed"),
            allowed=money(need(f, "Allowed", "service line"), what="line allowed"),
            paid=money(need(f, "Paid", "service line"), what="line paid"),
            adjustments=adjustments,
            rarcs=rarcs,
        ))
    if remit_rows:
        raise PortalDrift("remittance viewer: adjustments for a line the detail does not show")
    return out


def _remit_matches(remit: Remit, q: ClaimQuery, number: str | None, s: dict[str, str], billed, paid,
                   liability, check_number: str | None, check_date: date | None) -> None:
    """The remittance shown is this claim's: claim number, patient account and amounts agree."""
    r = remit.remit
    if M.claim_number_key(r["Claim number"]) != M.claim_number_key(number) \
            or r["Patient account"] != need(s, "Patient account number", "claim detail"):
        raise ClaimMismatch(f"claim {q.claim_ref}: the remittance shown is another claim's")
    if (money(r["Billed"], what="remit billed") != billed or money(r["Paid"], what="remit paid") != paid
            or money(r["Patient responsibility"], what="remit patient responsibility") != liability):
        raise PortalDrift("remittance viewer: amounts differ from the claim detail")
    remit_date = optional(r["Payment date"])
    if optional(r["Check/EFT number"]) != check_number or \
            (mdy(remit_date, what="remit payment date") if remit_date else None) != check_date:
        raise PortalDrift("remittance viewer: payment differs from the claim detail")


def _raw(d: ClaimDetail, remit: Remit | None, *, by_number: bool) -> dict[str, Any]:
    """What the page showed, minus the member's id and name (shown_member_id carries the id)."""
    return {
        "search": "claim_number" if by_number else "member",
        "status_label": d.badge,
        "summary": {k: v for k, v in d.summary.items() if k not in ("Member ID", "Patient")},
        "rejection_reason": d.rejection,
        "payment": d.payment,
        "lines": [{"title": p.title, **p.fields, "adjustments": p.adjustments, "remarks": p.remarks}
                  for p in d.lines],
        "codes": d.codes,
        "remittance": {"remit": remit.remit, "adjustments": remit.adjustments} if remit else None,
    }
