"""What every screen of Meridian Exchange shares: its paths, where a navigation landed (maintenance page,
5xx, login page = session expired, unusual-activity challenge) before a page object reads anything,
where a redirected request was sent, and its type-then-choose comboboxes.

Elements are found by role, label and text; the portal's element ids are generated per render, so none is
used (portals/dom.py reads tables and label/value lists).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urljoin, urlsplit

from playwright.async_api import Frame, Locator, Page
from playwright.async_api import Response as PwResponse

from core.errors import ChallengePresented, Maintenance, PortalDrift, PortalUnavailable, SessionExpired
from portals.dom import require

LOGIN = "/login"
MFA_PATHS = ("/mfa", "/mfa/method", "/mfa/verify")
PASSWORD = "/password"
ANNOUNCEMENTS = "/announcements"
ORGS = "/orgs"
APP = "/app"
CHALLENGE = "/challenge"
CLAIM_STATUS_APP = "/apps/claim-status"
SEARCH = "/apps/claim-status/search"
REMIT = "/remit"
SIGN_IN_PATHS = (LOGIN, *MFA_PATHS, PASSWORD, ANNOUNCEMENTS)
# where the portal redirects a request whose session is not (or no longer) fully signed in: also the
# organization picker, while another tab of the same session is signing in again
SESSION_STAGE_PATHS = (*SIGN_IN_PATHS, ORGS)
Doc = Page | Frame


def path_of(doc: Doc) -> str:
    return urlsplit(doc.url).path


async def landed(doc: Doc, resp: PwResponse | None, *, signing_in: bool = False) -> str:
    """Where a document landed after a navigation, or the error that page means. Returns the path."""
    status = resp.status if resp is not None else None
    maintenance, sorry, unusual = await asyncio.gather(  # the three headings asked at once
        *(doc.get_by_role("heading", name=n).count()
          for n in ("System maintenance", "We're sorry", "We detected unusual activity")))
    if maintenance:
        raise Maintenance("the portal shows its maintenance page")
    if (status is not None and status >= 500) or sorry:
        raise PortalUnavailable(f"the portal answered HTTP {status}" if status else "the portal's error page")
    path = path_of(doc)
    if path == CHALLENGE or unusual:
        raise ChallengePresented("the portal shows its unusual-activity challenge")
    if not signing_in and (path in SIGN_IN_PATHS or status == 401):
        # the gate sends a lost session (idle, dropped, logged out) back to the login page
        raise SessionExpired("the portal sent the browser to its login page")
    if status is not None and status >= 400 and not signing_in:
        raise PortalDrift(f"the portal answered HTTP {status}")
    return path


async def navigate(doc: Doc, action: Any, *, signing_in: bool = False) -> str:
    """Run `action` (a click that navigates `doc`), wait for the new document, return where it landed."""
    async with doc.expect_navigation(wait_until="domcontentloaded") as nav:
        await action()
    return await landed(doc, await nav.value, signing_in=signing_in)


async def goto(page: Page, url: str, *, signing_in: bool = False) -> str:
    return await landed(page, await page.goto(url, wait_until="domcontentloaded"), signing_in=signing_in)


def redirect_path(resp: PwResponse) -> str:
    """The path a redirect response sends the browser to ("" when it is not a redirect)."""
    if not 300 <= resp.status < 400:
        return ""
    return urlsplit(urljoin(resp.url, resp.headers.get("location", ""))).path


def at_the_tool(path: str, drift: str) -> None:
    """A navigation meant to open the Claim Status tool landed on `path`: the organization picker means the
    session is between sign-in steps (another tab is signing it in again); any other page is drift."""
    if path == ORGS:
        raise SessionExpired("claim status: the portal sent the tool to its organization picker")
    if path != CLAIM_STATUS_APP:
        raise PortalDrift(drift)


def redirect_error(what: str, where: str) -> Exception | None:
    """The error a data request redirected to `where` means ("" = not redirected): back to sign-in (the
    session is not signed in, or another tab is signing it in again) or to the challenge. None otherwise."""
    if where == CHALLENGE:
        return ChallengePresented(f"{what}: the portal sent the request to its unusual-activity challenge")
    if where in SESSION_STAGE_PATHS:
        return SessionExpired(f"{what}: the portal sent the request back to sign-in")
    return None


class NotFound(Exception):
    """The portal said "not found" (the adapter adds the claim reference): not yet ClaimNotFound, because
    the adapter may search under another organization first."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


async def combo_options(listbox: Locator, what: str) -> list[tuple[str, str, str | None]]:
    """(value, label, tag) of a combobox's options, shown or not."""
    await require(listbox, what)
    return [(o["value"], o["label"], o["tag"]) for o in await listbox.get_by_role(
        "option", include_hidden=True).evaluate_all(
        "els => els.map(e => ({value: e.dataset.value || '', label: e.textContent.trim(),"
        " tag: e.dataset.tag || null}))")]


async def choose_option(combo: Locator, listbox: Locator, label: str, what: str) -> Locator:
    """Type the option's label, then choose it (typing alone sets nothing). Returns the option clicked
    (callers that expect a navigation click it themselves)."""
    await (await require(combo, what)).fill(label)
    option = listbox.get_by_role("option", name=label, exact=True)
    await option.wait_for()
    await option.click()
    return option
