"""What Meridian Exchange says, translated: status badges -> X12 277 category, the portal's messages ->
error kinds, bare CARC/RARC/group/277 codes checked against the product's code lists, and the parsers for
the portal's money and date formats.

The badge table is one label per 277 category; the detail also prints the 277 category and status code,
which must agree with the badge (a disagreement is drift, never a guess). Reasons are printed as bare
codes, so no text -> CARC table is needed: a code the product's code list does not know is drift.
"""

from __future__ import annotations

import re
from datetime import date

from core.codes import carc, group_codes, rarc, status_codes
from core.errors import (
    AccountLocked,
    ClaimError,
    LoginRejected,
    MfaFailed,
    NeedsAttention,
    PortalDrift,
    PortalError,
    PortalUnavailable,
)
from portals.formats import mdy

# Status badge (results table and detail) -> X12 277 claim status category.
STATUS_LABELS: dict[str, str] = {
    "Received": "A1",
    "Accepted": "A2",
    "Returned - Unprocessable": "A3",
    "Rejected - Missing Information": "A6",
    "Rejected - Invalid Information": "A7",
    "In Process": "P1",
    "Pended": "P2",
    "Finalized - Payment": "F1",
    "Finalized - Denial": "F2",
    "Finalized - Revised": "F3",
    "Finalized - No Payment": "F4",
}
REJECTION_CATEGORIES = frozenset({"A3", "A6", "A7", "A8"})

# The three ways the portal says "nothing found" (results area), by message start.
NOT_FOUND_MESSAGES: dict[str, str] = {
    "The payer could not find any results for this search.": "member found, no claim for the search",
    "Subscriber and subscriber id not found.": "member not found at the payer",
    "Acknowledgement/Not Found": "claim number not on file at the payer",
}
# Styled like an error on every results page, but only information.
INFORMATIONAL_PREFIX = "Important:"

# Login page errors, checked in order ("locked" first: it is the most specific).
LOGIN_MESSAGES: tuple[tuple[str, type[PortalError], str], ...] = (
    ("account is locked", AccountLocked, "account locked after failed attempts"),
    ("has been disabled", NeedsAttention, "account disabled: an administrator must restore it"),
    ("user id or password you entered is incorrect", LoginRejected, "user id or password rejected"),
)
MFA_MESSAGES: tuple[tuple[str, type[PortalError], str], ...] = (
    ("account is locked", AccountLocked, "account locked after too many verification codes"),
    ("code is not valid", MfaFailed, "verification code refused"),
)

PAYER_TIMEOUT = "The payer did not respond in time"
FETCH_FAILED = "Something went wrong. Try again."  # the tool's own words when its request failed
NO_REAL_TIME = "does not support real-time claim status"
NO_REMIT = "We did not find remittance data for this claim."


class PayerNotSupported(ClaimError):
    """The payer chosen for the claim has no real-time claim status on this portal (a routing/setup
    problem for a person to fix; retrying does not help)."""


def category_for(label: str) -> str:
    try:
        return STATUS_LABELS[label.strip()]
    except KeyError:
        raise PortalDrift("unknown claim status badge") from None


def not_found_reason(message: str) -> str | None:
    text = message.strip()
    for start, why in NOT_FOUND_MESSAGES.items():
        if text.startswith(start):
            return why
    return None


def is_informational(message: str) -> bool:
    return message.strip().startswith(INFORMATIONAL_PREFIX)


def _match(message: str, table: tuple[tuple[str, type[PortalError], str], ...], where: str) -> PortalError:
    text = message.lower()
    for needle, kind, why in table:
        if needle in text:
            return kind(f"{where}: {why}")
    return PortalDrift(f"{where}: unknown message")


def login_error(message: str) -> PortalError:
    return _match(message, LOGIN_MESSAGES, "login")


def mfa_error(message: str) -> PortalError:
    return _match(message, MFA_MESSAGES, "verification code")


def search_error(messages: list[str]) -> PortalError:
    """The error the portal's error dialog (or inline error) means for a claim search."""
    text = " ".join(messages)
    if PAYER_TIMEOUT in text:
        return PortalUnavailable("claim search: the payer did not respond in time")
    if FETCH_FAILED in text:
        return PortalUnavailable("claim search: the answer was lost in transit")
    if NO_REAL_TIME in text:
        return PayerNotSupported("claim search: the payer does not support real-time claim status on this "
                                 "portal")
    # the portal's own words stay on the page (evidence): a validation message may echo what was typed
    return PortalDrift("claim search refused by the portal's validation")


# ---------------------------------------------------------------------- codes
def code_part(text: str, *, what: str) -> str:
    """'F2 - Finalized/Denial-...' -> 'F2'."""
    code = text.split(" - ", 1)[0].strip()
    if not code or " " in code:
        raise PortalDrift(f"unreadable {what}")
    return code


def status_code(text: str) -> str:
    code = code_part(text, what="277 status code")
    if code not in status_codes():
        raise PortalDrift("277 status code not in the product's code list")
    return code


def group(code: str) -> str:
    code = code.strip()
    if code not in group_codes():
        raise PortalDrift("adjustment group code not in the product's code list")
    return code


def carc_code(code: str) -> str:
    code = code.strip()
    if code not in carc():
        raise PortalDrift("CARC not in the product's code list")
    return code


def rarc_codes(text: str) -> list[str]:
    """'M15, N130' -> ['M15', 'N130']; 'None' or '' -> []; unknown codes are drift."""
    text = text.strip()
    if text in ("", "None"):
        return []
    out = [c.strip() for c in text.split(",")]
    if any(c not in rarc() for c in out):
        raise PortalDrift("RARC not in the product's code list")
    return out


# ---------------------------------------------------------------------- formats
def service_dates(text: str) -> tuple[date, date]:
    """'07/09/2026' or '07/09/2026 - 07/11/2026' -> (from, to)."""
    parts = [p.strip() for p in text.split(" - ")]
    if len(parts) == 1:
        d = mdy(parts[0], what="service dates")
        return d, d
    if len(parts) == 2:
        return mdy(parts[0], what="service dates"), mdy(parts[1], what="service dates")
    raise PortalDrift("unreadable service dates")


# A label some screens print before the number ("ICN: ", "Claim #"), then separators a screen adds.
_NUMBER_LABEL = re.compile(r"^(?:ICN|DCN|TCN|CLAIM(?:\s*(?:NO\.?|NUMBER))?)(?:\s*[:#])+\s*|^(?:ICN|DCN|TCN)\s+")
_NUMBER_SEPARATORS = re.compile(r"[\s\-./#]")


def claim_number_key(text: str | None) -> str:
    """A payer claim number as the PMS holds it or as a screen prints it -> one comparable key:
    upper case, without a leading "ICN:"/"Claim #" label, spaces, dashes, dots, slashes, or the zero
    padding of fixed-width fields. 'BMH-260810-00002', 'ICN: 0000BMH26081000002' and 'bmh26081000002'
    are the same claim; any other character difference is another claim. '' for no number."""
    t = _NUMBER_LABEL.sub("", (text or "").strip().upper(), count=1)
    t = _NUMBER_SEPARATORS.sub("", t)
    return t.lstrip("0") or ("0" if t else "")
