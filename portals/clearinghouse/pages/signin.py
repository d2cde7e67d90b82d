"""Meridian Exchange from the login form to the shell: the sign-in pages (cookie banner, 2-step
verification, also the remittance step-up, password prompt, announcements), the organization picker and
the shell with its menus and the iframe the apps load in."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from playwright.async_api import Frame, Page

from core.errors import NeedsAttention, PortalDrift, PortalUnavailable, SessionExpired
from portals.clearinghouse.pages.screens import (
    APP,
    CLAIM_STATUS_APP,
    LOGIN,
    MFA_PATHS,
    ORGS,
    at_the_tool,
    choose_option,
    combo_options,
    goto,
    landed,
    navigate,
    path_of,
)
from portals.dom import require
from portals.fields import enter


class SignInPage:
    """Login, the cookie banner, 2-step verification (also the step-up page), password prompt,
    announcements: the pages between the login form and the shell."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.consent = page.get_by_role("dialog", name="Cookie consent")
        self.essential_cookies = self.consent.get_by_role("button", name="Essential cookies only")
        self.user_id = page.get_by_label("User ID", exact=True)
        self.password = page.get_by_label("Password", exact=True)
        self.log_in = page.get_by_role("button", name="Log in", exact=True)
        self.alert = page.get_by_role("alert")  # sign-in pages carry one alert: their error
        self.authenticator_app = page.get_by_label("Authenticator app", exact=True)
        self.continue_ = page.get_by_role("button", name="Continue", exact=True)
        self.code = page.get_by_label("Verification code", exact=True)
        self.remember_device = page.get_by_label("Remember this device", exact=True)
        self.verify = page.get_by_role("button", name="Verify", exact=True)
        self.password_expired = page.get_by_role("heading", name="Your password has expired")
        self.remind_me_later = page.get_by_role("button", name="Remind me later", exact=True)
        self.announcements = page.get_by_role("heading", name="Announcements and terms of use")

    @property
    def path(self) -> str:
        return path_of(self.page)

    async def open(self) -> str:
        return await goto(self.page, LOGIN, signing_in=True)

    async def accept_essential_cookies(self) -> None:
        """The consent layer covers the form until a choice is made (set client-side, no request)."""
        if await self.consent.is_visible():
            await self.essential_cookies.click()
            await self.consent.wait_for(state="detached")

    async def sign_in(self, user_id: str, password: str) -> str:
        await (await require(self.user_id, "login: User ID field")).fill(user_id)
        await enter(await require(self.password, "login: Password field"), password)
        button = await require(self.log_in, "login: Log in button")
        return await navigate(self.page, button.click, signing_in=True)

    async def error_message(self) -> str:
        return " ".join(t.strip() for t in await self.alert.all_inner_texts())

    async def choose_authenticator_app(self) -> None:
        """Method picker: always the authenticator app (never SMS, never a backup code)."""
        await (await require(self.authenticator_app, "2-step verification: Authenticator app")).check()
        button = await require(self.continue_, "2-step verification: Continue")
        await navigate(self.page, button.click, signing_in=True)
        if not await self.code.count():
            if await self.alert.count():
                raise PortalDrift("2-step verification: the method picker refused the choice")
            raise PortalDrift("2-step verification: no code field after choosing the method")

    async def enter_code(self, code: str) -> str:
        await enter(await require(self.code, "2-step verification: code field"), code)
        if await self.remember_device.count():
            await self.remember_device.check()
        button = await require(self.verify, "2-step verification: Verify")
        return await navigate(self.page, button.click, signing_in=True)

    async def mfa_refused(self) -> bool:
        """Still on the code form after Verify: the code (or the account) was refused."""
        return self.path in MFA_PATHS and await self.alert.count() > 0

    async def skip_password_prompt(self) -> str:
        if await self.password_expired.count():
            raise NeedsAttention("password expired: the portal requires a password change")
        button = await require(self.remind_me_later, "password prompt: Remind me later")
        return await navigate(self.page, button.click, signing_in=True)

    async def continue_past_announcements(self) -> str:
        await require(self.announcements, "announcements: heading")
        button = await require(self.continue_, "announcements: Continue")
        return await navigate(self.page, button.click, signing_in=True)


@dataclass(frozen=True)
class Org:
    org_id: str
    name: str
    state: str  # state code (option value)
    state_name: str


class OrgPicker:
    """Select your organization: State then Organization, both type-then-choose comboboxes."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.heading = page.get_by_role("heading", name="Select your organization")
        self.state = page.get_by_role("combobox", name="State", exact=True)
        self.states = page.get_by_role("listbox", name="State", exact=True, include_hidden=True)
        self.org = page.get_by_role("combobox", name="Organization", exact=True)
        self.orgs = page.get_by_role("listbox", name="Organization", exact=True, include_hidden=True)
        self.continue_ = page.get_by_role("button", name="Continue", exact=True)

    async def options(self) -> list[Org]:
        """Every organization this account may work for, with its state (read from the lists'
        options: their values are the portal's organization ids and state codes)."""
        await require(self.heading, "organization picker: heading")
        states = {v: label for v, label, _ in await combo_options(self.states, "organization picker: states")}
        orgs = []
        for value, label, tag in await combo_options(self.orgs, "organization picker: organizations"):
            if tag not in states:
                raise PortalDrift("organization picker: an organization without a listed state")
            orgs.append(Org(value, label, tag, states[tag]))
        if not orgs:
            raise PortalDrift("organization picker: no organizations listed")
        return orgs

    async def choose(self, org: Org) -> str:
        await choose_option(self.state, self.states, org.state_name, "organization picker: State")
        await choose_option(self.org, self.orgs, org.name, "organization picker: Organization")
        button = await require(self.continue_, "organization picker: Continue")
        return await navigate(self.page, button.click, signing_in=True)


# ---------------------------------------------------------------------- the shell
class Shell:
    """The top page: menus, organization switch, and iframe#newBodyFrame where the apps load."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.frame_element = page.locator("iframe#newBodyFrame")  # the portal's fixed app frame id
        self.log_out = page.get_by_role("button", name="Log out", exact=True)
        self.claims_menu = page.get_by_role("button", name="Claims & Payments", exact=True)
        self.claim_status = page.get_by_role("link", name="Claim Status", exact=True)
        self.close_menu = page.get_by_role("button", name="Close menu")
        self.change_org = page.get_by_role("link", name="Change organization", exact=True)

    async def is_shown(self) -> bool:
        return path_of(self.page) == APP and await self.frame_element.count() == 1 \
            and await self.log_out.count() == 1

    async def open(self) -> None:
        """Load the shell and wait for the app in its frame (so that no later frame navigation races
        the frame's first load)."""
        if await goto(self.page, APP) != APP:
            raise SessionExpired("the portal did not open its home shell")
        if not await self.is_shown():
            raise PortalUnavailable("the portal's home shell came back incomplete")
        await self.wait_for_app()

    async def wait_for_app(self) -> None:
        """Wait for the frame's document (an app, or an error page: then say which)."""
        inner = self.page.frame_locator("iframe#newBodyFrame")
        await inner.get_by_role("main").or_(inner.get_by_role("heading")).first.wait_for(state="attached")
        await landed(await self.frame(), None)

    async def frame(self) -> Frame:
        """The frame inside iframe#newBodyFrame (taken from the element: a frame whose navigation
        failed has lost its name)."""
        handle = await (await require(self.frame_element, "shell: application frame")).element_handle()
        frame = await handle.content_frame()
        if frame is None:
            raise PortalUnavailable("shell: the application frame is not loaded")
        return frame

    async def open_tool(self, org_id: str, payer_id: str) -> Frame:
        """Load the shell with Claim Status in its frame, set to an organization and payer (the portal's
        deep link: the shell and the tool, two requests)."""
        query = urlencode({"appUrl": CLAIM_STATUS_APP, "orgId": org_id, "payerId": payer_id})
        if await goto(self.page, f"{APP}?{query}") != APP:
            raise SessionExpired("the portal did not open its home shell")
        if not await self.is_shown():
            raise PortalUnavailable("the portal's home shell came back incomplete")
        await self.wait_for_app()
        return await self.frame()

    async def open_claim_status(self) -> Frame:
        """Claims & Payments > Claim Status: loads the tool into the frame."""
        if not await self.claim_status.is_visible():  # the menu may already be open (and stay open)
            await (await require(self.claims_menu, "shell: Claims & Payments menu")).click()
        link = await require(self.claim_status, "shell: Claim Status menu item")
        frame = await self.frame()
        at_the_tool(await navigate(frame, link.click), "shell: Claim Status opened another page")
        if await self.close_menu.is_visible():  # the sticky menu covers the top of the frame
            await self.close_menu.click()
        return frame

    async def change_organization(self) -> OrgPicker:
        link = await require(self.change_org, "shell: Change organization")
        if await navigate(self.page, link.click) != ORGS:
            raise PortalDrift("shell: Change organization opened another page")
        return OrgPicker(self.page)
