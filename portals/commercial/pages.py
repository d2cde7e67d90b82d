"""Page objects of the Northstar Health provider portal (a single-page app fed by /api JSON).

Locators are user-facing (labels, roles, names) and built once per page object. Element ids are
generated anew on every load, so none is used. Each intent method performs one user action and returns
the portal's JSON answer to it (`ApiReply`), read from the response the action caused: the adapter
decides on what the portal served, never on what it guessed the page would show.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from playwright.async_api import Locator, Page, Request, Response
from playwright.async_api import TimeoutError as PlaywrightTimeout

from core.errors import ChallengePresented, ClaimMismatch, PortalDrift, PortalUnavailable
from portals.commercial.results import ApiReply
from portals.fields import enter

# An element the flow needs must show up this soon once the portal has answered (else the page changed).
ELEMENT_MS = 8_000
# The portal's JSON answer to one action.
ANSWER_MS = 20_000
# Once the shell's HTML is in, its scripts start the app at once.
APP_START_S = 3.0


async def reply_of(resp: Response) -> ApiReply:
    try:
        data = await resp.json()
    except Exception:  # noqa: BLE001 - an HTML error page or a cut body: the caller judges by status
        data = None
    return ApiReply(resp.status, data)


def _answer_to(method: str, path: str) -> Callable[[Response], bool]:
    pattern = re.compile(rf"^[a-z]+://[^/]+{re.escape(path)}(?:\?.*)?$")
    return lambda r: r.request.method == method and pattern.match(r.url) is not None


async def _act(page: Page, method: str, path: str, action: Callable[[], Awaitable[None]]) -> ApiReply:
    """Do `action` and return the portal's answer to the `method path` request it sends."""
    async with page.expect_response(_answer_to(method, path), timeout=ANSWER_MS) as info:
        await action()
    return await reply_of(await info.value)


async def need_once_rendered(rendered: Locator, locator: Locator, what: str) -> None:
    """Once the screen has rendered (`rendered` shows), `locator` must be on it: else the layout changed.
    Cheaper than waiting out a timeout for an element that will never come."""
    await need(rendered, "the screen's title")
    if not await locator.count():
        raise PortalDrift(f"{what} not found on the page")


async def need(locator: Locator, what: str, timeout: int = ELEMENT_MS) -> Locator:
    """The element the flow needs; if it does not appear the page is not the one we know (drift)."""
    try:
        await locator.wait_for(state="visible", timeout=timeout)
    except PlaywrightTimeout as e:
        raise PortalDrift(f"{what} not found on the page") from e
    return locator


class DetailNotShown(PortalDrift):
    """No detail panel of the claim on the page (never rendered, or wiped after it rendered)."""


class ShellNotServed(Exception):
    """The portal answered the app's address with something else (maintenance, challenge, error page)."""

    def __init__(self, resp: Response | None) -> None:
        super().__init__("app shell not served")
        self.resp = resp


class Shell:
    """What every screen shares: the HTML shell, the session probe, the menu, overlays and full-page states."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.close_menu = page.get_by_role("button", name="Close menu")
        self.dialog = page.get_by_role("dialog")
        self.dialog_button = self.dialog.get_by_role("button")
        self.maintenance = page.get_by_role("heading", name="System maintenance")
        self.challenge = page.get_by_role("heading", name="We noticed unusual activity")

    async def load(self, url: str) -> tuple[Response, ApiReply]:
        """Load the app shell and return its response and the app's session answer (stage, username).
        Raises ShellNotServed when the address answers with another page (maintenance, challenge, error)."""
        session_answer = _answer_to("GET", "/api/session")
        asked = asyncio.Event()

        def on_request(request: Request) -> None:
            if request.method == "GET" and urlsplit(request.url).path == "/api/session":
                asked.set()

        self.page.on("request", on_request)
        try:
            async with self.page.expect_response(session_answer, timeout=ANSWER_MS) as info:
                resp = await self.page.goto(url, wait_until="domcontentloaded")
                if resp is None or resp.status != 200:
                    raise ShellNotServed(resp)
                # The app's scripts ask for the session before DOMContentLoaded (the event may reach us a
                # little later): no such request means the shell arrived cut short.
                try:
                    await asyncio.wait_for(asked.wait(), APP_START_S)
                except TimeoutError as e:
                    raise PortalUnavailable("the portal's app did not start (page cut short)") from e
        finally:
            self.page.remove_listener("request", on_request)
        return resp, await reply_of(await info.value)

    async def close_menu_if_open(self) -> None:
        """The "Claims & Payments" menu can stay open over the page (only its Close button shuts it)."""
        if await self.close_menu.is_visible():
            await self.close_menu.click()

    async def close_error_modal(self) -> None:
        """Close the modal a search answer opens ("Member not found", "No matching claims")."""
        try:
            await self.dialog.wait_for(state="visible", timeout=ELEMENT_MS)
        except PlaywrightTimeout:
            return  # nothing over the page: the next screen check reloads the app if anything is left
        await self.dismiss_dialog()

    async def dismiss_dialog(self) -> None:
        """An error modal sits inside the loading overlay and blocks the page until it is closed."""
        if await self.dialog.is_visible():
            await self.dialog_button.click()
            await self.dialog.wait_for(state="detached")


class SignIn:
    """The sign-in stages: username, password, identity verification, password prompt, announcements."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.username = page.get_by_label("Username", exact=True)
        self.continue_button = page.get_by_role("button", name="Continue", exact=True)
        self.password = page.get_by_label("Password", exact=True)
        self.sign_in_button = page.get_by_role("button", name="Sign in", exact=True)
        # "Verify your identity": never "Text me a code" (a phone nobody watches), never recovery codes
        self.authenticator = page.get_by_role("button", name="Authenticator app", exact=True)
        self.code = page.get_by_label("Enter the 6-digit code from your authenticator app", exact=True)
        self.remember_device = page.get_by_label("Remember this device", exact=True)
        self.verify_button = page.get_by_role("button", name="Verify", exact=True)
        self.skip_password_prompt = page.get_by_role("button", name="Skip for now", exact=True)
        self.acknowledge_button = page.get_by_role("button", name="I acknowledge", exact=True)
        # each sign-in stage is one card titled by the only level-1 heading on the page
        self.stage_title = page.get_by_role("heading", level=1)

    async def check_layout(self) -> None:
        """The first sign-in stage is the one we know (a new release renames its fields)."""
        await need_once_rendered(self.stage_title, self.username, "username field")

    async def enter_username(self, username: str) -> ApiReply:
        await (await need(self.username, "username field")).fill(username)
        return await _act(self.page, "POST", "/api/auth/username", self.continue_button.click)

    async def enter_password(self, password: str) -> ApiReply:
        await enter(await need(self.password, "password field"), password)
        return await _act(self.page, "POST", "/api/auth/password", self.sign_in_button.click)

    async def choose_authenticator_app(self) -> ApiReply:
        await need(self.authenticator, "authenticator app choice")
        return await _act(self.page, "POST", "/api/auth/mfa/method", self.authenticator.click)

    async def enter_code(self, code: str, remember: bool = True) -> ApiReply:
        await enter(await need(self.code, "verification code field"), code)
        if remember:
            await self.remember_device.check()
        return await _act(self.page, "POST", "/api/auth/mfa/verify", self.verify_button.click)

    async def skip_password_expiry_prompt(self) -> ApiReply:
        await need(self.skip_password_prompt, "password prompt 'Skip for now'")
        return await _act(self.page, "POST", "/api/auth/password-prompt/skip", self.skip_password_prompt.click)

    async def acknowledge_announcements(self) -> ApiReply:
        await need(self.acknowledge_button, "announcements 'I acknowledge'")
        return await _act(self.page, "POST", "/api/auth/announcements/acknowledge", self.acknowledge_button.click)


def claim_key_of_link(href: str | None) -> str | None:
    """Result links are `#/claims/detail/<base64 JSON {claimNumber, status, firstServiceDate, key}>`."""
    token = (href or "").rpartition("/")[2]
    try:
        info = json.loads(base64.b64decode(token))
    except ValueError:
        return None
    return info.get("key") if isinstance(info, dict) else None


class ClaimStatus:
    """Claims & Payments > Claim Status: the search card, the results table, the detail panel."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.screen_title = page.get_by_role("main").get_by_role("heading", level=1)
        self.search_heading = page.get_by_role("heading", name="Find a claim", exact=True)
        self.by_member_tab = page.get_by_role("tab", name="Member ID & date of birth", exact=True)
        self.by_number_tab = page.get_by_role("tab", name="Claim number", exact=True)
        self.member_id = page.get_by_label("Member ID", exact=True)
        self.date_of_birth = page.get_by_label("Date of birth", exact=True)
        self.first_dos = page.get_by_label("First date of service", exact=True)
        self.last_dos = page.get_by_label("Last date of service", exact=True)
        self.claim_number = page.get_by_label("Claim number", exact=True)
        self.search_button = page.get_by_role("button", name="Search", exact=True)
        # The results table has no accessible name; its links carry the claim key only in their href.
        self.result_links = page.locator("table.claims-results").get_by_role("link")
        # The claim currently rendered in the detail panel (it may still be the previous one for a moment).
        self.detail_panel = page.locator(".claim-detail")

    async def is_shown(self) -> bool:
        return await self.search_heading.is_visible()

    async def check_layout(self) -> None:
        """The Claim Status screen is the one we know (its search card, its tabs)."""
        await need_once_rendered(self.screen_title, self.search_heading, "claim search")
        await need_once_rendered(self.screen_title, self.by_number_tab, "'Claim number' search tab")

    async def _tab(self, tab: Locator, what: str) -> None:
        await need(tab, what)
        if await tab.get_attribute("aria-selected") != "true":
            await tab.click()

    async def search_by_claim_number(self, number: str) -> ApiReply:
        await self._tab(self.by_number_tab, "'Claim number' search tab")
        await (await need(self.claim_number, "claim number field")).fill(number)
        return await _act(self.page, "POST", "/api/claims/search", self.search_button.click)

    async def search_by_member(self, member_id: str, dob: str, first: str, last: str) -> ApiReply:
        await self._tab(self.by_member_tab, "'Member ID & date of birth' search tab")
        await enter(await need(self.member_id, "member ID field"), member_id)
        await enter(await need(self.date_of_birth, "date of birth field"), dob)
        await enter(await need(self.first_dos, "first date of service field"), first)
        await enter(await need(self.last_dos, "last date of service field"), last)
        return await _act(self.page, "POST", "/api/claims/search", self.search_button.click)

    async def open_result(self, key: str, after_search: bool = True) -> None:
        """Open the result whose link carries `key`. Right after a search, first wait for the previous
        claim to leave the detail panel (it can linger there after a new search)."""
        if after_search:
            await self.detail_panel.wait_for(state="detached", timeout=ANSWER_MS)
        hrefs = await self.result_links.evaluate_all("els => els.map(e => e.getAttribute('href'))")
        keys = [claim_key_of_link(h) for h in hrefs]
        if keys.count(key) != 1:
            raise PortalDrift("claim result link not found in the results table")
        await self.result_links.nth(keys.index(key)).click()


    async def shown_overview(self, key: str, want: dict[str, str], timeout_ms: int = ELEMENT_MS) -> dict[str, str]:
        """The facts (label -> text) the detail panel's overview card shows for claim `key`, once it shows
        `want` and the cards read are rendered. The panel can show the previous claim for a moment (a stale
        panel or a card's cached data): ClaimMismatch when it does not come to show this claim in time,
        PortalDrift when no detail panel for the claim is on the page at all."""
        try:
            handle = await self.page.wait_for_function(_SHOWN_JS, arg={"key": key, "want": want, "settle": True},
                                                       timeout=timeout_ms, polling=50)
            return await handle.json_value()
        except PlaywrightTimeout:
            now = await self.page.evaluate(_SHOWN_JS, {"key": key, "want": want, "settle": False})
            if now is None:
                raise DetailNotShown("the claim's detail panel is not on the page") from None
            raise ClaimMismatch("the detail panel does not show the claim read") from None


# The rendered overview card of one claim (by its key) as label -> text, when it shows `want` (or, with
# settle false, whatever it shows; null when there is no such panel).
_SHOWN_JS = """({key, want, settle}) => {
  const panel = [...document.querySelectorAll(".claim-detail")].find((d) => d.dataset.claimKey === key);
  if (!panel) return settle ? false : null;
  const card = panel.querySelector(".claim-overview");
  const facts = {};
  if (card) for (const dt of card.querySelectorAll("dt")) {
    const dd = dt.nextElementSibling;
    facts[dt.textContent.trim()] = dd && dd.tagName === "DD" ? dd.textContent.trim() : null;
  }
  if (!settle) return facts;
  const busy = panel.querySelector(".claim-overview[aria-busy], .claim-payments[aria-busy], .claim-lines[aria-busy]");
  if (!card || busy) return false;
  for (const [label, text] of Object.entries(want)) if (facts[label] !== text) return false;
  return facts;
}"""


_CARD = re.compile(r"^[a-z]+://[^/]+/api/claims/(?P<key>[^/?#]+)/(?P<card>overview|payments|lines)(?:\?.*)?$")


class DetailFeed:
    """The claim detail's cards (overview, payments, service lines) as the portal serves them.

    Each card loads on its own; this collects their JSON answers by claim key, and only for requests the
    page sent since the last `reset()`, so a card of the previous claim (the stale-detail panel, a late
    answer) can never stand in for the claim asked for.
    """

    def __init__(self, page: Page) -> None:
        self.page = page
        self.challenged = False
        self._mine: set[Request] = set()
        self._cards: dict[tuple[str, str], asyncio.Future[Response | None]] = {}
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)

    def reset(self) -> None:
        self.challenged = False
        self._mine.clear()
        for fut in self._cards.values():
            if not fut.done():
                fut.cancel()
        self._cards.clear()

    def _future(self, key: str, card: str) -> asyncio.Future[Response | None]:
        fut = self._cards.get((key, card))
        if fut is None:
            fut = self._cards[(key, card)] = asyncio.get_running_loop().create_future()
        return fut

    def _on_request(self, request: Request) -> None:
        if request.method == "GET" and _CARD.match(request.url):
            self._mine.add(request)

    def _settle(self, request: Request, value: Response | None) -> None:
        m = _CARD.match(request.url)
        if m is None or request not in self._mine:
            return
        fut = self._future(m["key"], m["card"])
        if not fut.done():
            fut.set_result(value)

    def _on_response(self, response: Response) -> None:
        if response.status == 429 and response.request in self._mine:
            self.challenged = True  # the app leaves for the challenge page and drops the other cards
        self._settle(response.request, response)

    def _on_failed(self, request: Request) -> None:
        self._settle(request, None)

    async def card(self, key: str, card: str, timeout_s: float = ANSWER_MS / 1000) -> ApiReply:
        try:
            resp = await asyncio.wait_for(asyncio.shield(self._future(key, card)), timeout_s)
        except TimeoutError as e:
            raise PortalUnavailable(f"claim {card} card did not load") from e
        if resp is None:
            if self.challenged or urlsplit(self.page.url).path == "/challenge":
                raise ChallengePresented(f"claim {card}: the portal shows its unusual-activity challenge")
            raise PortalUnavailable(f"claim {card} card request failed")
        return await reply_of(resp)
