"""The runner's own check that a result proves its claim (DESIGN §4: never report a status we did not read
for this claim). Adapters check the page against the query before they return; this is the second lock:
a result whose shown identifiers are missing or disagree with the query is refused, whatever the adapter
said. Messages name fields, never values (they may be PHI).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from core.claims import ClaimQuery, ClaimStatusResult, id_key
from core.errors import PortalError

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def claim_number_key(value: str) -> str:
    """A claim number as a comparable key: case, spaces, dashes and other punctuation do not count.
    (Prefixes and leading zeros are portal conventions: each adapter's mapping strips its own.)"""
    return _NOT_ALNUM.sub("", value.upper())


def unproven(q: ClaimQuery, r: ClaimStatusResult,
             number_key: Callable[[str], str | None] = claim_number_key) -> str | None:
    """Why `r` does not prove it is `q`'s claim, or None when it does. `number_key` is the portal's own
    claim-number normalization when its adapter has one (prefixes, leading zeros)."""
    if r.claim_ref != q.claim_ref:
        return "result is for another claim reference"
    if r.shown_member_id is None and r.shown_claim_number is None:
        # the normalized payer claim number alone is the adapter's word, not what the page showed
        return "the page showed neither a claim number nor a member id"
    if r.shown_member_id is not None and id_key(r.shown_member_id) != id_key(q.member_id):
        return "member id shown differs from the query"
    if r.shown_dos_from is not None:
        to = r.shown_dos_to or r.shown_dos_from
        if not (r.shown_dos_from <= q.dos_to and q.dos_from <= to):
            return "dates of service shown do not overlap the query"
    if r.shown_billed is not None and r.shown_billed != q.billed:
        return "billed amount shown differs from the query"
    if q.payer_claim_number:
        for read, what in ((r.payer_claim_number, "claim number read"), (r.shown_claim_number, "claim number shown")):
            if read and not _same_number(read, q.payer_claim_number, number_key):
                return f"{what} differs from the query"
    return None


def _same_number(a: str, b: str, number_key: Callable[[str], str | None]) -> bool:
    try:
        return number_key(a) == number_key(b)
    except PortalError:  # a number the portal's own normalization refuses is not the claim's
        return False
