"""Franklin Medicaid MMIS adapter: log in, submit a claim inquiry, poll the Response List, pick the claim
asked for, read Claim Detail, and resolve each proprietary EOB code through the portal's crosswalk.

Promises (DESIGN.md §4):
- No silent false success: the claim shown is proven against the query (ICN + recipient, or recipient +
  DOS overlap + billed amount + billing NPI); every field comes from the page; unknown labels, edits and
  EOB codes are PortalDrift.
- Read-only: `allowed_writes` lists the login, terms-of-use, "remind me later" and claim-inquiry posts.
  The password change, security check, profile re-verification and the claim action buttons are never
  pressed (and would be aborted by the guard).
- Evidence is the runner's (it snapshots the page on every failure); errors carry no PHI.

One session per user id on this portal: a second login ends the first, and every lookup costs ~5
counted requests against a 180-per-minute rate limit, so a session runs one lookup at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from portals.base import (
    AmbiguousClaim,
    Capability,
    ClaimMismatch,
    ClaimNotFound,
    ClaimQuery,
    ClaimStatusResult,
    Credentials,
    LineAdjustment,
    LineResult,
    NeedsAttention,
    PortalDrift,
    PortalError,
    PortalUnavailable,
    RequestPattern,
    SessionExpired,
    register,
)
from portals.medicaid import mapping
from portals.medicaid.mapping import EobEntry, mdy, mdy_or_na, money, money_or_na, optional_text
from portals.medicaid.pages import (
    HOME,
    LOGIN,
    PASSWORD_WARNING,
    TERMS,
    ClaimDetail,
    ClaimDetailPage,
    CrosswalkPage,
    GridRow,
    InquiryPage,
    LoginPage,
    ResponseListPage,
    ResponsePage,
)

CROSSWALK_STATE = "medicaid.eob_crosswalk"  # session.state key: EOB code -> EobEntry, read once per session
CROSSWALK_LOCK = "medicaid.eob_crosswalk_lock"
# The Response List says PENDING for ~2 s after an inquiry (12 s on a slow day): first look after 2 s,
# then back off; ~40 s and 14 looks at most, then the lookup is retried later as unavailable.
POLL_DELAYS_S = (2.0, 0.5, 0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 5.0, 5.0, 5.0, 5.0, 5.0)
MAX_LOGIN_STEPS = 4  # terms of use, password warning, home
MAX_RESULT_PAGES = 20  # 10 claims a page; more than 200 hits for one recipient + DOS is not a lookup
MAX_CROSSWALK_PAGES = 20
MAX_DETAIL_PROBES = 5  # candidates opened to compare the billing NPI before calling it ambiguous


@asynccontextmanager
async def portal_errors(what: str) -> AsyncIterator[None]:
    """The one place Playwright errors become the contract's errors (messages without PHI)."""
    try:
        yield
    except PortalError:
        raise
    except PlaywrightTimeoutError as e:
        raise PortalUnavailable(f"{what}: the portal did not answer in time") from e
    except PlaywrightError as e:
        raise PortalUnavailable(f"{what}: browser or network error") from e


@register
class MedicaidAdapter:
    key = "medicaid"
    capabilities = frozenset({Capability.CLAIM_STATUS})
    allowed_writes = (
        RequestPattern(method="POST", url_regex=r"^https?://[^/]+/Login\.aspx$"),
        RequestPattern(method="POST", url_regex=r"^https?://[^/]+/TermsOfUse\.aspx$"),
        RequestPattern(method="POST", url_regex=r"^https?://[^/]+/PasswordExpiry\.aspx$"),  # Remind Me Later
        RequestPattern(method="POST", url_regex=r"^https?://[^/]+/Claims/Inquiry\.aspx$"),
    )
    max_in_flight = 1

    # ------------------------------------------------------------------ login / verify
    async def login(self, session: Any, creds: Credentials) -> None:
        """Sign in (password + terms checkbox; no MFA on this portal), accept the terms-of-use
        interstitial, postpone a password-expiry warning; gates a human must pass raise NeedsAttention."""
        async with portal_errors("login"):
            page = LoginPage(await session.page())
            await page.open()
            path = await page.sign_in(creds.username, creds.password)
            for _ in range(MAX_LOGIN_STEPS):
                if path == LOGIN:
                    raise mapping.login_error(await page.login_message())
                if path == TERMS:
                    path = await page.accept_terms_of_use()
                elif path == PASSWORD_WARNING:
                    path = await page.remind_me_later()
                elif await page.is_home():
                    return
                else:
                    raise PortalDrift("login: unexpected page after signing in")
            raise PortalDrift("login: did not reach the home page")

    async def verify(self, session: Any) -> bool:
        """True when the session's cookies still open the announcements page."""
        async with portal_errors("verify"):
            page = LoginPage(await session.page())
            try:
                await page.goto(HOME)
            except (SessionExpired, NeedsAttention):
                return False
            return await page.is_home()

    # ------------------------------------------------------------------ claim status
    async def claim_status(self, session: Any, q: ClaimQuery) -> ClaimStatusResult:
        """Search (ICN, else recipient + DOS + billing NPI), prove the claim, read and normalize it."""
        async with portal_errors(f"claim {q.claim_ref}"):
            page = await session.page()
            inquiry = InquiryPage(page)
            await inquiry.open()
            if q.payer_claim_number:
                ref = await inquiry.by_icn(q.payer_claim_number)
            else:
                ref = await inquiry.by_recipient(q.member_id, q.dos_from, q.dos_to, q.billing_npi)
            response = ResponsePage(page)
            await response.open(await self._wait_for_response(ResponseListPage(page), ref, q))
            rows = await self._all_results(response, q)
            detail = await self._pick(ClaimDetailPage(page), rows, q)
            result = await self._result(session, detail, q)
            result.raw["inquiry_reference"] = ref
            return result

    async def _wait_for_response(self, responses: ResponseListPage, ref: str, q: ClaimQuery) -> str:
        """Bounded polling of the Response List (the portal's request/response split): the link to
        the response once it is COMPLETE."""
        for delay in POLL_DELAYS_S:
            await asyncio.sleep(delay)
            await responses.refresh()
            status, href = await responses.response_for(ref)
            if status == "COMPLETE" and href:
                return href
            if status != "PENDING":
                raise PortalDrift("response list: unknown inquiry status")
        raise PortalUnavailable(f"claim {q.claim_ref}: inquiry response not ready in time")

    async def _all_results(self, response: ResponsePage, q: ClaimQuery) -> list[GridRow]:
        """Every row of the response, walking its pages; proves the walk saw all the portal counted."""
        message = await response.not_found_message()
        if message is not None:
            if mapping.is_not_found(message):
                raise ClaimNotFound(f"claim {q.claim_ref}: not on file at the portal")
            raise PortalDrift("response: unknown message instead of results")
        rows: list[GridRow] = []
        for _ in range(MAX_RESULT_PAGES):
            page = await response.results()
            rows.extend(page.rows)
            if page.next_href is None:
                if page.page != page.pages or len(rows) != page.total:
                    raise PortalDrift("response: rows read do not add up to the count shown")
                return rows
            await response.open(page.next_href)
        raise AmbiguousClaim(f"claim {q.claim_ref}: search returned too many claims to choose from")

    async def _pick(self, details: ClaimDetailPage, rows: list[GridRow], q: ClaimQuery) -> ClaimDetail:
        """The one claim asked for, opened and proven; ClaimMismatch / AmbiguousClaim otherwise."""
        if q.payer_claim_number:
            found = [r for r in rows if r.cells["ICN"] == q.payer_claim_number]
        else:
            found = [r for r in rows if _row_matches(r, q)]
            if len(found) > 1:  # same recipient, DOS and amount: the patient account # is ours
                ours = [r for r in found if r.cells["Patient Acct #"] == q.claim_ref]
                found = ours if len(ours) == 1 else found
        if not found:
            raise ClaimMismatch(f"claim {q.claim_ref}: the portal listed only other claims")
        if len(found) > MAX_DETAIL_PROBES:
            raise AmbiguousClaim(f"claim {q.claim_ref}: {len(found)} claims match the search")
        proven: list[ClaimDetail] = []
        for row in found:
            if not row.href:
                raise PortalDrift("response: claim row without a detail link")
            await details.open(row.href)
            detail = await details.read()
            if _detail_matches(detail, q):
                proven.append(detail)
        if not proven:
            raise ClaimMismatch(f"claim {q.claim_ref}: the claim shown is not the one asked for")
        if len(proven) > 1:
            raise AmbiguousClaim(f"claim {q.claim_ref}: {len(proven)} claims match the search")
        return proven[0]

    # ------------------------------------------------------------------ reading
    async def _result(self, session: Any, d: ClaimDetail, q: ClaimQuery) -> ClaimStatusResult:
        h = d.header
        label = h["Claim Status:"].strip()
        billed = money(h["Billed Amount:"], what="billed amount")
        allowed = money_or_na(h["Allowed Amount:"], what="allowed amount")
        paid = money_or_na(h["Paid Amount:"], what="paid amount")
        liability = money_or_na(h["Patient Liability:"], what="patient liability")
        reason = optional_text(h["Reason:"])
        codes = [c for line in d.lines for c in _eob_rows(line)] + d.claim_eobs
        crosswalk = await self._crosswalk(session) if codes else {}
        for code in d.claim_eobs:  # claim-level notes: informational, but must be known codes
            _eob(crosswalk, code)
        lines = [_line(row, crosswalk) for row in d.lines]
        category, code = mapping.claim_status(
            label, denial_carcs=[a.carc for ln in lines for a in ln.adjustments], rejection_edit=reason or "")
        adjudicated = category.startswith("F")
        if adjudicated != (allowed is not None and paid is not None and liability is not None):
            raise PortalDrift("claim detail: amounts contradict the claim status")
        if adjudicated and (not lines or any(ln.allowed is None or ln.paid is None for ln in lines)):
            raise PortalDrift("claim detail: adjudicated claim without adjudicated lines")
        icn = h["ICN:"].strip()
        return ClaimStatusResult(
            claim_ref=q.claim_ref,
            portal_key=self.key,
            observed_at=datetime.now(UTC),
            status_category=category,
            status_code=code,
            payer_claim_number=None if icn == "NOT ASSIGNED" else icn,
            billed=billed,
            allowed=allowed,
            paid=paid,
            patient_responsibility=liability,
            check_number=optional_text(h["RA Check/EFT #:"]),
            check_date=mdy_or_na(h["Payment Date:"], what="payment date"),
            lines=lines if adjudicated else [],
            rejection_reason=reason if category in mapping.REJECTION_CATEGORIES else None,
            raw_label=label,
            raw=_raw(d),
            shown_member_id=h["Recipient ID:"].strip(),
            shown_dos_from=mdy(h["DOS From:"], what="DOS from"),
        )

    async def _crosswalk(self, session: Any) -> dict[str, EobEntry]:
        """The portal's EOB Code Crosswalk, read once per session (on its own tab) and cached."""
        table = session.state.get(CROSSWALK_STATE)
        if table is not None:
            return table
        lock = session.state.setdefault(CROSSWALK_LOCK, asyncio.Lock())
        async with lock:
            table = session.state.get(CROSSWALK_STATE)
            if table is not None:
                return table
            tab = await session.new_page()
            try:
                table = await _read_crosswalk(CrosswalkPage(tab))
            finally:
                await tab.close()
            session.state[CROSSWALK_STATE] = table
            return table


async def _read_crosswalk(page: CrosswalkPage) -> dict[str, EobEntry]:
    await page.open()
    table: dict[str, EobEntry] = {}
    for _ in range(MAX_CROSSWALK_PAGES):
        rows, total, nxt = await page.rows()
        for r in rows:
            c = r.cells
            carc = optional_text(c["CARC"])
            entry = EobEntry(code=c["EOB Code"], description=c["EOB Description"],
                             group=optional_text(c["Group Code"]), carc=carc, rarc=optional_text(c["RARC"]))
            if (entry.carc is None) != (entry.group is None):
                raise PortalDrift("crosswalk: a code with a CARC but no group (or the reverse)")
            table[entry.code] = entry
        if nxt is None:
            if len(table) != total:
                raise PortalDrift("crosswalk: codes read do not add up to the count shown")
            return table
        await page.open(nxt)
    raise PortalDrift("crosswalk: more pages than expected")


# ---------------------------------------------------------------------- proof
def _row_matches(r: GridRow, q: ClaimQuery) -> bool:
    c = r.cells
    return (c["Recipient ID"] == q.member_id
            and _overlaps(mdy(c["From DOS"], what="DOS"), mdy(c["To DOS"], what="DOS"), q)
            and money(c["Billed"], what="billed amount") == q.billed)


def _detail_matches(d: ClaimDetail, q: ClaimQuery) -> bool:
    h = d.header
    if h["Recipient ID:"].strip() != q.member_id:
        return False
    if q.payer_claim_number:
        return h["ICN:"].strip() == q.payer_claim_number
    return (_overlaps(mdy(h["DOS From:"], what="DOS from"), mdy(h["DOS To:"], what="DOS to"), q)
            and money(h["Billed Amount:"], what="billed amount") == q.billed
            and h["Billing NPI:"].strip() == q.billing_npi)


def _overlaps(dos_from: date, dos_to: date, q: ClaimQuery) -> bool:
    return dos_from <= q.dos_to and dos_to >= q.dos_from


# ---------------------------------------------------------------------- lines and EOB codes
def _eob_rows(line: GridRow) -> list[str]:
    return [cells[0] for cells in line.nested if cells]


def _eob(crosswalk: dict[str, EobEntry], code: str) -> EobEntry:
    try:
        return crosswalk[code]
    except KeyError:
        raise PortalDrift("EOB code not in the portal's EOB crosswalk") from None


def _line(row: GridRow, crosswalk: dict[str, EobEntry]) -> LineResult:
    c = row.cells
    try:
        line_no = int(c["Line"])
    except ValueError:
        raise PortalDrift("service lines: unreadable line number") from None
    adjustments: list[LineAdjustment] = []
    rarcs: list[str] = []
    for cells in row.nested:
        if len(cells) != 3:
            raise PortalDrift("service lines: EOB code row changed shape")
        code, description, amount = cells
        entry = _eob(crosswalk, code)
        if entry.group is None or entry.carc is None:
            continue  # informational: a note to the provider, not an adjustment
        adjustments.append(LineAdjustment(group=entry.group, carc=entry.carc,
                                          amount=money(amount, what="EOB amount"),
                                          raw=f"{code} {description}"))
        if entry.rarc and entry.rarc not in rarcs:
            rarcs.append(entry.rarc)
    return LineResult(
        line_no=line_no,
        cpt=c["Procedure"],
        modifiers=c["Modifiers"].split(),
        billed=money(c["Billed"], what="line billed"),
        allowed=money_or_na(c["Allowed"], what="line allowed"),
        paid=money_or_na(c["Paid"], what="line paid"),
        adjustments=adjustments,
        rarcs=rarcs,
    )


def _raw(d: ClaimDetail) -> dict[str, Any]:
    """What the page showed, minus the recipient (shown_member_id carries the id; the name is not read)."""
    raw: dict[str, Any] = {k.rstrip(":"): v for k, v in d.header.items() if k != "Recipient ID:"}
    raw["claim_eob_codes"] = d.claim_eobs
    raw["lines"] = [{**{k: v for k, v in ln.cells.items() if k != "EOB Codes"}, "EOB Codes": ln.nested}
                    for ln in d.lines]
    return raw
