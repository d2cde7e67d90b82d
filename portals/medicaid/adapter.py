"""Franklin Medicaid MMIS adapter: log in, submit a claim inquiry, open its response once it is ready,
pick the claim asked for, read Claim Detail, and resolve each proprietary EOB code through the portal's
crosswalk.

Promises (DESIGN.md §4):
- No silent false success: the claim shown is proven against the query before a result is returned:
  recipient id, DOS from/to (exactly), billed amount, billing NPI, and the ICN when the query has one
  (compared by `mapping.normalize_claim_number`, so dashes, prefixes, spaces and leading zeros do not
  matter). Claim Detail must also show the claim of the row that was opened (a detail page still showing
  the session's previous claim is reloaded, a bounded number of times). Near matches are dropped, several
  exact matches are AmbiguousClaim, a page that never shows the claim asked for is ClaimMismatch. The
  result's shown_* fields carry what the page printed. Unknown labels, edits and EOB codes are PortalDrift.
- Read-only: `allowed_writes` lists the login, terms-of-use, "remind me later" and claim-inquiry posts.
  The password change, security check, profile re-verification and the claim action buttons are never
  pressed (and would be aborted by the guard).
- Evidence: the lookup ends on Claim Detail of the claim read (the lease's page); errors carry no PHI.

Concurrency (`max_in_flight`): the portal allows one session per user id, but the tabs of one browser
context share its cookie and so its session; its anti-forgery token is per session and every form carries
its own copy, so each lookup fills the form on its own tab. Server-side per-session state is the response
list (each lookup reads only its own reference number) and the "current claim" of Claim Detail (shared
by all tabs: checked against the row opened, see above). The crosswalk is read once per session behind a
lock (session.state). The bound is the rate limit: 180 counted requests a minute / 4 per lookup = 45
lookups a minute at most (43 under the agent's pacer margin). One lookup takes ~3.5 s on an idle
machine (2 s response delay + 4 page loads under realistic latency) and 6-9 s on a busy 2-core one, so
3 to 6 lookups in flight are needed to reach it: 6 keeps the pacer, not the tabs, the limit (measured on
one warm session, realistic latency, a busy 2-core machine: 1 in flight 13.7 lookups/min, 4 in flight
34.5, 6 in flight 42.3 with the pacer holding requests, i.e. at the portal's limit).

Requests (`requests_per_lookup` = 4, counted from fixtures/medicaid: `core.guard` calls `sb.rate_check`
on every authenticated page): GET /Claims/Inquiry.aspx (the form), POST /Claims/Inquiry.aspx (submit),
GET /Claims/Response.aspx?ref= (opened ~2 s after submitting, when the portal says the response is ready;
the Response List is not read), GET /Claims/ClaimDetail.aspx (the claim). More when the response is not
ready yet, a search lists several candidates, or Claim Detail shows a stale claim. The crosswalk (3 pages)
is read once per session, on its own tab while the first response is being prepared. Checked by
tests/portals/test_medicaid_proof.py::test_requests_per_lookup_matches_the_portals_counter.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from core.claims import ClaimQuery, ClaimStatusResult, LineAdjustment, LineResult, id_key
from core.clock import portal_clock
from core.credentials import Credentials
from core.errors import (
    AmbiguousClaim,
    ClaimMismatch,
    ClaimNotFound,
    NeedsAttention,
    PortalDrift,
    PortalUnavailable,
    SessionExpired,
)
from portals.base import Capability, RequestPattern, register
from portals.dom import GridRow
from portals.edge import portal_errors
from portals.formats import mdy, money
from portals.medicaid import mapping
from portals.medicaid.mapping import EobEntry, mdy_or_na, money_or_na, optional_text
from portals.medicaid.pages import (
    HOME,
    LOGIN,
    PASSWORD_WARNING,
    TERMS,
    ClaimDetail,
    ClaimDetailPage,
    CrosswalkPage,
    InquiryPage,
    LoginPage,
    ResponsePage,
)

CROSSWALK_STATE = "medicaid.eob_crosswalk"  # session.state key: EOB code -> EobEntry, read once per session
CROSSWALK_LOCK = "medicaid.eob_crosswalk_lock"
# The portal prepares an inquiry's response ~2 s after it is submitted (12 s on a slow day): the first
# look is 2 s after the submit answered, then back off; ~40 s and 14 looks at most, then the lookup is
# retried later as unavailable. (This paces a server-side queue; pages are waited on by their response.)
RESPONSE_READY_S = 2.05
POLL_DELAYS_S = (0.5, 0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 5.0, 5.0, 5.0, 5.0, 5.0)
STALE_RELOADS = 3  # Claim Detail reloads when it still shows the session's previous claim
MAX_LOGIN_STEPS = 4  # terms of use, password warning, home
MAX_RESULT_PAGES = 20  # 10 claims a page; more than 200 hits for one recipient + DOS is not a lookup
MAX_CROSSWALK_PAGES = 20
MAX_DETAIL_PROBES = 5  # candidates opened to compare the billing NPI before calling it ambiguous


@register
class MedicaidAdapter:
    key = "medicaid"
    capabilities = frozenset({Capability.CLAIM_STATUS})
    allowed_writes = (
        RequestPattern.post("/Login.aspx"),
        RequestPattern.post("/TermsOfUse.aspx"),
        RequestPattern.post("/PasswordExpiry.aspx"),  # Remind Me Later
        RequestPattern.post("/Claims/Inquiry.aspx"),
    )
    max_in_flight = 6
    rate_limit_per_minute = 180
    # Every page behind the portal's session guard (fixtures/medicaid/core.guard -> sb.rate_check); the
    # login page, logout, the security-check post and unknown pages are not counted.
    counted_requests = (
        RequestPattern.under("/Home.aspx"),
        RequestPattern.under("/TermsOfUse.aspx"),
        RequestPattern.under("/PasswordExpiry.aspx"),
        RequestPattern.under("/ChangePassword.aspx"),
        RequestPattern.under("/Claims/"),
        RequestPattern.under("/Eligibility/"),
        RequestPattern.under("/PriorAuth/"),
        RequestPattern.under("/Provider/"),
        RequestPattern.under("/Reference/"),
    )
    requests_per_lookup = 4  # see the module docstring
    claim_number_key = staticmethod(mapping.normalize_claim_number)  # the runner's proof check uses it too

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
        """Search (ICN, else recipient + DOS + billing NPI), prove the claim, read and normalize it.
        Runs on the lease's own page; several lookups may run at once on one session."""
        async with portal_errors(f"claim {q.claim_ref}"):
            page = await session.page()
            inquiry = InquiryPage(page)
            await inquiry.open()
            icn = mapping.icn(q.payer_claim_number)
            if icn is not None:
                ref = await inquiry.by_icn(icn)
            else:
                ref = await inquiry.by_recipient(q.member_id, q.dos_from, q.dos_to, q.billing_npi)
            submitted = portal_clock().monotonic()
            # the crosswalk is read on its own tab while the portal prepares the response
            crosswalk = None if CROSSWALK_STATE in session.state else \
                asyncio.ensure_future(self._crosswalk(session))
            try:
                response = ResponsePage(page)
                await self._open_response(response, ref, submitted, q)
                rows = await self._all_results(response, q)
                detail = await self._pick(ClaimDetailPage(page), rows, q, by_icn=icn is not None)
                if crosswalk is not None:
                    await crosswalk
                    crosswalk = None
                result = await self._result(session, detail, q)
            finally:
                if crosswalk is not None:  # the lookup failed first: stop reading, keep its error
                    crosswalk.cancel()
                    with contextlib.suppress(BaseException):
                        await crosswalk
            _check_proof(result, q)
            result.raw["inquiry_reference"] = ref
            return result

    async def _open_response(self, response: ResponsePage, ref: str, submitted: float, q: ClaimQuery) -> None:
        """Open the inquiry's response once the portal has it ready (the request/response split): first
        when it should be ready, then backing off while the portal says "not yet available"."""
        clock = portal_clock()  # the portal's time: its queue answers on it
        wait = RESPONSE_READY_S - (clock.monotonic() - submitted)
        for delay in (max(wait, 0.0), *POLL_DELAYS_S):
            if delay:
                await clock.sleep(delay)
            if await response.open_ref(ref):
                return
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

    async def _pick(self, details: ClaimDetailPage, rows: list[GridRow], q: ClaimQuery, *,
                    by_icn: bool) -> ClaimDetail:
        """The one claim asked for, opened and proven, left on screen; ClaimMismatch / AmbiguousClaim
        otherwise. Rows are filtered on what the grid shows; the billing NPI is only on Claim Detail."""
        found = [r for r in rows if _row_matches(r, q, by_icn=by_icn)]
        if len(found) > 1:  # same recipient, DOS and amount: the patient account # is ours
            ours = [r for r in found if r.cells["Patient Acct #"] == q.claim_ref]
            found = ours or found
        if not found:
            raise ClaimMismatch(f"claim {q.claim_ref}: the portal listed only other claims")
        if len(found) > MAX_DETAIL_PROBES:
            raise AmbiguousClaim(f"claim {q.claim_ref}: {len(found)} claims match the search")
        proven: list[tuple[GridRow, ClaimDetail]] = []
        detail: ClaimDetail | None = None
        for row in found:
            detail = await self._open_detail(details, row, q)
            if _detail_matches(detail, q):
                proven.append((row, detail))
        if not proven:
            raise ClaimMismatch(f"claim {q.claim_ref}: the claim shown is not the one asked for")
        if len(proven) > 1:
            raise AmbiguousClaim(f"claim {q.claim_ref}: {len(proven)} claims match the search")
        row, chosen = proven[0]
        if chosen is not detail:  # another candidate is on screen: show the claim read (evidence)
            chosen = await self._open_detail(details, row, q)
            if not _detail_matches(chosen, q):
                raise ClaimMismatch(f"claim {q.claim_ref}: the claim changed between two reads")
        return chosen

    async def _open_detail(self, details: ClaimDetailPage, row: GridRow, q: ClaimQuery) -> ClaimDetail:
        """Claim Detail of `row`, waiting out a page that still shows the session's previous claim."""
        if not row.href:
            raise PortalDrift("response: claim row without a detail link")
        for _ in range(1 + STALE_RELOADS):
            await details.open(row.href)
            detail = await details.read()
            if _detail_is_row(detail, row):
                return detail
        raise ClaimMismatch(f"claim {q.claim_ref}: Claim Detail kept showing another claim")

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
        shown_icn = h["ICN:"].strip()
        return ClaimStatusResult(
            claim_ref=q.claim_ref,
            portal_key=self.key,
            observed_at=datetime.now(UTC),
            status_category=category,
            status_code=code,
            payer_claim_number=mapping.icn(shown_icn),
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
            shown_dos_to=mdy(h["DOS To:"], what="DOS to"),
            shown_claim_number=shown_icn,
            shown_billed=billed,
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
def _row_matches(r: GridRow, q: ClaimQuery, *, by_icn: bool) -> bool:
    """A response row that can be the claim asked for (exact recipient, DOS and billed; the ICN when
    searched by ICN). Near matches (another DOS or amount) are dropped here."""
    c = r.cells
    if by_icn and mapping.normalize_claim_number(c["ICN"]) != mapping.normalize_claim_number(q.payer_claim_number):
        return False
    return (id_key(c["Recipient ID"]) == id_key(q.member_id)
            and mdy(c["From DOS"], what="DOS") == q.dos_from and mdy(c["To DOS"], what="DOS") == q.dos_to
            and money(c["Billed"], what="billed amount") == q.billed)


def _detail_is_row(d: ClaimDetail, r: GridRow) -> bool:
    """Claim Detail shows the claim of the row opened (not the session's previous claim)."""
    h, c = d.header, r.cells
    return (mapping.normalize_claim_number(h["ICN:"]) == mapping.normalize_claim_number(c["ICN"])
            and h["Recipient ID:"].strip() == c["Recipient ID"]
            and h["Patient Account #:"].strip() == c["Patient Acct #"]
            and h["DOS From:"].strip() == c["From DOS"] and h["DOS To:"].strip() == c["To DOS"]
            and h["Billed Amount:"].strip() == c["Billed"])


def _detail_matches(d: ClaimDetail, q: ClaimQuery) -> bool:
    h = d.header
    if q.payer_claim_number and \
            mapping.normalize_claim_number(h["ICN:"]) != mapping.normalize_claim_number(q.payer_claim_number):
        return False
    return (id_key(h["Recipient ID:"]) == id_key(q.member_id)
            and mdy(h["DOS From:"], what="DOS from") == q.dos_from
            and mdy(h["DOS To:"], what="DOS to") == q.dos_to
            and money(h["Billed Amount:"], what="billed amount") == q.billed
            and h["Billing NPI:"].strip() == q.billing_npi)


def _check_proof(r: ClaimStatusResult, q: ClaimQuery) -> None:
    """The last check before a result leaves the adapter: what the page showed is the claim asked for."""
    same_number = q.payer_claim_number is None or (
        mapping.normalize_claim_number(r.shown_claim_number) == mapping.normalize_claim_number(q.payer_claim_number))
    if not (same_number and id_key(r.shown_member_id or "") == id_key(q.member_id) and r.shown_dos_from == q.dos_from
            and r.shown_dos_to == q.dos_to and r.shown_billed == q.billed):
        raise ClaimMismatch(f"claim {q.claim_ref}: the claim read does not prove the claim asked for")


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
