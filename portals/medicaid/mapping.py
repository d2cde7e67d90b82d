"""What the Franklin Medicaid MMIS says, translated to X12: status labels -> 277 category + status code,
rejection edits -> 277 status code, login/not-found messages -> error kinds, the EOB crosswalk entry type,
and the parsers for the portal's money and date formats.

The EOB code -> group/CARC/RARC table is NOT here on purpose: it is read from the portal's own
EOB Code Crosswalk page once per session (see adapter.py), so a payer-side change is picked up, and an
EOB code missing from it is drift, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from core.errors import AccountLocked, LoginRejected, NeedsAttention, PortalDrift, PortalError, SessionExpired
from portals.formats import mdy, money, optional

# Claim status label (as printed on Claim Detail) -> (277 category, 277 status code).
# F2 has none (the page shows a label and the reasons, no code); A3/A6/A7's follows the edit (REJECTION_EDITS).
STATUS_LABELS: dict[str, tuple[str, str | None]] = {
    "RECEIVED": ("A1", "19"),  # entity acknowledges receipt of claim
    "ACCEPTED": ("A2", "20"),  # accepted for processing
    "RETURNED TO PROVIDER (RTP)": ("A3", None),
    "REJECTED - INCOMPLETE": ("A6", None),
    "REJECTED - INVALID DATA": ("A7", None),
    "REJECTED - RELATIONAL EDIT": ("A8", None),
    "IN PROCESS": ("P1", "20"),
    "SUSPENDED": ("P2", "20"),  # pended for payer review
    "PAID": ("F1", "65"),  # claim/line has been paid (also partial payments: see the lines)
    "DENIED": ("F2", None),
    "REPROCESSED - PAID": ("F3", "65"),  # an overturned denial, paid on reprocessing
    "ADJUDICATED - NO PAYMENT": ("F4", "107"),  # processed according to contract provisions
}
REJECTION_CATEGORIES = frozenset({"A3", "A6", "A7", "A8"})

# Front-end edit text (the detail page's "Reason", upper case) -> 277 status code.
REJECTION_EDITS: dict[str, str] = {
    "SUBSCRIBER AND SUBSCRIBER ID NOT FOUND": "33",
    "BILLING PROVIDER NPI INVALID": "562",
    "MISSING OR INVALID INFORMATION": "21",
    "DATE(S) OF SERVICE INVALID": "187",
    "DIAGNOSIS CODE INVALID": "255",
}

# The Response page's "nothing found" messages (prefixes). Anything else in that box is drift.
NOT_FOUND_MESSAGES = (
    "ICN NOT ON FILE",
    "RECIPIENT ID NOT ON FILE",
    "NO CLAIMS FOUND FOR THE SEARCH CRITERIA ENTERED",
    "BILLING PROVIDER NPI NOT ENROLLED",
)

# Login page error text -> error kind, checked in order (the locking attempt's message starts like a
# plain bad password, so "locked" is looked for first).
LOGIN_MESSAGES: tuple[tuple[str, type[PortalError], str], ...] = (
    ("has been locked", AccountLocked, "account locked after failed logins"),
    ("account is locked", AccountLocked, "account is locked"),
    ("deactivated", NeedsAttention, "account deactivated (inactivity)"),
    ("invalid user id or password", LoginRejected, "user id or password rejected"),
    # the session being signed in ended before it reached the home page (the portal sends the browser back
    # to its login page and says why): nothing was refused, a new sign-in may pass
    ("session has expired", SessionExpired, "the session ended while signing in (expired)"),
    ("session has timed out", SessionExpired, "the session ended while signing in (timed out)"),
    ("signed in elsewhere", SessionExpired, "the session ended while signing in (the user ID signed in "
                                            "elsewhere)"),
    ("you have been logged out", SessionExpired, "the session ended while signing in (logged out)"),
    # the password on file is no longer the portal's: a person must enter the new one (never retried)
    ("password has been changed", NeedsAttention, "the portal says the password was changed"),
)

NA = "N/A"
ICN_DIGITS = 13
NOT_ASSIGNED = "NOT ASSIGNED"  # Claim Detail's ICN for a claim rejected at the front end


def normalize_claim_number(text: str | None) -> str | None:
    """The comparison key of a claim number (ICN), however the page or the PMS prints it: upper case,
    without spaces, dashes, dots or slashes, without a printed "ICN" label, without leading zeros.
    '00 2-26123-0000045', 'ICN 226 123 0000045' and '2261230000045' have the same key. None for an empty
    value or "NOT ASSIGNED"."""
    if text is None:
        return None
    s = re.sub(r"[^0-9A-Z]", "", text.upper())
    if s == NOT_ASSIGNED.replace(" ", ""):
        return None
    s = re.sub(r"^ICN(?:NO|NUMBER)?", "", s).lstrip("0")
    return s or None


def icn(text: str | None) -> str | None:
    """The ICN as the portal's search form takes it (13 digits), or None when `text` cannot be one."""
    key = normalize_claim_number(text)
    if key is None or not key.isdigit() or len(key) > ICN_DIGITS:
        return None
    return key.zfill(ICN_DIGITS)


@dataclass(frozen=True)
class EobEntry:
    """One row of the portal's EOB Code Crosswalk; informational notes (9xxx) have no group and CARC."""

    code: str
    description: str
    group: str | None
    carc: str | None
    rarc: str | None


def claim_status(label: str, *, denial_carcs: Sequence[str] = (), rejection_edit: str = "") -> tuple[str, str | None]:
    """(277 category, 277 status code) for a status label; unknown label or edit -> PortalDrift. A denial
    has no code: the portal shows none, and none is guessed from its reasons."""
    try:
        category, code = STATUS_LABELS[label.strip().upper()]
    except KeyError:
        raise PortalDrift("unknown claim status label on Claim Detail") from None
    if category == "F2":
        if not denial_carcs:
            raise PortalDrift("denied claim shows no denial reason")
        return category, None
    if category in REJECTION_CATEGORIES:
        try:
            code = REJECTION_EDITS[rejection_edit.strip().upper()]
        except KeyError:
            raise PortalDrift("unknown rejection reason text on Claim Detail") from None
    if code is None:  # a label table entry without a code: a bug here, not on the page
        raise PortalDrift("no 277 status code for the claim status label")
    return category, code


def is_not_found(message: str) -> bool:
    text = message.strip().upper()
    return any(text.startswith(m) for m in NOT_FOUND_MESSAGES)


def login_error(message: str) -> PortalError:
    """The error a login-page message means; an unknown message is drift."""
    text = message.lower()
    for needle, kind, why in LOGIN_MESSAGES:
        if needle in text:
            return kind(f"login: {why}")
    return PortalDrift("login: unknown message on the login page")


def money_or_na(text: str, *, what: str) -> Decimal | None:
    """Like money(), but 'N/A' (nothing adjudicated yet) is None."""
    return None if text.strip() == NA else money(text, what=what)


def mdy_or_na(text: str, *, what: str) -> date | None:
    """Like mdy(), but 'N/A' or an empty cell is None."""
    return None if text.strip() in (NA, "") else mdy(text, what=what)


def optional_text(text: str) -> str | None:
    return optional(text, blanks=(NA, ""))
