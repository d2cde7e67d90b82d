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

from typing import Any, TypeVar

from playwright.async_api import Page

from core.claims import ClaimQuery, ClaimStatusResult, id_key
from core.credentials import Credentials
from core.errors import (
    AmbiguousClaim,
    ChallengePresented,
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
from portals.commercial import results
from portals.commercial.pages import (
    ClaimStatus,
    DetailFeed,
    DetailNotShown,
    Shell,
    ShellNotServed,
    SignIn,
)
from portals.commercial.results import ApiReply
from portals.edge import at_the_edge
from portals.formats import fmt_mdy

R = TypeVar("R")

MAX_SIGN_IN_STEPS = 8
_FEED = "commercial.detail_feed"  # session.page_state(): the DetailFeed of that tab's SPA
_RELOAD = "commercial.reload"  # session.page_state(): the tab may be in a bad state, reload the app first

_API = r"^https?://[^/?#]+/api/"
_QUERY = r"(?:\?[^#]*)?$"


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
    @at_the_edge(_RELOAD)
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
                totp = creds.authenticator()
                if totp is None:
                    raise NeedsAttention("the portal asks for a verification code and no authenticator "
                                         "secret is on file")
                code = totp.now()
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
        results.check_answer(reply, f"sign-in {step}")
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
        results.check_answer(reply, "session check")
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
    @at_the_edge(_RELOAD)
    async def verify(self, session: Any) -> bool:
        """True when this (restored) context is signed in: the app's own session check says so."""
        page = await session.page()
        view = await self._open_app(session, page)
        if view.get("stage") != "app":
            return False
        await self._landed(session, page)
        return True

    # ------------------------------------------------------------------ claim status
    @at_the_edge(_RELOAD)
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
            reply = await claims.search_by_member(q.member_id, fmt_mdy(q.patient_dob), fmt_mdy(q.dos_from),
                                                  fmt_mdy(q.dos_to))
        rows = await self._search_rows(page, reply, q)
        chosen = results.candidates(rows, q, number)
        opened_by_portal = len(rows) == 1  # one result opens its detail on its own
        matches: list[tuple[str, dict]] = []
        shown_key = None
        for i, row in enumerate(chosen):
            key = row["key"]
            if not opened_by_portal:
                await claims.open_result(key, after_search=i == 0)
            shown_key = key
            overview = results.card(await feed.card(key, "overview"), "overview")
            if id_key(results.text(overview, "billingProviderNpi", "overview")) == id_key(q.billing_npi):
                matches.append((key, overview))
        if not matches:
            raise ClaimMismatch(f"{q.claim_ref}: the claim shown has another billing NPI")
        if len(matches) > 1:
            raise AmbiguousClaim(f"{q.claim_ref}: {len(matches)} claims match member, dates, amount and NPI")
        key, overview = matches[0]
        if key != shown_key:  # a later candidate is on screen: show the claim read again (evidence)
            await claims.open_result(key, after_search=False)
        payments = results.card(await feed.card(key, "payments"), "payments")
        lines = results.card(await feed.card(key, "lines"), "service lines")
        result = results.result(self.key, q, number, overview, payments, lines)
        try:
            shown = await claims.shown_overview(key, results.printed(overview))
        except DetailNotShown:
            if opened_by_portal:
                raise
            # With the stale-detail behaviour the app empties the detail panel a moment after a search that
            # listed several claims, also when it was empty before: a claim opened meanwhile is wiped. Open it
            # again, once (its cards are read again: same claim, same key).
            await claims.open_result(key, after_search=False)
            shown = await claims.shown_overview(key, results.printed(overview))
        return results.prove(q, number, result, shown)

    async def _search_rows(self, page: Page, reply: ApiReply, q: ClaimQuery) -> list[dict]:
        results.check_answer(reply, "claim search")
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
                results.need_field(row, name, "claim search result")
        return rows
