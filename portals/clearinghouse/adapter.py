"""Meridian Exchange clearinghouse adapter: log in (cookie banner, authenticator-app MFA remembering the
device, password prompt, announcements, organization picker), open Claims & Payments > Claim Status in
the shell's iframe for the claim's organization and payer, search, choose the one claim that is provably
the query's, read the detail modal card by card, and for payers that report reasons only there, read
the remittance viewer in its new tab (step-up verification once per portal session).

Promises (DESIGN.md §4):
- No silent false success: the claim is proven against the query on the detail itself (member ID, the
  exact service dates, billed amount and billing NPI, and the claim number when the query has one,
  compared through `mapping.claim_number_key` so a reformatted number still matches), the detail
  against the result row that was opened (a detail still showing the previous claim is waited out, then
  refused), the remittance against the detail, and the lines against the claim totals. Several results
  that prove the claim are AmbiguousClaim; none is ClaimMismatch. Every field comes from the page; an
  unknown badge, a badge that disagrees with the printed 277 category, a code missing from the product's
  code lists, or a missing element is PortalDrift. The result carries the identifiers the page showed.
- Read-only: `allowed_writes` lists only the login, MFA, "remind me later", announcements, organization
  and claim-search posts. Dispute the Claim, Void claim, Message payer, Update patient address, the
  password change and the challenge form are never pressed (and the guard would abort them).
- Evidence: at the end of a lookup the tab still shows the claim read (its detail modal stays open until
  the tab's next lookup); a status read from the remittance viewer names that tab (show_evidence).

Lookups in flight (max_in_flight = 3): each lookup runs on its own tab (lease page) with its own copy
of the tool, reused across lookups while it is set to the right organization and payer (`affinity`: the
runner hands a tab claims of the organization and payer its tool is loaded for). What the portal
keeps server-side and shares between tabs: the chosen organization (and its state), the remittance
step-up, and the result references. The organization is guarded by `_OrgGate` (lookups for one
organization share it; a lookup for another waits until none is in flight, then switches, and every tab
reloads its tool); the step-up is answered by one tab at a time (a lock: two tabs at the MFA page would
overwrite each other's return address); the references are per claim, not per tab, and the search form
carries its payer. There is no CSRF token and no per-tab server state.

The detail's five cards: the portal's script asks for them one after another, each answered after the
page latency plus its own 100-300 ms "retrieval" (~2.2 s a detail under realistic latency). The session
reads them ahead (`read_ahead = card_group`, agent/browser.py): at the page's first card request all five
are fetched at once through the context's request client, and the page's requests are answered with
those responses, unchanged, so the page renders (and the evidence shows) what the portal sent, the
proofs below read the rendered detail as before, and the portal serves and counts the same five
requests. A detail then takes the slowest card (~0.6 s). Three tabs, because the account's pacer (236
counted requests a minute, ~7 a lookup with the remittance viewer and tool loads) is then the bound: in
bench.sweep (27 claims) 3 and 4 tabs both swept 34.2 claims a minute after sign-in with ~35 s of pacer
holds; 3 tabs kept a lookup's p50 at 4.7 s (6.2 s with 4: more waiting on the pacer). Each tab beyond
the need costs a tool load (+2) and a payer switch (+1) in counted requests, memory, and Chromium work
on a 2-core machine.

Pacing is the agent's: the portal counts every authenticated request (`sb.rate_check` in the sandbox's
per-request gate: the shell, every app page and fetch in the frame, the remittance viewer, the keep-alive
and the sign-in steps after the password; not /login, /logout, /challenge or static files) against 240 a
minute per account. requests_per_lookup = 6, counted from fixtures/clearinghouse/claims.py on a tab
whose tool is already set to the claim's organization and payer: POST /apps/claim-status/search (1) +
the detail modal's five card GETs /apps/claim-status/claims/<ref>/cards/{summary,payment,lines,codes,
actions} (5); the same for a claim-number and a member search. More when a tab loads the tool
(+2 for a new tab: /app and the tool; +1 per payer or organization change), for a KMI remittance
(+1, +4 the first time: /remit, the step-up /mfa, /mfa/method, /mfa/verify) or when several results
must be opened to find the claim (+5 each). Checked by tests/portals/test_clearinghouse_proof.py against
the sandbox's `clearinghouse.counted_requests` counter. So one account tops out at 240 / 6 = 40
lookups a minute.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from playwright.async_api import Frame, Page

from core.claims import ClaimQuery, ClaimStatusResult
from core.credentials import Credentials
from core.errors import (
    AmbiguousClaim,
    ClaimError,
    ClaimMismatch,
    ClaimNotFound,
    NeedsAttention,
    PortalDrift,
    SessionExpired,
)
from portals.base import Capability, RequestPattern, register
from portals.clearinghouse import mapping as M
from portals.clearinghouse import results
from portals.clearinghouse.pages.remit import RemitViewer
from portals.clearinghouse.pages.screens import (
    ANNOUNCEMENTS,
    APP,
    LOGIN,
    MFA_PATHS,
    ORGS,
    PASSWORD,
    REMIT,
    SIGN_IN_PATHS,
    NotFound,
    goto,
)
from portals.clearinghouse.pages.signin import Org, OrgPicker, Shell, SignInPage
from portals.clearinghouse.pages.tool import ClaimStatusApp, DetailModal, card_group
from portals.clearinghouse.results import ClaimDetail, Remit, ResultRow
from portals.edge import at_the_edge
from portals.formats import fmt_mdy

R = TypeVar("R")

MAX_SIGN_IN_STEPS = 8
MAX_DETAIL_PROBES = 5  # candidates opened to compare identifiers before calling the search ambiguous
MAX_DOS_RANGE = timedelta(days=90)  # the portal refuses wider service date ranges
# session.state (session-wide, shared by every tab)
_TOTP = "clearinghouse.totp"  # TOTP generator, for the remittance step-up (memory only)
_ORGS = "clearinghouse.orgs"  # organizations this account may work for
_ORGS_LOCK = "clearinghouse.orgs_lock"
_GATE = "clearinghouse.org_gate"  # the organization the server session is set to (see _OrgGate)
_STEPUP_LOCK = "clearinghouse.stepup_lock"
_STEPPED_UP = "clearinghouse.stepped_up"  # the server session passed the remittance step-up
# session.page_state() (one tab's)
_RELOAD = "clearinghouse.reload"  # the tab's tool may be in a bad state; reload it first
_TOOL = "clearinghouse.tool"  # the tab's loaded tool (_Tool)
_REMIT_TAB = "clearinghouse.remit_tab"  # the remittance tab the tab's last lookup read (evidence)


@dataclass
class _Tool:
    """A tab's Claim Status tool as it was checked: reused while its frame has not navigated."""

    app: ClaimStatusApp
    frame: Frame
    url: str
    org_id: str
    payer_id: str
    epoch: int


class _OrgGate:
    """The organization is server-side state shared by every tab of a session: lookups for the same
    organization run together; a lookup for another waits until none is in flight, then switches.
    `epoch` changes with every switch (and every login): a tab whose tool was loaded in another epoch
    reloads it, so that the server's organization is the one its tool shows."""

    def __init__(self) -> None:
        self.org_id: str | None = None
        self.users = 0
        self.epoch = 0
        self._cond = asyncio.Condition()

    def reset(self) -> None:
        """A new server session (login): its organization is whatever the login chose."""
        self.org_id = None
        self.epoch += 1

    @asynccontextmanager
    async def use(self, org_id: str | None) -> AsyncIterator[int]:
        """Hold the session on `org_id` (None: alone, for steps that change the organization)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.users == 0 or (org_id is not None and self.org_id == org_id))
            if self.org_id != org_id or org_id is None:
                self.org_id = org_id
                self.epoch += 1
            self.users += 1
        try:
            yield self.epoch
        finally:
            async with self._cond:
                self.users -= 1
                self._cond.notify_all()


def _gate(session: Any) -> _OrgGate:
    return session.state.setdefault(_GATE, _OrgGate())


def _lock(session: Any, key: str) -> asyncio.Lock:
    return session.state.setdefault(key, asyncio.Lock())


@register
class ClearinghouseAdapter:
    """Meridian Exchange: claim status through Claims & Payments > Claim Status (iframe app)."""

    key = "clearinghouse"
    capabilities = frozenset({Capability.CLAIM_STATUS})
    allowed_writes = (
        RequestPattern.post("/login"),
        RequestPattern.post("/mfa/method"),  # 2-step verification: Authenticator app
        RequestPattern.post("/mfa/verify"),  # the code (login, unusual-time and remittance step-up)
        RequestPattern.post("/password/skip"),  # "Your password expires in N days" > Remind me later
        RequestPattern.post("/announcements"),  # announcements and terms of use > Continue
        RequestPattern.post("/orgs"),  # organization picker > Continue
        RequestPattern.post("/apps/claim-status/search"),
    )
    max_in_flight = 3  # tabs of one session (see the module docstring)
    rate_limit_per_minute = 240  # counted requests the portal tolerates per account (FaultProfile default)
    # Exactly the paths whose handlers pass the sandbox's gate() (sb.rate_check): "/app" also covers
    # "/apps/..."; "/mfa" covers /mfa/method and /mfa/verify.
    counted_requests = (
        RequestPattern.under("/app"),
        RequestPattern.under("/api/"),
        RequestPattern.under("/remit"),
        RequestPattern.under("/mfa"),
        RequestPattern.under("/password"),
        RequestPattern.under("/announcements"),
        RequestPattern.under("/orgs"),
    )
    requests_per_lookup = 6  # search POST + 5 detail cards (counted in the module docstring)
    read_ahead = staticmethod(card_group)  # the detail's five cards, read at once (the page asks in turn)
    claim_number_key = staticmethod(M.claim_number_key)  # the runner's proof check uses it too

    @staticmethod
    def affinity(q: ClaimQuery) -> tuple[str | None, str]:
        """A tab's tool is loaded for one organization and payer: another payer costs a reload (+1)."""
        return q.org_external_id, q.payer_key

    # ------------------------------------------------------------------ login / verify
    @at_the_edge(_RELOAD)
    async def login(self, session: Any, creds: Credentials) -> None:
        """Sign in through every step to the shell; gates a human must pass raise NeedsAttention. Holds the
        organization gate alone: the login chooses an organization on the server, so no other tab's search
        may run meanwhile (a search sent under the organization the login chose would answer "not found"
        for a claim of another); lookups in flight finish (or fail on the lost session) first."""
        async with _gate(session).use(None):
            await self._login(session, creds)

    def resume(self, session: Any, creds: Credentials) -> None:
        """A restored session: the TOTP for the remittance viewer's step-up (else that step-up would need a
        new sign-in); whether the server session already passed it is learnt at the viewer."""
        session.state[_TOTP] = creds.authenticator()

    async def _login(self, session: Any, creds: Credentials) -> None:
        session.state[_TOTP] = creds.authenticator()
        session.state[_STEPPED_UP] = False
        _gate(session).reset()  # a new server session: every tab's tool is reloaded before use
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
                session.page_state()[_RELOAD] = False
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

    @at_the_edge(_RELOAD)
    async def verify(self, session: Any) -> bool:
        """True when the session's cookies still open the portal shell (False on the login page)."""
        page = await session.page()
        try:
            await Shell(page).open()
        except SessionExpired:
            return False
        session.page_state()[_RELOAD] = False
        return True

    # ------------------------------------------------------------------ claim status
    @at_the_edge(_RELOAD)
    async def claim_status(self, session: Any, q: ClaimQuery) -> ClaimStatusResult:
        """Search under the claim's organization (or each of the account's organizations offering the
        payer when it is not known), prove the claim, read and normalize it. Runs on this lookup's own
        tab; the tab's tool is reused when it is already set to the organization and payer."""
        page = await session.page()
        st = session.page_state()
        left = st.pop(_REMIT_TAB, None)  # the previous lookup's evidence tab: done with it now
        if left is not None and not left.is_closed():
            await left.close()
        if q.org_external_id:
            org_ids = [q.org_external_id]
        else:
            org_ids = [o.org_id for o in await self._orgs(session, page)]
        why = "no organization of this account offers the payer"
        for org_id in org_ids:
            async with _gate(session).use(org_id) as epoch:
                app = await self._open_tool(session, page, q, org_id, epoch,
                                            required=q.org_external_id is not None)
                if app is None:
                    continue
                await app.close_detail()  # the previous lookup's claim, left on screen as evidence
                try:
                    rows = await _twice(functools.partial(self._search, app, q))
                except NotFound as e:
                    why = e.why
                    continue
                return await _twice(functools.partial(self._read_claim, session, app, rows, q),
                                    before_retry=app.close_detail)
        raise ClaimNotFound(f"claim {q.claim_ref}: {why}")

    async def _orgs(self, session: Any, page: Page) -> list[Org]:
        """The account's organizations (read once per session from the organization picker, which
        also sets the server's organization: done alone)."""
        async with _lock(session, _ORGS_LOCK):
            orgs = session.state.get(_ORGS)
            if orgs is None:
                async with _gate(session).use(None):
                    shell = Shell(page)
                    if not await shell.is_shown():
                        await shell.open()
                    picker = await shell.change_organization()
                    orgs = session.state[_ORGS] = await picker.options()
                    if await picker.choose(orgs[0]) != APP:
                        raise PortalDrift("organization picker: did not return to the portal shell")
                    session.page_state()[_RELOAD] = True
            return orgs

    async def _open_tool(self, session: Any, page: Page, q: ClaimQuery, org_id: str, epoch: int, *,
                         required: bool) -> ClaimStatusApp | None:
        """This tab's Claim Status, set to the organization and payer, its search form checked. None when
        the organization does not offer the payer and the organization was only a guess. Reused as it is
        when it was checked for this organization, payer and epoch and its frame has not navigated since;
        a tool that is not as expected is reloaded once (new generated ids) first."""
        st = session.page_state()
        tool: _Tool | None = st.get(_TOOL)
        if tool is not None and not st.get(_RELOAD) and tool.epoch == epoch and tool.org_id == org_id \
                and tool.payer_id == q.payer_key and not tool.frame.is_detached() and tool.frame.url == tool.url:
            return tool.app
        st.pop(_TOOL, None)
        for attempt in (1, 2):
            try:
                app = await self._set_up_tool(session, page, q, org_id, required=required,
                                              reload=attempt == 2 or bool(st.get(_RELOAD)))
                if app is None:
                    st[_RELOAD] = False
                    return None
                if await app.form_ready():
                    st[_RELOAD] = False
                    st[_TOOL] = _Tool(app, app.frame, app.frame.url, org_id, q.payer_key, epoch)
                    return app
            except PortalDrift:
                if attempt == 2:
                    raise
        raise PortalDrift("claim status: the search form is not as expected")

    async def _set_up_tool(self, session: Any, page: Page, q: ClaimQuery, org_id: str, *,
                           required: bool, reload: bool) -> ClaimStatusApp | None:
        shell = Shell(page)
        if reload or not await shell.is_shown():
            # a new tab, or after a failure: a fresh shell and tool, never the page that failed
            app = ClaimStatusApp(await shell.open_tool(org_id, q.payer_key))
        else:
            app = ClaimStatusApp(await shell.frame())
            if not await app.is_shown():
                await app.load(org_id, q.payer_key)
        if not await app.is_shown():
            raise PortalDrift("claim status: the tool did not open")
        orgs = await app.org_options()
        if org_id not in orgs:  # another state's organization: back through the organization picker
            await self._pick_org(session, await shell.change_organization(), org_id, q)
            await shell.wait_for_app()
            app = ClaimStatusApp(await shell.frame())
            await app.load(org_id, q.payer_key)
            orgs = await app.org_options()
            if org_id not in orgs:
                raise PortalDrift("claim status: the chosen organization is not offered")
        payers = await app.payer_options()
        if await app.org_shown() != orgs[org_id] or (
                q.payer_key in payers and await app.payer_shown() != payers[q.payer_key]):
            await app.load(org_id, q.payer_key)  # the tool for this organization and payer (one request)
            payers = await app.payer_options()
            if await app.org_shown() != orgs[org_id]:
                raise PortalDrift("claim status: the organization was not chosen")
        if q.payer_key not in payers:
            if required:
                raise M.PayerNotSupported(f"claim {q.claim_ref}: the claim's organization does not offer the "
                                          "payer on this portal")
            return None
        if await app.payer_shown() != payers[q.payer_key]:
            raise PortalDrift("claim status: the payer was not chosen")
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
            dob = fmt_mdy(q.patient_dob)
        dos_to = min(q.dos_to, q.dos_from + MAX_DOS_RANGE)  # overlap search: the claim still matches
        return await app.search_by_member(q.member_id, fmt_mdy(q.dos_from), fmt_mdy(dos_to),
                                          q.billing_npi, dob)

    async def _read_claim(self, session: Any, app: ClaimStatusApp, rows: list[ResultRow],
                          q: ClaimQuery) -> ClaimStatusResult:
        """Open the candidates, keep the one the detail proves (exactly one, else Ambiguous/Mismatch);
        leave its detail open (evidence); read its remittance when needed."""
        candidates = results.candidates(rows, q)
        if len(candidates) > MAX_DETAIL_PROBES:
            raise AmbiguousClaim(f"claim {q.claim_ref}: {len(candidates)} claims match the search")
        proven: list[tuple[ResultRow, ClaimDetail]] = []
        modal: DetailModal | None = None
        shown: ResultRow | None = None
        for row in candidates:
            if modal is not None:
                await modal.close()
            modal, detail = await self._open(app, row, q)
            shown = row
            if results.proves(detail, q):
                proven.append((row, detail))
        if not proven:
            raise ClaimMismatch(f"claim {q.claim_ref}: the claim shown is not the one asked for")
        if len(proven) > 1:
            raise AmbiguousClaim(f"claim {q.claim_ref}: {len(proven)} claims match member, dates, amount "
                                 "and NPI")
        row, detail = proven[0]
        if shown is not row or modal is None:  # show the claim read (evidence)
            if modal is not None:
                await modal.close()
            modal, detail = await self._open(app, row, q)
            if not results.proves(detail, q):
                raise ClaimMismatch(f"claim {q.claim_ref}: the claim shown is not the one asked for")
        remit = None
        if detail.codes is None and M.category_for(detail.badge).startswith("F"):
            remit = await self._remittance(session, modal)
        return results.result(self.key, q, detail, remit)

    @staticmethod
    async def _open(app: ClaimStatusApp, row: ResultRow, q: ClaimQuery) -> tuple[DetailModal, ClaimDetail]:
        """Open a result's detail and read it; the detail must be the row's claim."""
        modal = await app.open_detail(row)
        detail = await modal.read()
        results.same_as_row(detail, row, q)
        return modal, detail

    async def _remittance(self, session: Any, modal: DetailModal) -> Remit:
        """View remittance (a new tab, kept open as the evidence): answer the step-up once per session,
        one tab at a time (the portal keeps one return address per session), read the remit."""
        if session.state.get(_STEPPED_UP):
            tab, path = await self._open_remittance(session, modal)
        else:
            async with _lock(session, _STEPUP_LOCK):
                tab, path = await self._open_remittance(session, modal)
                if path in MFA_PATHS:
                    path = await self._answer_mfa(session, SignInPage(tab), during_login=False)
                    if path in SIGN_IN_PATHS:
                        raise SessionExpired("remittance viewer: the portal sent the tab to its login page")
                if path == REMIT:
                    session.state[_STEPPED_UP] = True
        if path in MFA_PATHS:  # the session lost its step-up (a new login meanwhile): next try answers it
            session.state[_STEPPED_UP] = False
            raise SessionExpired("remittance viewer: the portal asks for the step-up again")
        if path != REMIT:
            raise PortalDrift("remittance viewer: opened another page")
        remit = await RemitViewer(tab).read()
        if remit is None:
            raise PortalDrift("remittance viewer: no remittance for a finalized claim")
        session.show_evidence(tab)
        return remit

    @staticmethod
    async def _open_remittance(session: Any, modal: DetailModal) -> tuple[Page, str]:
        tab = await modal.open_remittance()
        session.page_state()[_REMIT_TAB] = tab  # closed at this tab's next lookup
        return tab, await RemitViewer(tab).landed()


# ---------------------------------------------------------------------- reading
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
