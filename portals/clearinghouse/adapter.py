"""Meridian Exchange clearinghouse adapter: log in (cookie banner, authenticator-app MFA remembering the
device, password prompt, announcements, organization picker), open Claims & Payments > Claim Status in
the shell's iframe for the claim's organization and payer, search, choose the one claim that is provably
the query's, read the detail modal card by card, and for payers that report reasons only there, read
the remittance viewer in its new tab (step-up verification once per portal session).

Promises (DESIGN.md §4):
- No silent false success: the claim is proven against the query on the detail itself (claim number +
  member ID, or member ID + DOS overlap + billed amount + billing NPI), the remittance against the detail,
  and the lines against the claim totals; every field comes from the page; an unknown badge, a badge that
  disagrees with the printed 277 category, a code missing from the product's code lists, or a missing
  element is PortalDrift.
- Read-only: `allowed_writes` lists only the login, MFA, "remind me later", announcements, organization
  and claim-search posts. Dispute the Claim, Message payer, the password change and the challenge form
  are never pressed (and the guard would abort them).
- Evidence is the runner's (it snapshots the main page on every failure); errors carry no PHI.

One lookup at a time per session (max_in_flight = 1): the portal keeps the chosen organization in the
server session, so parallel tabs would search under each other's organization, and the remittance
step-up is once per session. A lookup costs about 6 counted requests (search + 5 detail cards; +1-2
when the organization or payer changes, +1-3 for a remittance) against 240 a minute per account: the
agent should pace one account to about 35 lookups a minute (rate_limit_per_minute below).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import pyotp
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from portals.base import (
    AmbiguousClaim,
    Capability,
    ClaimError,
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
from portals.clearinghouse import mapping as M
from portals.clearinghouse.pages import (
    ANNOUNCEMENTS,
    APP,
    LOGIN,
    MFA_PATHS,
    ORGS,
    PASSWORD,
    REMIT,
    SIGN_IN_PATHS,
    ClaimDetail,
    ClaimStatusApp,
    DetailModal,
    Org,
    OrgPicker,
    Remit,
    RemitViewer,
    ResultRow,
    Shell,
    SignInPage,
    _NotFound,
    goto,
    path_of,
)

P = ParamSpec("P")
R = TypeVar("R")

MAX_SIGN_IN_STEPS = 8
MAX_DETAIL_PROBES = 5  # candidates opened to compare identifiers before calling the search ambiguous
MAX_DOS_RANGE = timedelta(days=90)  # the portal refuses wider service date ranges
_TOTP = "clearinghouse.totp"  # session.state: TOTP generator, for the remittance step-up (memory only)
_ORGS = "clearinghouse.orgs"  # session.state: organizations this account may work for
_RELOAD = "clearinghouse.reload"  # session.state: the tool may be in a bad state; reload it first
_LINE_NO = re.compile(r"^Line (\d+):")


def _post(path: str) -> RequestPattern:
    return RequestPattern(method="POST", url_regex=rf"^https?://[^/?#]+{path}(?:\?[^#]*)?$")


def at_the_edge(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Translate browser/network failures into the contract's errors, in one place."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        session = args[1]
        try:
            return await fn(*args, **kwargs)
        except PortalError:
            session.state[_RELOAD] = True
            raise
        except PlaywrightTimeout as e:
            session.state[_RELOAD] = True
            raise PortalUnavailable(f"{fn.__name__}: the portal did not answer in time") from e
        except PlaywrightError as e:
            session.state[_RELOAD] = True
            raise PortalUnavailable(f"{fn.__name__}: browser or network error") from e

    return wrapper


def _totp(secret: str | None) -> pyotp.TOTP | None:
    if not secret:
        return None
    try:
        totp = pyotp.TOTP(secret)
        totp.now()
    except (ValueError, TypeError) as e:  # binascii.Error is a ValueError
        raise NeedsAttention("the authenticator secret on file is not usable") from e
    return totp


@register
class ClearinghouseAdapter:
    """Meridian Exchange: claim status through Claims & Payments > Claim Status (iframe app)."""

    key = "clearinghouse"
    capabilities = frozenset({Capability.CLAIM_STATUS})
    allowed_writes = (
        _post("/login"),
        _post("/mfa/method"),  # 2-step verification: Authenticator app
        _post("/mfa/verify"),  # the code (login, unusual-time and remittance step-up)
        _post("/password/skip"),  # "Your password expires in N days" > Remind me later
        _post("/announcements"),  # announcements and terms of use > Continue
        _post("/orgs"),  # organization picker > Continue
        _post("/apps/claim-status/search"),
    )
    max_in_flight = 1
    rate_limit_per_minute = 240  # counted requests the portal tolerates per account

    # ------------------------------------------------------------------ login / verify
    @at_the_edge
    async def login(self, session: Any, creds: Credentials) -> None:
        """Sign in through every step to the shell; gates a human must pass raise NeedsAttention."""
        session.state[_TOTP] = _totp(creds.totp_secret)
        page = await session.page()
        signin = SignInPage(page)
        if await signin.open() != LOGIN:
            raise PortalDrift("login: the login page did not open")
        await signin.accept_essential_cookies()
        path = await signin.sign_in(creds.username, creds.password)
        reloaded = False
        for _ in range(MAX_SIGN_IN_STEPS):
            if path == LOGIN:
                raise M.login_error(await signin.error_message())
            if path == APP:
                shell = Shell(page)
                if await shell.is_shown():
                    await shell.wait_for_app()
                else:
                    await shell.open()  # once more: the shell page may have come back cut short
                session.state[_RELOAD] = False
                return
            try:
                path = await self._sign_in_step(session, signin, path)
            except PortalDrift:
                if reloaded:
                    raise
                # a step page cut short looks like a changed page: load the step again (a GET; the
                # portal sends the session to whatever step it is at), once per login
                reloaded = True
                path = await goto(page, "/mfa" if path in MFA_PATHS else path, signing_in=True)
        raise PortalDrift("login: did not reach the portal shell")

    async def _sign_in_step(self, session: Any, signin: SignInPage, path: str) -> str:
        """One step between the login form and the shell; returns where it led."""
        if path in MFA_PATHS:
            return await self._answer_mfa(session, signin, during_login=True)
        if path == PASSWORD:
            return await signin.skip_password_prompt()
        if path == ANNOUNCEMENTS:
            return await signin.continue_past_announcements()
        if path == ORGS:
            picker = OrgPicker(signin.page)
            orgs = session.state[_ORGS] = await picker.options()
            return await picker.choose(orgs[0])  # any: each lookup switches to its claim's organization
        raise PortalDrift("login: unexpected page while signing in")

    @staticmethod
    async def _answer_mfa(session: Any, signin: SignInPage, *, during_login: bool) -> str:
        """Method picker -> Authenticator app -> TOTP code (remember the device when offered)."""
        totp = session.state.get(_TOTP)
        if totp is None:
            if during_login:
                raise NeedsAttention("the portal asks for a verification code and no authenticator secret "
                                     "is on file")
            raise SessionExpired("the portal asks for a step-up code; a fresh login can answer it")
        await signin.choose_authenticator_app()
        path = await signin.enter_code(totp.now())
        if await signin.mfa_refused():
            raise M.mfa_error(await signin.error_message())
        return path

    @at_the_edge
    async def verify(self, session: Any) -> bool:
        """True when the session's cookies still open the portal shell (False on the login page)."""
        page = await session.page()
        try:
            await Shell(page).open()
        except SessionExpired:
            return False
        session.state[_RELOAD] = False
        return True

    # ------------------------------------------------------------------ claim status
    @at_the_edge
    async def claim_status(self, session: Any, q: ClaimQuery) -> ClaimStatusResult:
        """Search under the claim's organization (or each of the account's organizations offering the
        payer when it is not known), prove the claim, read and normalize it."""
        page = await session.page()
        if q.org_external_id:
            org_ids = [q.org_external_id]
        else:
            org_ids = [o.org_id for o in await self._orgs(session, page)]
        why = "no organization of this account offers the payer"
        for org_id in org_ids:
            app = await self._open_tool(session, page, q, org_id, required=q.org_external_id is not None)
            if app is None:
                continue
            try:
                rows = await _twice(functools.partial(self._search, app, q))
            except _NotFound as e:
                why = e.why
                continue
            return await _twice(functools.partial(self._read_claim, session, app, rows, q),
                                before_retry=app.close_detail)
        raise ClaimNotFound(f"claim {q.claim_ref}: {why}")

    async def _orgs(self, session: Any, page: Page) -> list[Org]:
        orgs = session.state.get(_ORGS)
        if orgs is None:
            shell = Shell(page)
            if not await shell.is_shown():
                await shell.open()
            orgs = session.state[_ORGS] = await (await shell.change_organization()).options()
        return orgs

    async def _open_tool(self, session: Any, page: Page, q: ClaimQuery, org_id: str, *,
                         required: bool) -> ClaimStatusApp | None:
        """Claim Status in the frame, set to the organization and payer (type-then-choose pickers), its
        search form checked. None when the organization does not offer the payer and the organization
        was only a guess. A tool that is not as expected is reloaded once (new generated ids) first."""
        for attempt in (1, 2):
            try:
                app = await self._set_up_tool(session, page, q, org_id, required=required, reload=attempt == 2)
                if app is None or await app.form_ready():
                    session.state[_RELOAD] = False
                    return app
            except PortalDrift:
                if attempt == 2:
                    raise
        raise PortalDrift("claim status: the search form is not as expected")

    async def _set_up_tool(self, session: Any, page: Page, q: ClaimQuery, org_id: str, *,
                           required: bool, reload: bool) -> ClaimStatusApp | None:
        shell = Shell(page)
        if reload or session.state.get(_RELOAD) or (path_of(page) != ORGS and not await shell.is_shown()):
            await shell.open()  # after a failure: a fresh shell and frame, never the page that failed
        elif path_of(page) == ORGS:  # left there by _orgs(): the picker is fresh
            await self._pick_org(session, OrgPicker(page), org_id, q)
            await shell.wait_for_app()
        app = ClaimStatusApp(await shell.frame())
        if not await app.is_shown():
            app = ClaimStatusApp(await shell.open_claim_status())
        orgs = await app.org_options()
        if org_id not in orgs:  # another state's organization: back through the organization picker
            await self._pick_org(session, await shell.change_organization(), org_id, q)
            await shell.wait_for_app()
            app = ClaimStatusApp(await shell.open_claim_status())
            orgs = await app.org_options()
            if org_id not in orgs:
                raise PortalDrift("claim status: the chosen organization is not offered")
        if await app.org_shown() != orgs[org_id]:
            await app.choose_org(orgs[org_id])
        payers = await app.payer_options()
        if q.payer_key not in payers:
            if required:
                raise M.PayerNotSupported(f"claim {q.claim_ref}: the claim's organization does not offer the "
                                          "payer on this portal")
            return None
        if await app.payer_shown() != payers[q.payer_key]:
            await app.choose_payer(payers[q.payer_key])
        return app

    @staticmethod
    async def _pick_org(session: Any, picker: OrgPicker, org_id: str, q: ClaimQuery) -> None:
        orgs = session.state[_ORGS] = await picker.options()
        org = next((o for o in orgs if o.org_id == org_id), None)
        if org is None:
            raise ClaimError(f"claim {q.claim_ref}: this account cannot work for the claim's organization")
        if await picker.choose(org) != APP:
            raise PortalDrift("organization picker: did not return to the portal shell")

    @staticmethod
    async def _search(app: ClaimStatusApp, q: ClaimQuery) -> list[ResultRow]:
        if q.payer_claim_number:
            return await app.search_by_claim_number(q.payer_claim_number)
        dob = None
        if await app.needs_subscriber_dob():
            if q.patient_dob is None:
                raise ClaimError(f"claim {q.claim_ref}: this payer's search needs the patient's date of birth")
            dob = M.fmt_mdy(q.patient_dob)
        dos_to = min(q.dos_to, q.dos_from + MAX_DOS_RANGE)  # overlap search: the claim still matches
        return await app.search_by_member(q.member_id, M.fmt_mdy(q.dos_from), M.fmt_mdy(dos_to),
                                          q.billing_npi, dob)

    async def _read_claim(self, session: Any, app: ClaimStatusApp, rows: list[ResultRow],
                          q: ClaimQuery) -> ClaimStatusResult:
        """Open the candidates, keep the one the detail proves; read its remittance when needed."""
        candidates = _candidates(rows, q)
        if len(candidates) > MAX_DETAIL_PROBES:
            raise AmbiguousClaim(f"claim {q.claim_ref}: {len(candidates)} claims match the search")
        proven: list[tuple[ResultRow, ClaimDetail]] = []
        modal: DetailModal | None = None
        for row in candidates:
            modal = await app.open_detail(row)
            detail = await modal.read()
            if _proves(detail, q):
                proven.append((row, detail))
            if len(candidates) > 1:
                await modal.close()
                modal = None
        if not proven:
            raise ClaimMismatch(f"claim {q.claim_ref}: the claim shown is not the one asked for")
        if len(proven) > 1:
            raise AmbiguousClaim(f"claim {q.claim_ref}: {len(proven)} claims match member, dates, amount "
                                 "and NPI")
        row, detail = proven[0]
        remit = None
        if detail.codes is None and M.category_for(detail.badge).startswith("F"):
            if modal is None:
                modal = await app.open_detail(row)
            remit = await self._remittance(session, modal)
        if modal is not None:
            await modal.close()
        return _result(self.key, q, detail, remit)

    async def _remittance(self, session: Any, modal: DetailModal) -> Remit:
        """View remittance (new tab): answer the step-up once per session, read the remit."""
        tab = await modal.open_remittance()
        try:
            viewer = RemitViewer(tab)
            path = await viewer.landed()
            if path in MFA_PATHS:
                path = await self._answer_mfa(session, SignInPage(tab), during_login=False)
                if path in SIGN_IN_PATHS:
                    raise SessionExpired("remittance viewer: the portal sent the tab to its login page")
            if path != REMIT:
                raise PortalDrift("remittance viewer: opened another page")
            remit = await viewer.read()
        finally:
            await tab.close()
        if remit is None:
            raise PortalDrift("remittance viewer: no remittance for a finalized claim")
        return remit


# ---------------------------------------------------------------------- reading, proof
async def _twice(read: Callable[[], Awaitable[R]],
                 before_retry: Callable[[], Awaitable[None]] | None = None) -> R:
    """Read once more before calling it drift: a fragment cut short in transit (the portal sends no
    length check) looks exactly like a changed page; a real change fails the second read too."""
    try:
        return await read()
    except PortalDrift:
        if before_retry is not None:
            await before_retry()
    return await read()


def _need(fields: dict[str, str], name: str, where: str) -> str:
    if name not in fields:
        raise PortalDrift(f"{where}: '{name}' not shown")
    return fields[name]


def _overlaps(a_from: date, a_to: date, b_from: date, b_to: date) -> bool:
    return a_from <= b_to and b_from <= a_to


def _candidates(rows: list[ResultRow], q: ClaimQuery) -> list[ResultRow]:
    """The results that can be the query's claim by what the results table shows (NPI is on the detail)."""
    if q.payer_claim_number:
        number = M.norm_id(q.payer_claim_number)
        same = [r for r in rows if M.norm_id(r.cells["Claim Number"]) == number]
    else:
        same = []
        for r in rows:
            first, last = M.service_dates(r.cells["Service Dates"])
            if _overlaps(first, last, q.dos_from, q.dos_to) and \
                    M.money(r.cells["Billed"], what="results billed") == q.billed:
                same.append(r)
    if not same:
        raise ClaimMismatch(f"claim {q.claim_ref}: the portal listed only other claims")
    if len(same) > 1:  # same member, dates and amount: the patient account number is the practice's own
        ours = [r for r in same if r.cells["Patient Account"] == q.claim_ref]
        same = ours if len(ours) == 1 else same
    return same


def _proves(d: ClaimDetail, q: ClaimQuery) -> bool:
    s = d.summary
    if M.norm_id(_need(s, "Member ID", "claim detail")) != M.norm_id(q.member_id):
        return False
    if q.payer_claim_number:
        return M.norm_id(s.get("Payer claim number", "")) == M.norm_id(q.payer_claim_number)
    first = M.mdy(_need(s, "Service from", "claim detail"), what="service from")
    last = M.mdy(_need(s, "Service to", "claim detail"), what="service to")
    return (_overlaps(first, last, q.dos_from, q.dos_to)
            and M.money(_need(d.payment, "Billed amount", "claim detail"), what="billed") == q.billed
            and _need(s, "Billing provider NPI", "claim detail").strip() == q.billing_npi)


def _result(portal_key: str, q: ClaimQuery, d: ClaimDetail, remit: Remit | None) -> ClaimStatusResult:
    s, pay = d.summary, d.payment
    category = M.category_for(d.badge)
    if M.code_part(_need(s, "Status category", "claim detail"), what="277 category") != category:
        raise PortalDrift("claim detail: the status badge and the 277 category disagree")
    code = M.status_code(_need(s, "Status code", "claim detail"))
    rejected = category in M.REJECTION_CATEGORIES
    number = s.get("Payer claim number")
    if rejected != (d.rejection is not None) or rejected != (number is None):
        raise PortalDrift("claim detail: rejection, reason and claim number contradict each other")
    billed = M.money(_need(pay, "Billed amount", "payment"), what="billed amount")
    adjudicated = category.startswith("F")
    allowed = paid = liability = None
    check_number: str | None = None
    check_date: date | None = None
    lines: list[LineResult] = []
    if adjudicated:
        allowed = M.money(_need(pay, "Allowed amount", "payment"), what="allowed amount")
        paid = M.money(_need(pay, "Paid amount", "payment"), what="paid amount")
        liability = M.money(_need(pay, "Patient responsibility", "payment"), what="patient responsibility")
        _need(pay, "Payment method", "payment")
        check_number = M.optional(pay.get("Check/EFT number"))
        raw_date = M.optional(pay.get("Check/EFT date"))
        if (check_number is None) != (raw_date is None):
            raise PortalDrift("payment: check number and check date contradict each other")
        check_date = M.mdy(raw_date, what="check date") if raw_date else None
        lines = _lines(d, remit)
        if remit is not None:
            _remit_matches(remit, q, number, s, billed, paid, liability, check_number, check_date)
        if (sum((ln.allowed or 0 for ln in lines), start=0) != allowed
                or sum((ln.paid or 0 for ln in lines), start=0) != paid
                or sum((a.amount for ln in lines for a in ln.adjustments if a.group == "PR"), start=0)
                != liability):
            raise PortalDrift("claim detail: the lines do not add up to the claim's amounts")
    elif not d.no_payment or any(k in pay for k in ("Allowed amount", "Paid amount", "Patient responsibility")):
        raise PortalDrift("claim detail: payment information contradicts the claim status")
    if sum((M.money(_need(p.fields, "Billed", "service line"), what="line billed") for p in d.lines),
           start=0) != billed or not d.lines:
        raise PortalDrift("claim detail: the service lines do not add up to the billed amount")
    return ClaimStatusResult(
        claim_ref=q.claim_ref,
        portal_key=portal_key,
        observed_at=datetime.now(UTC),
        status_category=category,
        status_code=code,
        payer_claim_number=number,
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
        shown_dos_from=M.mdy(_need(s, "Service from", "claim detail"), what="service from"),
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
        cpt = _need(f, "Procedure", "service line")
        adjustments: list[LineAdjustment] = []
        rarcs: list[str] = []
        if d.codes is not None:
            if panel.adjustments is None or panel.remarks is None:
                raise PortalDrift("service lines: adjustments not shown for an adjudicated line")
            for a in panel.adjustments:
                group, carc = M.group(a["Group"]), M.carc_code(a["Reason code"])
                if ("Reason", carc) not in described:
                    raise PortalDrift("claim detail: a reason code missing from the code descriptions")
                adjustments.append(LineAdjustment(group=group, carc=carc, amount=M.money(a["Amount"], what="adjustment"),
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
                adjustments.append(LineAdjustment(group=group, carc=carc, amount=M.money(r["Amount"], what="adjustment"),
                                                  raw=f"{group}-{r['Description']}"))
                rarcs += [x for x in M.rarc_codes(r["RARC"]) if x not in rarcs]
        out.append(LineResult(
            line_no=int(m.group(1)),
            cpt=cpt,
            modifiers=_need(f, "Modifiers", "service line").split(),
            billed=M.money(_need(f, "Billed", "service line"), what="line billed"),
            allowed=M.money(_need(f, "Allowed", "service line"), what="line allowed"),
            paid=M.money(_need(f, "Paid", "service line"), what="line paid"),
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
    if M.norm_id(r["Claim number"]) != M.norm_id(number or "") \
            or r["Patient account"] != _need(s, "Patient account number", "claim detail"):
        raise ClaimMismatch(f"claim {q.claim_ref}: the remittance shown is another claim's")
    if (M.money(r["Billed"], what="remit billed") != billed or M.money(r["Paid"], what="remit paid") != paid
            or M.money(r["Patient responsibility"], what="remit patient responsibility") != liability):
        raise PortalDrift("remittance viewer: amounts differ from the claim detail")
    remit_date = M.optional(r["Payment date"])
    if M.optional(r["Check/EFT number"]) != check_number or \
            (M.mdy(remit_date, what="remit payment date") if remit_date else None) != check_date:
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
