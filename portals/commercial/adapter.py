"""Northstar Health provider portal (portal key "commercial"): sign in, verify a restored session, claim status.

The portal is a single-page app fed by /api JSON. The adapter drives it as a user would (page objects in
pages.py) and reads the JSON answers those actions cause: the search results, then the detail cards of
the one claim it chose. Every returned field comes from what the portal served; the claim is proven to be
the one asked for before anything is returned: the results row and the overview JSON (claim number
normalized by mapping.normalize_claim_number, member ID, dates of service, billed amount, billing NPI),
then the overview card AS RENDERED for that claim's key (the page can keep showing the previous claim
for a moment): the shown_* proof fields come from the rendered card. Denial reasons and remarks are
text only on this portal: mapping.py turns them into CARC/RARC or raises PortalDrift.

Rate limit (fixtures/commercial/sessions.py `require_app` -> `sb.rate_check`): the portal counts every
signed-in data API request (claim search, each detail card, payments, auths, network, actions) and shows
its "unusual activity" challenge above 120 a minute per account. It does not count the app shell, static
files, `GET /api/session` or the sign-in steps. `counted_requests` lists exactly those endpoints.

requests_per_lookup = 5, counted from the fixture: `POST /api/claims/search` (1), then the detail of the
one claim (one result opens it by itself, claims.js `submit`; detail.js `render` fetches its four cards at
once): `GET /api/claims/<key>/overview`, `/payments`, `/lines` (read here) and `/actions` (the SPA always
loads it; the adapter does not need it, but aborting it would put the app's "couldn't reach the server"
banner on the evidence page) = 1 + 4. The app shell and session check of a tab's first lookup are not
counted. A member search listing several candidates costs 4 more per candidate opened. Checked by
tests/portals/test_commercial_proof.py (counters after one lookup by number and one by member).

max_in_flight = 4: each lookup runs in its own tab (its own SPA instance, DetailFeed and "reload needed"
flag in session.page_state()). The portal keeps no per-search or per-claim state on the server (no
selected organization, no CSRF token, no "current claim"; results and cards are keyed by the claim in
the URL), and all tabs share one server session (cookie nsh_sid), so tabs do not disturb each other.
The rate limit bounds a sweep: 120/min / 5 = 24 lookups a minute per account (22.4 under the agent's
bucket margin). Measured under the "realistic" profile (errors off), one warm session, 40 lookups: unpaced
1 in flight 30.8/min, 4 in flight 54.6/min; paced 22.5/min and 22.4/min. 4 in flight keep the ceiling
reached when latency spikes (a slow answer holds one tab, not the account). No pacing here: the
agent's token bucket holds counted requests.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import pyotp
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from core.claims import ClaimQuery, ClaimStatusResult, LineAdjustment, LineResult
from core.credentials import Credentials
from core.errors import (
    AmbiguousClaim,
    ChallengePresented,
    ClaimError,
    ClaimMismatch,
    ClaimNotFound,
    Maintenance,
    NeedsAttention,
    PortalDrift,
    PortalError,
    PortalUnavailable,
    SessionExpired,
)
from portals.base import Capability, RequestPattern, register
from portals.commercial import mapping as M
from portals.commercial.pages import (
    ApiReply,
    ClaimStatus,
    DetailFeed,
    DetailNotShown,
    Shell,
    ShellNotServed,
    SignIn,
)

P = ParamSpec("P")
R = TypeVar("R")

MAX_SIGN_IN_STEPS = 8
_FEED = "commercial.detail_feed"  # session.page_state(): the DetailFeed of that tab's SPA
_RELOAD = "commercial.reload"  # session.page_state(): the tab may be in a bad state, reload the app first

_API = r"^https?://[^/?#]+/api/"
_QUERY = r"(?:\?[^#]*)?$"


def _page_state(session: Any) -> dict:
    return session.page_state()


def at_the_edge(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Translate browser/network failures into the contract's errors, in one place."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        session = args[1]
        try:
            return await fn(*args, **kwargs)
        except ClaimError:
            raise  # the screen is still usable: a not-found modal is closed, a mismatch only read
        except PortalError:
            _page_state(session)[_RELOAD] = True
            raise
        except PlaywrightTimeout as e:
            _page_state(session)[_RELOAD] = True
            raise PortalUnavailable(f"{fn.__name__}: the portal did not answer in time") from e
        except PlaywrightError as e:
            _page_state(session)[_RELOAD] = True
            raise PortalUnavailable(f"{fn.__name__}: browser or network error") from e

    return wrapper


def _check_answer(reply: ApiReply, step: str) -> None:
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


def _need_field(obj: Any, name: str, where: str) -> Any:
    """A field the portal must have served (present, possibly null); a missing one is drift."""
    if not isinstance(obj, dict) or name not in obj:
        raise PortalDrift(f"{where}: field '{name}' missing")
    return obj[name]


def _text(obj: Any, name: str, where: str) -> str:
    value = _need_field(obj, name, where)
    if not isinstance(value, str):
        raise PortalDrift(f"{where}: field '{name}' is not text")
    return value.strip()


def _list(obj: Any, name: str, where: str) -> list:
    value = _need_field(obj, name, where)
    if not isinstance(value, list):
        raise PortalDrift(f"{where}: field '{name}' is not a list")
    return value


def _totp_now(secret: str) -> str:
    try:
        return pyotp.TOTP(secret).now()
    except (ValueError, TypeError) as e:  # binascii.Error is a ValueError
        raise NeedsAttention("the authenticator secret on file is not valid") from e


def _norm_id(value: str) -> str:
    return "".join(value.split()).upper()


@register
class CommercialAdapter:
    """Northstar Health provider portal: claim status through the Claims & Payments > Claim Status screen."""

    key = "commercial"
    capabilities = frozenset({Capability.CLAIM_STATUS})
    allowed_writes = (
        RequestPattern.post("/api/auth/username"),
        RequestPattern.post("/api/auth/password"),
        RequestPattern.post("/api/auth/mfa/method"),
        RequestPattern.post("/api/auth/mfa/verify"),
        RequestPattern.post("/api/auth/password-prompt/skip"),  # "Your password expires soon" > Skip for now
        RequestPattern.post("/api/auth/announcements/acknowledge"),  # announcements and terms > I acknowledge
        RequestPattern.post("/api/claims/search"),
    )
    max_in_flight = 4  # see the module docstring
    rate_limit_per_minute = 120  # counted API requests a minute per account before the challenge
    # exactly the requests sessions.require_app(counted=True) serves (api.py): the data API
    counted_requests = (
        RequestPattern.post("/api/claims/search"),
        RequestPattern(method="GET", url_regex=_API + r"claims/[^/?#]+/(?:overview|payments|lines|actions)" + _QUERY),
        RequestPattern(method="POST", url_regex=_API + r"claims/[^/?#]+/(?:act|void)" + _QUERY),
        RequestPattern(method="GET", url_regex=_API + r"payments/[^/?#]+" + _QUERY),
        RequestPattern(method="PUT", url_regex=_API + r"messages" + _QUERY),
        RequestPattern.post("/api/auths/search"),
        RequestPattern(method="GET", url_regex=_API + r"network/access" + _QUERY),
        RequestPattern.post("/api/network/search"),
    )
    requests_per_lookup = 5  # search + the four detail cards: see the module docstring
    claim_number_key = staticmethod(M.normalize_claim_number)  # the runner's proof check uses it too

    # ------------------------------------------------------------------ sign in
    @at_the_edge
    async def login(self, session: Any, creds: Credentials) -> None:
        """Sign in: username, password, authenticator-app code (remembering the device), skippable prompts."""
        page = await session.page()
        view = await self._open_app(session, page)
        if view.get("stage") not in ("username", "app") or (
                view.get("stage") == "app" and view.get("username") != creds.username):
            # a sign-in left half-way (or another user's session): start a fresh one, keep the device cookie
            await session.context.clear_cookies(name="nsh_sid")
            view = await self._open_app(session, page)
        signin = SignIn(page)
        if view.get("stage") == "username":
            await signin.check_layout()
        for _ in range(MAX_SIGN_IN_STEPS):
            stage = view.get("stage")
            if stage == "app":
                break
            if stage == "username":
                view = self._sign_in_view(await signin.enter_username(creds.username), stage)
            elif stage == "password":
                view = self._sign_in_view(await signin.enter_password(creds.password), stage,
                                          M.LOGIN_REFUSALS)
            elif stage in ("mfa_method", "mfa_code"):
                if not creds.totp_secret:
                    raise NeedsAttention("the portal asks for a verification code and no authenticator "
                                         "secret is on file")
                code = _totp_now(creds.totp_secret)
                self._sign_in_view(await signin.choose_authenticator_app(), "mfa method")
                view = self._sign_in_view(await signin.enter_code(code, remember=True), stage, M.MFA_REFUSALS)
            elif stage == "password_prompt":
                view = self._sign_in_view(await signin.skip_password_expiry_prompt(), stage)
            elif stage == "password_change":
                raise NeedsAttention("password expired: the portal requires a password change")
            elif stage == "announcements":
                view = self._sign_in_view(await signin.acknowledge_announcements(), stage)
            else:
                raise PortalDrift("sign-in: unknown stage")
        else:
            raise PortalDrift("sign-in did not reach the portal")
        await self._landed(session, page)

    @staticmethod
    def _sign_in_view(reply: ApiReply, step: str,
                      refusals: dict[str, tuple[type[PortalError], str]] | None = None) -> dict:
        _check_answer(reply, f"sign-in {step}")
        if reply.status == 200:
            return reply.data
        if reply.status == 401 and refusals:
            kind = refusals.get(str(reply.field("result")))
            if kind:
                raise kind[0](kind[1])
        if reply.status == 409:
            raise PortalUnavailable(f"sign-in {step}: the portal ended the sign-in session")
        raise PortalDrift(f"sign-in {step}: unexpected answer (HTTP {reply.status})")

    async def _open_app(self, session: Any, page: Page) -> dict:
        """Load the portal's app shell and return its session view (stage, username)."""
        try:
            _, reply = await Shell(page).load(session.base_url.rstrip("/") + "/")
        except ShellNotServed as e:
            await self._not_served(page, e)
            raise  # _not_served always raises; keeps type checkers honest
        _check_answer(reply, "session check")
        if reply.status != 200:
            raise PortalDrift(f"session check: unexpected answer (HTTP {reply.status})")
        return reply.data

    @staticmethod
    async def _not_served(page: Page, e: ShellNotServed) -> None:
        resp = e.resp
        if resp is None:
            raise PortalUnavailable("the portal did not answer") from e
        if resp.status == 503 and await Shell(page).maintenance.count():
            raise Maintenance("the portal shows its maintenance page") from e
        if resp.status == 429 or await Shell(page).challenge.count():
            raise ChallengePresented("the portal shows its unusual-activity challenge") from e
        if resp.status >= 500:
            raise PortalUnavailable(f"the portal answered HTTP {resp.status}") from e
        raise PortalDrift(f"the portal's address answered HTTP {resp.status}") from e

    @staticmethod
    async def _landed(session: Any, page: Page) -> None:
        """Signed in: the app opens on the Claim Status screen, which must be the one we know."""
        await ClaimStatus(page).check_layout()
        session.page_state(page)[_RELOAD] = False

    async def _claims_screen(self, session: Any, page: Page, reload: bool) -> ClaimStatus:
        """The Claim Status screen, ready for a search (no menu or modal over it)."""
        claims = ClaimStatus(page)
        shell = Shell(page)
        if reload or not page.url.startswith(session.base_url.rstrip("/")) or not await claims.is_shown():
            view = await self._open_app(session, page)
            if view.get("stage") != "app":
                raise SessionExpired("the portal shows its sign-in page")
            await claims.check_layout()
        session.page_state(page)[_RELOAD] = False
        await shell.dismiss_dialog()
        await shell.close_menu_if_open()
        return claims

    # ------------------------------------------------------------------ verify
    @at_the_edge
    async def verify(self, session: Any) -> bool:
        """True when this (restored) context is signed in: the app's own session check says so."""
        page = await session.page()
        view = await self._open_app(session, page)
        if view.get("stage") != "app":
            return False
        await self._landed(session, page)
        return True

    # ------------------------------------------------------------------ claim status
    @at_the_edge
    async def claim_status(self, session: Any, q: ClaimQuery) -> ClaimStatusResult:
        """Search, choose the one claim that is provably the query's, read its detail cards; the tab is left
        showing that claim's detail (the evidence page)."""
        page = await session.page()
        state = session.page_state(page)
        claims = await self._claims_screen(session, page, reload=bool(state.get(_RELOAD)))
        feed = state.get(_FEED)
        if feed is None or feed.page is not page:
            feed = state[_FEED] = DetailFeed(page)
        feed.reset()
        number = M.normalize_claim_number(q.payer_claim_number) if q.payer_claim_number else ""
        if number:
            reply = await claims.search_by_claim_number(number)
        elif q.patient_dob is None:
            raise ClaimNotFound(f"{q.claim_ref}: no claim number and no patient date of birth; the portal "
                                "searches by member ID and date of birth only")
        else:
            reply = await claims.search_by_member(q.member_id, M.mdy(q.patient_dob), M.mdy(q.dos_from),
                                                  M.mdy(q.dos_to))
        rows = await self._search_rows(page, reply, q)
        chosen = self._candidates(rows, q, number)
        opened_by_portal = len(rows) == 1  # one result opens its detail on its own
        matches: list[tuple[str, dict]] = []
        shown_key = None
        for i, row in enumerate(chosen):
            key = row["key"]
            if not opened_by_portal:
                await claims.open_result(key, after_search=i == 0)
            shown_key = key
            overview = self._card(await feed.card(key, "overview"), "overview")
            if _norm_id(_text(overview, "billingProviderNpi", "overview")) == _norm_id(q.billing_npi):
                matches.append((key, overview))
        if not matches:
            raise ClaimMismatch(f"{q.claim_ref}: the claim shown has another billing NPI")
        if len(matches) > 1:
            raise AmbiguousClaim(f"{q.claim_ref}: {len(matches)} claims match member, dates, amount and NPI")
        key, overview = matches[0]
        if key != shown_key:  # a later candidate is on screen: show the claim read again (evidence)
            await claims.open_result(key, after_search=False)
        payments = self._card(await feed.card(key, "payments"), "payments")
        lines = self._card(await feed.card(key, "lines"), "service lines")
        result = self._result(q, number, overview, payments, lines)
        try:
            shown = await claims.shown_overview(key, self._printed(overview))
        except DetailNotShown:
            if opened_by_portal:
                raise
            # With the stale-detail behaviour the app empties the detail panel a moment after a search that
            # listed several claims, also when it was empty before: a claim opened meanwhile is wiped. Open it
            # again, once (its cards are read again: same claim, same key).
            await claims.open_result(key, after_search=False)
            shown = await claims.shown_overview(key, self._printed(overview))
        return self._prove(q, number, result, shown)

    @staticmethod
    def _printed(ov: dict) -> dict[str, str]:
        """The overview facts the rendered card must show for the JSON it was served (label -> text)."""
        where = "claim overview"
        return {"Claim number": _text(ov, "claimNumber", where) or "\u2014",
                "Member ID": _text(ov, "memberId", where),
                "First date of service": _text(ov, "firstServiceDate", where),
                "Last date of service": _text(ov, "lastServiceDate", where),
                "Billed amount": _text(ov, "billed", where)}

    @staticmethod
    def _prove(q: ClaimQuery, number: str, r: ClaimStatusResult, shown: dict[str, str]) -> ClaimStatusResult:
        """Fill the proof fields from the rendered overview card and check them against the query."""
        printed = shown["Claim number"]
        shown_number = M.normalize_claim_number(printed)
        member = shown["Member ID"]
        first, last = M.us_date(shown["First date of service"]), M.us_date(shown["Last date of service"])
        billed = M.money(shown["Billed amount"])
        if number and shown_number != number:
            raise ClaimMismatch(f"{q.claim_ref}: the page shows another claim number")
        if shown_number != (r.payer_claim_number or ""):
            raise ClaimMismatch(f"{q.claim_ref}: the page shows another claim than the one read")
        if _norm_id(member) != _norm_id(q.member_id) or (first, last) != (q.dos_from, q.dos_to) \
                or billed != q.billed:
            raise ClaimMismatch(f"{q.claim_ref}: the page shows another claim")
        return r.model_copy(update={"shown_member_id": member, "shown_dos_from": first, "shown_dos_to": last,
                                    "shown_claim_number": printed if shown_number else None,
                                    "shown_billed": billed})

    async def _search_rows(self, page: Page, reply: ApiReply, q: ClaimQuery) -> list[dict]:
        _check_answer(reply, "claim search")
        if reply.status == 400:
            raise PortalDrift("claim search: the portal refused the search form")
        if reply.status != 200:
            raise PortalDrift(f"claim search: unexpected answer (HTTP {reply.status})")
        result = reply.field("result")
        if result in M.NOT_FOUND_RESULTS:
            if result in M.NOT_FOUND_IN_MODAL:
                await Shell(page).close_error_modal()
            raise ClaimNotFound(f"{q.claim_ref}: {M.NOT_FOUND_RESULTS[result]}")
        rows = reply.field("claims")
        if result != "ok" or not isinstance(rows, list) or not rows:
            raise PortalDrift("claim search: unexpected result")
        for row in rows:
            for name in ("key", "claimNumber", "memberId", "firstServiceDate", "lastServiceDate", "billed",
                         "statusLabel"):
                _need_field(row, name, "claim search result")
        return rows

    @staticmethod
    def _candidates(rows: list[dict], q: ClaimQuery, number: str) -> list[dict]:
        """The results that are the query's claim by what the results table shows (NPI comes later):
        the same claim number (normalized), member, dates of service (exactly) and billed amount."""
        where = "claim search result"
        if number:
            rows = [r for r in rows if M.normalize_claim_number(_text(r, "claimNumber", where)) == number]
            if not rows:
                raise ClaimMismatch(f"{q.claim_ref}: the portal listed another claim number")
        member = _norm_id(q.member_id)
        if any(_norm_id(_text(r, "memberId", where)) != member for r in rows):
            raise ClaimMismatch(f"{q.claim_ref}: the portal listed a claim of another member")
        same = [r for r in rows
                if (M.us_date(r["firstServiceDate"]), M.us_date(r["lastServiceDate"])) == (q.dos_from, q.dos_to)
                and M.money(r["billed"]) == q.billed]
        if not same:
            raise ClaimMismatch(f"{q.claim_ref}: no listed claim has these dates of service and billed amount")
        return same

    @staticmethod
    def _card(reply: ApiReply, card: str) -> dict:
        _check_answer(reply, f"claim {card}")
        if reply.status == 404:
            raise ClaimNotFound(f"the portal could not retrieve the claim's {card}")
        if reply.status != 200:
            raise PortalDrift(f"claim {card}: unexpected answer (HTTP {reply.status})")
        return reply.data

    # ------------------------------------------------------------------ reading the detail
    def _result(self, q: ClaimQuery, queried: str, ov: dict, pay: dict, ln: dict) -> ClaimStatusResult:
        where = "claim overview"
        number = _text(ov, "claimNumber", where)
        member = _text(ov, "memberId", where)
        first = M.us_date(_need_field(ov, "firstServiceDate", where))
        last = M.us_date(_need_field(ov, "lastServiceDate", where))
        billed = M.money(_need_field(ov, "billed", where))
        canonical = M.normalize_claim_number(number)
        # proof: the detail itself echoes the query's claim
        if queried and canonical != queried:
            raise ClaimMismatch(f"{q.claim_ref}: the detail shows another claim number")
        if _norm_id(member) != _norm_id(q.member_id) or (first, last) != (q.dos_from, q.dos_to) \
                or billed != q.billed:
            raise ClaimMismatch(f"{q.claim_ref}: the detail shows another claim")

        label = _text(ov, "statusLabel", where)
        adjudication_status = _text(ov, "adjudicationStatus", where)
        category, code = M.status_for_label(label, adjudication_status)
        allowed = M.money_or_none(_need_field(ov, "allowed", where))
        paid = M.money_or_none(_need_field(ov, "paid", where))
        patient_resp = M.money_or_none(_need_field(ov, "patientResponsibility", where))
        returned = _need_field(ov, "returnedReason", where)
        adjudicated = category.startswith("F")
        shown = [a is not None for a in (allowed, paid, patient_resp)]
        if (adjudicated and not all(shown)) or (not adjudicated and any(shown)):
            raise PortalDrift("claim overview: amounts disagree with the claim status")

        rejection_reason = None
        if category in M.REJECTION_CATEGORIES:
            rejection_reason = _text(ov, "returnedReason", where)
            code = M.returned_reason_code(rejection_reason)
            if number:
                raise PortalDrift("claim overview: a returned claim with a claim number")
        elif not number or returned is not None:
            raise PortalDrift("claim overview: claim number or returned reason disagrees with the status")

        check_number, check_date, raw_payments = self._payment(pay, paid)
        lines, raw_lines, denial_carcs = self._lines(ln, billed, allowed, paid, patient_resp)
        if category == "F2":
            M.require_denial_reason(denial_carcs)  # and no code: the page shows none
        elif code is None:
            raise PortalDrift("claim status code could not be derived")

        raw = {
            "status_label": label,
            "adjudication_status": adjudication_status,
            "status_date": _need_field(ov, "statusDate", where),
            "received_date": _need_field(ov, "receivedDate", where),
            "claim_number": number,
            "patient_account_number": _need_field(ov, "patientAccountNumber", where),
            "billing_provider_npi": _need_field(ov, "billingProviderNpi", where),
            "first_service_date": ov["firstServiceDate"],
            "last_service_date": ov["lastServiceDate"],
            "billed": ov["billed"], "allowed": ov["allowed"], "paid": ov["paid"],
            "patient_responsibility": ov["patientResponsibility"],
            "returned_reason": returned,
            "payments": raw_payments,
            "lines": raw_lines,
        }
        return ClaimStatusResult(
            claim_ref=q.claim_ref, portal_key=self.key, observed_at=datetime.now(UTC),
            status_category=category, status_code=code, payer_claim_number=canonical or None,
            billed=billed, allowed=allowed, paid=paid, patient_responsibility=patient_resp,
            check_number=check_number, check_date=check_date,
            lines=lines if adjudicated else [], rejection_reason=rejection_reason,
            raw_label=label, raw=raw,
        )

    @staticmethod
    def _payment(pay: dict, paid: Decimal | None) -> tuple[str | None, date | None, list[dict]]:
        rows = _list(pay, "payments", "payments card")
        raw = []
        for p in rows:
            raw.append({k: _need_field(p, k, "payments card") for k in ("issueDate", "paymentNumber", "method",
                                                                         "amount")})
        if not rows:
            return None, None, raw
        if len(rows) > 1:
            raise PortalDrift("payments card: more than one payment for the claim")
        p = rows[0]
        if p["method"] not in M.PAYMENT_METHODS:
            raise PortalDrift("payments card: unknown payment method")
        if paid is None or M.money(p["amount"]) != paid:
            raise PortalDrift("payments card: payment amount disagrees with the paid amount")
        number = _text(p, "paymentNumber", "payments card")
        if not number:
            raise PortalDrift("payments card: payment number missing")
        return number, M.us_date(p["issueDate"]), raw

    @staticmethod
    def _lines(ln: dict, billed: Decimal, allowed: Decimal | None, paid: Decimal | None,
               patient_resp: Decimal | None) -> tuple[list[LineResult], list[dict], set[str]]:
        where = "service lines card"
        rows = _list(ln, "lines", where)
        if not rows:
            raise PortalDrift(f"{where}: no service lines")
        lines: list[LineResult] = []
        raw_lines: list[dict] = []
        denial_carcs: set[str] = set()
        for r in rows:
            status = _text(r, "lineStatus", where)
            if status not in M.LINE_STATUS:
                raise PortalDrift(f"{where}: unknown line status")
            processed, denied = M.LINE_STATUS[status]
            mods = _need_field(r, "modifiers", where)
            number = _need_field(r, "lineNumber", where)
            if not isinstance(mods, list) or not all(isinstance(m, str) for m in mods) or not isinstance(number, int):
                raise PortalDrift(f"{where}: unexpected line shape")
            adjustments, rarcs = [], []
            raw_adj = []
            for a in _list(r, "adjustments", where):
                group_text, reason = _text(a, "group", where), _text(a, "reason", where)
                amount = M.money(_need_field(a, "amount", where))
                carc = M.code_for_text("carc", reason)
                adjustments.append(LineAdjustment(group=M.group_for_text(group_text), carc=carc, amount=amount,
                                                  raw=f"{group_text}: {reason}"))
                raw_adj.append({"type": group_text, "reason": reason, "amount": a["amount"]})
                if denied:
                    denial_carcs.add(carc)
            remarks = _list(r, "remarks", where)
            for text in remarks:
                rarcs.append(M.code_for_text("rarc", text if isinstance(text, str) else ""))
            line = LineResult(
                line_no=number, cpt=_text(r, "procedureCode", where), modifiers=mods,
                billed=M.money(_need_field(r, "billed", where)),
                allowed=M.money_or_none(_need_field(r, "allowed", where)),
                paid=M.money_or_none(_need_field(r, "paid", where)),
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
