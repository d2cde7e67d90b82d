"""What the Northstar portal served for a claim and what it proves: the JSON answers of its API (checked for
the answers any signed-in request can get instead of data), the results that can be the query's claim,
the normalized result built from the overview, payments and service-line cards (lines adding up to the
claim's totals, every code from the product's code lists), and the proof that the rendered overview card
shows the claim that was read (DESIGN.md §4). Pure: no browser (tests/portals/test_commercial_results.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from core.claims import ClaimQuery, ClaimStatusResult, LineAdjustment, LineResult, id_key
from core.errors import (
    ChallengePresented,
    ClaimMismatch,
    ClaimNotFound,
    Maintenance,
    PortalDrift,
    PortalUnavailable,
    SessionExpired,
)
from portals.commercial import mapping as M
from portals.formats import mdy, money, money_or_none


@dataclass(frozen=True)
class ApiReply:
    """One JSON answer of the portal: HTTP status and body (None when the body was not JSON)."""

    status: int
    data: Any

    def field(self, name: str) -> Any:
        return self.data.get(name) if isinstance(self.data, dict) else None


def check_answer(reply: ApiReply, step: str) -> None:
    """The answers any signed-in request can get instead of data."""
    error = reply.field("error")
    if reply.status == 401 and error in ("session_expired", "not_authenticated"):
        raise SessionExpired(f"{step}: the portal session has ended")
    # The app leaves for the challenge page at once, so the 429's body is often gone before it is read.
    if reply.field("challenge") or (reply.status == 429 and reply.data is None):
        raise ChallengePresented(f"{step}: the portal shows its unusual-activity challenge")
    if reply.status == 429:
        raise PortalUnavailable(f"{step}: the portal asks to slow down")
    if reply.status == 503 and error == "maintenance":
        raise Maintenance(f"{step}: the portal is in maintenance")
    if reply.status >= 500:
        raise PortalUnavailable(f"{step}: the portal answered HTTP {reply.status}")
    if reply.data is None:
        raise PortalUnavailable(f"{step}: the portal's answer was cut short")
    if not isinstance(reply.data, dict):
        raise PortalDrift(f"{step}: unexpected answer shape")


def need_field(obj: Any, name: str, where: str) -> Any:
    """A field the portal must have served (present, possibly null); a missing one is drift."""
    if not isinstance(obj, dict) or name not in obj:
        raise PortalDrift(f"{where}: field '{name}' missing")
    return obj[name]


def text(obj: Any, name: str, where: str) -> str:
    value = need_field(obj, name, where)
    if not isinstance(value, str):
        raise PortalDrift(f"{where}: field '{name}' is not text")
    return value.strip()


def as_list(obj: Any, name: str, where: str) -> list:
    value = need_field(obj, name, where)
    if not isinstance(value, list):
        raise PortalDrift(f"{where}: field '{name}' is not a list")
    return value


def printed(ov: dict) -> dict[str, str]:
    """The overview facts the rendered card must show for the JSON it was served (label -> text)."""
    where = "claim overview"
    return {"Claim number": text(ov, "claimNumber", where) or "\u2014",
            "Member ID": text(ov, "memberId", where),
            "First date of service": text(ov, "firstServiceDate", where),
            "Last date of service": text(ov, "lastServiceDate", where),
            "Billed amount": text(ov, "billed", where)}


def prove(q: ClaimQuery, number: str, r: ClaimStatusResult, shown: dict[str, str]) -> ClaimStatusResult:
    """Fill the proof fields from the rendered overview card and check them against the query."""
    printed = shown["Claim number"]
    shown_number = M.normalize_claim_number(printed)
    member = shown["Member ID"]
    first = mdy(shown["First date of service"], what="First date of service")
    last = mdy(shown["Last date of service"], what="Last date of service")
    billed = money(shown["Billed amount"], what="Billed amount")
    if number and shown_number != number:
        raise ClaimMismatch(f"{q.claim_ref}: the page shows another claim number")
    if shown_number != (r.payer_claim_number or ""):
        raise ClaimMismatch(f"{q.claim_ref}: the page shows another claim than the one read")
    if id_key(member) != id_key(q.member_id) or (first, last) != (q.dos_from, q.dos_to) \
            or billed != q.billed:
        raise ClaimMismatch(f"{q.claim_ref}: the page shows another claim")
    return r.model_copy(update={"shown_member_id": member, "shown_dos_from": first, "shown_dos_to": last,
                                "shown_claim_number": printed if shown_number else None,
                                "shown_billed": billed})


def candidates(rows: list[dict], q: ClaimQuery, number: str) -> list[dict]:
    """The results that are the query's claim by what the results table shows (NPI comes later):
    the same claim number (normalized), member, dates of service (exactly) and billed amount."""
    where = "claim search result"
    if number:
        rows = [r for r in rows if M.normalize_claim_number(text(r, "claimNumber", where)) == number]
        if not rows:
            raise ClaimMismatch(f"{q.claim_ref}: the portal listed another claim number")
    member = id_key(q.member_id)
    if any(id_key(text(r, "memberId", where)) != member for r in rows):
        raise ClaimMismatch(f"{q.claim_ref}: the portal listed a claim of another member")
    same = [r for r in rows
            if (mdy(r["firstServiceDate"], what="firstServiceDate"),
                mdy(r["lastServiceDate"], what="lastServiceDate")) == (q.dos_from, q.dos_to)
            and money(r["billed"], what="billed") == q.billed]
    if not same:
        raise ClaimMismatch(f"{q.claim_ref}: no listed claim has these dates of service and billed amount")
    return same


def card(reply: ApiReply, card: str) -> dict:
    check_answer(reply, f"claim {card}")
    if reply.status == 404:
        raise ClaimNotFound(f"the portal could not retrieve the claim's {card}")
    if reply.status != 200:
        raise PortalDrift(f"claim {card}: unexpected answer (HTTP {reply.status})")
    return reply.data


def result(portal_key: str, q: ClaimQuery, queried: str, ov: dict, pay: dict, ln: dict) -> ClaimStatusResult:
    where = "claim overview"
    number = text(ov, "claimNumber", where)
    member = text(ov, "memberId", where)
    first = mdy(need_field(ov, "firstServiceDate", where), what="firstServiceDate")
    last = mdy(need_field(ov, "lastServiceDate", where), what="lastServiceDate")
    billed = money(need_field(ov, "billed", where), what="billed")
    canonical = M.normalize_claim_number(number)
    # proof: the detail itself echoes the query's claim
    if queried and canonical != queried:
        raise ClaimMismatch(f"{q.claim_ref}: the detail shows another claim number")
    if id_key(member) != id_key(q.member_id) or (first, last) != (q.dos_from, q.dos_to) \
            or billed != q.billed:
        raise ClaimMismatch(f"{q.claim_ref}: the detail shows another claim")

    label = text(ov, "statusLabel", where)
    adjudication_status = text(ov, "adjudicationStatus", where)
    category, code = M.status_for_label(label, adjudication_status)
    allowed = money_or_none(need_field(ov, "allowed", where), what="allowed")
    paid = money_or_none(need_field(ov, "paid", where), what="paid")
    patient_resp = money_or_none(need_field(ov, "patientResponsibility", where), what="patientResponsibility")
    returned = need_field(ov, "returnedReason", where)
    adjudicated = category.startswith("F")
    shown = [a is not None for a in (allowed, paid, patient_resp)]
    if (adjudicated and not all(shown)) or (not adjudicated and any(shown)):
        raise PortalDrift("claim overview: amounts disagree with the claim status")

    rejection_reason = None
    if category in M.REJECTION_CATEGORIES:
        rejection_reason = text(ov, "returnedReason", where)
        code = M.returned_reason_code(rejection_reason)
        if number:
            raise PortalDrift("claim overview: a returned claim with a claim number")
    elif not number or returned is not None:
        raise PortalDrift("claim overview: claim number or returned reason disagrees with the status")

    check_number, check_date, raw_payments = _payment(pay, paid)
    lines, raw_lines, denial_carcs = _lines(ln, billed, allowed, paid, patient_resp)
    if category == "F2":
        M.require_denial_reason(denial_carcs)  # and no code: the page shows none
    elif code is None:
        raise PortalDrift("claim status code could not be derived")

    raw = {
        "status_label": label,
        "adjudication_status": adjudication_status,
        "status_date": need_field(ov, "statusDate", where),
        "received_date": need_field(ov, "receivedDate", where),
        "claim_number": number,
        "patient_account_number": need_field(ov, "patientAccountNumber", where),
        "billing_provider_npi": need_field(ov, "billingProviderNpi", where),
        "first_service_date": ov["firstServiceDate"],
        "last_service_date": ov["lastServiceDate"],
        "billed": ov["billed"], "allowed": ov["allowed"], "paid": ov["paid"],
        "patient_responsibility": ov["patientResponsibility"],
        "returned_reason": returned,
        "payments": raw_payments,
        "lines": raw_lines,
    }
    return ClaimStatusResult(
        claim_ref=q.claim_ref, portal_key=portal_key, observed_at=datetime.now(UTC),
        status_category=category, status_code=code, payer_claim_number=canonical or None,
        billed=billed, allowed=allowed, paid=paid, patient_responsibility=patient_resp,
        check_number=check_number, check_date=check_date,
        lines=lines if adjudicated else [], rejection_reason=rejection_reason,
        raw_label=label, raw=raw,
    )


def _payment(pay: dict, paid: Decimal | None) -> tuple[str | None, date | None, list[dict]]:
    rows = as_list(pay, "payments", "payments card")
    raw = []
    for p in rows:
        raw.append({k: need_field(p, k, "payments card") for k in ("issueDate", "paymentNumber", "method",
                                                                     "amount")})
    if not rows:
        return None, None, raw
    if len(rows) > 1:
        raise PortalDrift("payments card: more than one payment for the claim")
    p = rows[0]
    if p["method"] not in M.PAYMENT_METHODS:
        raise PortalDrift("payments card: unknown payment method")
    if paid is None or money(p["amount"], what="amount") != paid:
        raise PortalDrift("payments card: payment amount disagrees with the paid amount")
    number = text(p, "paymentNumber", "payments card")
    if not number:
        raise PortalDrift("payments card: payment number missing")
    return number, mdy(p["issueDate"], what="issueDate"), raw


def _lines(ln: dict, billed: Decimal, allowed: Decimal | None, paid: Decimal | None,
           patient_resp: Decimal | None) -> tuple[list[LineResult], list[dict], set[str]]:
    where = "service lines card"
    rows = as_list(ln, "lines", where)
    if not rows:
        raise PortalDrift(f"{where}: no service lines")
    lines: list[LineResult] = []
    raw_lines: list[dict] = []
    denial_carcs: set[str] = set()
    for r in rows:
        status = text(r, "lineStatus", where)
        if status not in M.LINE_STATUS:
            raise PortalDrift(f"{where}: unknown line status")
        processed, denied = M.LINE_STATUS[status]
        mods = need_field(r, "modifiers", where)
        number = need_field(r, "lineNumber", where)
        if not isinstance(mods, list) or not all(isinstance(m, str) for m in mods) or not isinstance(number, int):
            raise PortalDrift(f"{where}: unexpected line shape")
        adjustments, rarcs = [], []
        raw_adj = []
        for a in as_list(r, "adjustments", where):
            group_text, reason = text(a, "group", where), text(a, "reason", where)
            amount = money(need_field(a, "amount", where), what="amount")
            carc = M.code_for_text("carc", reason)
            adjustments.append(LineAdjustment(group=M.group_for_text(group_text), carc=carc, amount=amount,
                                              raw=f"{group_text}: {reason}"))
            raw_adj.append({"type": group_text, "reason": reason, "amount": a["amount"]})
            if denied:
                denial_carcs.add(carc)
        remarks = as_list(r, "remarks", where)
        for remark in remarks:
            rarcs.append(M.code_for_text("rarc", remark if isinstance(remark, str) else ""))
        line = LineResult(
            line_no=number, cpt=text(r, "procedureCode", where), modifiers=mods,
            billed=money(need_field(r, "billed", where), what="billed"),
            allowed=money_or_none(need_field(r, "allowed", where), what="allowed"),
            paid=money_or_none(need_field(r, "paid", where), what="paid"),
            adjustments=adjustments, rarcs=rarcs)
        if processed != (line.allowed is not None and line.paid is not None):
            raise PortalDrift(f"{where}: line amounts disagree with the line status")
        if processed and line.paid + sum(a.amount for a in adjustments) != line.billed:
            raise PortalDrift(f"{where}: a line's adjustments do not balance")
        lines.append(line)
        raw_lines.append({"line_no": number, "procedure_code": line.cpt, "modifiers": mods,
                          "units": r.get("units"), "billed": r["billed"], "allowed": r["allowed"],
                          "paid": r["paid"], "line_status": status, "adjustments": raw_adj,
                          "remarks": remarks})
    if sum(x.billed for x in lines) != billed:
        raise PortalDrift(f"{where}: line charges do not add up to the claim")
    if allowed is not None:
        if not all(x.allowed is not None for x in lines) \
                or sum(x.allowed for x in lines) != allowed or sum(x.paid for x in lines) != paid \
                or sum(a.amount for x in lines for a in x.adjustments if a.group == "PR") != patient_resp:
            raise PortalDrift(f"{where}: line amounts do not add up to the claim")
    elif any(x.allowed is not None for x in lines):
        raise PortalDrift(f"{where}: adjudicated lines on a claim without adjudication")
    return lines, raw_lines, denial_carcs
