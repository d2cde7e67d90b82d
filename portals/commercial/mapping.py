"""What the Northstar Health provider portal says, translated to X12: status labels -> 277 category +
status code, returned-claim reasons -> 277 status code, adjustment wording -> group code, reason and
remark TEXT -> CARC / RARC (the portal never shows a code), and parsers for its money and date formats.

Reason text is matched exactly: first the payer's own paraphrases (paraphrases.csv, recorded from the
portal), then the short descriptions of the shipped code lists (core.codes). Text that matches nothing,
or more than one current code, is drift: never a guess.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path

from core.codes import carc, rarc, short_description
from core.errors import AccountLocked, LoginRejected, MfaFailed, NeedsAttention, PortalDrift, PortalError

HERE = Path(__file__).resolve().parent

# Overview "Claim status" label -> (277 category, 277 status code, the "Adjudication status" the portal
# prints beside it). The second text is checked too: a label whose companion changed is drift.
# Code None: for A3/A6/A7 it follows the returned reason (RETURNED_REASONS); for F2 the page shows none
# and none is reported (require_denial_reason()).
STATUS_LABELS: dict[str, tuple[str, str | None, str]] = {
    "Acknowledgement - received": ("A1", "19", "Received"),
    "Acknowledgement - accepted": ("A2", "20", "Accepted for processing"),
    "Returned - not processed": ("A3", None, "Rejected"),
    "Returned - missing information": ("A6", None, "Rejected"),
    "Returned - invalid information": ("A7", None, "Rejected"),
    "In process": ("P1", "20", "Pending - in process"),
    "Pending review": ("P2", "20", "Pending - under review"),
    "Paid": ("F1", "65", "Finalized - payment issued"),
    "Denied": ("F2", None, "Finalized - denied"),
    "Reprocessed": ("F3", "65", "Finalized - revised"),
    "Processed - no payment": ("F4", "107", "Finalized - no payment due"),
}
REJECTION_CATEGORIES = frozenset({"A3", "A4", "A6", "A7", "A8"})

# "Returned reason" (front-end edit, no claim number) -> 277 status code.
RETURNED_REASONS: dict[str, str] = {
    "Subscriber and subscriber id not found": "33",
    "Billing provider NPI invalid": "562",
    "Missing or invalid information": "21",
    "Date(s) of service invalid": "187",
    "Diagnosis code invalid": "255",
}

# "Adjustment type" wording -> CARC group code.
GROUP_TEXT: dict[str, str] = {
    "Contractual obligation": "CO",
    "Patient responsibility": "PR",
    "Other adjustment": "OA",
    "Payer initiated reduction": "PI",
    "Correction or reversal": "CR",
}

# Service line "Line status" wording: adjudicated? denied?
LINE_STATUS: dict[str, tuple[bool, bool]] = {
    "Processed": (True, False),
    "Denied": (True, True),
    "Not yet processed": (False, False),
}

# Payments card "Payment method" wording (a check or EFT number is the remittance trace).
PAYMENT_METHODS = frozenset({"Paper check", "Electronic funds transfer (EFT)"})

# Search outcomes (the search JSON's "result") that mean "nothing on file" -> PHI-free explanation.
# The member search's two come with a modal over the page ("Member not found", "No matching claims").
NOT_FOUND_RESULTS: dict[str, str] = {
    "not_found": "claim number not on file",
    "member_not_found": "member ID and date of birth not on file",
    "no_claims": "member found, no claim for those dates of service",
}
NOT_FOUND_IN_MODAL = frozenset({"member_not_found", "no_claims"})


def status_for_label(label: str, adjudication_status: str) -> tuple[str, str | None]:
    row = STATUS_LABELS.get(label)
    if row is None:
        raise PortalDrift("unknown claim status label")
    category, code, companion = row
    if adjudication_status != companion:
        raise PortalDrift("claim status label and adjudication status disagree")
    return category, code


def returned_reason_code(text: str | None) -> str:
    code = RETURNED_REASONS.get((text or "").strip())
    if code is None:
        raise PortalDrift("unknown returned-claim reason")
    return code


def require_denial_reason(denial_carcs: set[str]) -> None:
    """A denial shows at least one reason. (It shows no 277 status code, "Denied" maps to none: none is
    reported rather than one guessed from the reasons.)"""
    if not denial_carcs:
        raise PortalDrift("denied claim without a denial reason")


def group_for_text(text: str) -> str:
    group = GROUP_TEXT.get(text.strip())
    if group is None:
        raise PortalDrift("unknown adjustment type wording")
    return group


# ---------------------------------------------------------------- reason / remark text -> code
@lru_cache
def _paraphrases() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"carc": {}, "rarc": {}}
    with (HERE / "paraphrases.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["kind"]][_norm(row["text"])] = row["code"]
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@lru_cache
def _by_description(kind: str) -> dict[str, tuple[str, ...]]:
    """Short description -> codes, current codes first (a deactivated twin never wins a tie)."""
    table = carc() if kind == "carc" else rarc()
    out: dict[str, list[tuple[bool, str]]] = {}
    for code, row in table.items():
        out.setdefault(_norm(short_description(row["description"])), []).append((row["status"] == "current", code))
    result = {}
    for text, codes in out.items():
        current = tuple(c for ok, c in codes if ok)
        result[text] = current or tuple(c for _, c in codes)
    return result


def code_for_text(kind: str, text: str) -> str:
    """'carc' | 'rarc' text as the portal prints it -> code; PortalDrift when unknown or ambiguous."""
    key = _norm(text)
    if not key or key.endswith("\u2026"):
        raise PortalDrift(f"{kind} text missing or cut short")
    hit = _paraphrases()[kind].get(key)
    if hit:
        return hit
    codes = _by_description(kind).get(key, ())
    if len(codes) != 1:
        raise PortalDrift(f"unknown or ambiguous {kind} text")
    return codes[0]


# ---------------------------------------------------------------- claim numbers
# How Northstar prints its claim numbers besides the bare 10 characters the PMS files (from the 277/835):
# with its payer prefix ("NSH-"), in dash- or space-separated groups, zero-padded. Its alphabet
# (A-Z and 2-9 without I, O, 0, 1) has no zero, so leading zeros are padding, never part of the number.
_CLAIM_NUMBER_PREFIX = re.compile(r"^\s*NSH(?:\s*[-#:]\s*|\s+)(?=[0-9A-Z])", re.IGNORECASE)
_CLAIM_NUMBER_SEPARATORS = re.compile(r"[\s\-./]+")
_CLAIM_NUMBER = re.compile(r"^[0-9A-Z]+$")


def normalize_claim_number(text: str | None) -> str:
    """A claim number as the PMS holds it or the portal prints it -> one canonical form, for comparing:
    upper case, without the payer's "NSH" prefix, separators (spaces, dashes, dots, slashes) and
    leading zeros. "" when there is no number; PortalDrift when it holds anything else."""
    s = (text or "").strip()
    if not s or s == "\u2014":  # the portal prints an em dash for "no claim number"
        return ""
    s = _CLAIM_NUMBER_PREFIX.sub("", s, count=1)  # the prefix only with a separator: NSHxxx is a number
    s = _CLAIM_NUMBER_SEPARATORS.sub("", s).upper().lstrip("0")
    if not _CLAIM_NUMBER.match(s):
        raise PortalDrift("claim number in an unknown format")
    return s


# ---------------------------------------------------------------- sign-in answers
# The password step's refusal ("result" of its 401 answer) -> error kind and a PHI-free message.
LOGIN_REFUSALS: dict[str, tuple[type[PortalError], str]] = {
    "bad": (LoginRejected, "username or password rejected"),
    "locked": (AccountLocked, "account locked after unsuccessful attempts"),
    "disabled": (NeedsAttention, "account disabled (not used for 90 days): an administrator must restore it"),
}
# The verification-code step's refusal.
MFA_REFUSALS: dict[str, tuple[type[PortalError], str]] = {
    "bad": (MfaFailed, "authenticator code refused"),
    "locked": (AccountLocked, "account locked after unsuccessful verification codes"),
}
