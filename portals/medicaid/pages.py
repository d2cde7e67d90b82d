"""Page objects of the Franklin Medicaid MMIS portal: locators built once, intent methods, raw strings out.

Every navigation goes through `MmisPage.goto` / `MmisPage.submit`, which check where the browser
landed (maintenance page, 5xx, cut-short page, login redirect, security check, account gates) before a
page object reads anything. Elements a page object needs are checked with `count()` on the loaded page:
a missing one is PortalDrift at once, never a 20-second wait that would look like an outage.

The portal renders WebForms markup: form fields have real <label>s and buttons have names (used below),
but its data grids and the claim header have no accessible names, so those are found by their
WebForms ids (`ctl00_ContentPlaceHolder1_*`, the portal's stable server-control ids) and read by
column header / row header text, which is also checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Locator, Page
from playwright.async_api import Response as PwResponse

from core.errors import (
    ChallengePresented,
    Maintenance,
    NeedsAttention,
    PortalDrift,
    PortalUnavailable,
    SessionExpired,
)
from portals.dom import GridRow, pairs_js, read_grid, require
from portals.fields import enter

LOGIN = "/Login.aspx"
TERMS = "/TermsOfUse.aspx"
PASSWORD_WARNING = "/PasswordExpiry.aspx"
PASSWORD_CHANGE = "/ChangePassword.aspx"
REVERIFY = "/Provider/Reverify.aspx"
HOME = "/Home.aspx"
INQUIRY = "/Claims/Inquiry.aspx"
RESPONSE_LIST = "/Claims/ResponseList.aspx"
RESPONSE = "/Claims/Response.aspx"
CROSSWALK = "/Reference/EOBCrosswalk.aspx"
INTERSTITIALS = (TERMS, PASSWORD_WARNING)

CID = "#ctl00_ContentPlaceHolder1_"  # WebForms content placeholder id prefix

# The claim header is a two-column label/value table.
_PAIRS_JS = pairs_js("th", "td")

# What every navigation checks, in one round trip: the master-page footer (a complete page) and the
# page titles (security check, validation failure, "not yet available" are message pages).
_PROBE_JS = """() => ({
  footer: document.getElementById('ctl00_Footer') !== null,
  titles: Array.from(document.querySelectorAll('h1, h2')).map(h => h.innerText.trim()),
})"""

# Fills a WebForms form in one round trip: each field is found by its <label> text (as a person reads
# it), the label must point at exactly one input, and the value is set. Returns the labels not found.
_FILL_JS = """([fields]) => {
  const missing = [];
  const labels = Array.from(document.querySelectorAll('label[for]'));
  for (const [pattern, value] of fields) {
    const re = new RegExp(pattern);
    const found = labels.filter(l => re.test(l.innerText.trim()));
    const input = found.length === 1 ? document.getElementById(found[0].htmlFor) : null;
    if (!input || input.tagName !== 'INPUT') { missing.push(pattern); continue; }
    input.value = value;
  }
  return missing;
}"""


class MmisPage:
    """What every page of the portal shares: the master page, and the checks after each navigation."""

    def __init__(self, page: Page) -> None:
        self.page = page
        # Master-page footer: the last element of every complete page, so a cut-short page lacks it.
        self.footer = page.locator("#ctl00_Footer")
        self.logged_in_as = page.get_by_text("Logged in as")
        self.maintenance = page.get_by_text(re.compile(r"maintenance", re.I))
        self.error_message = page.locator(".ErrorMessage")
        self.titles: list[str] = []  # h1/h2 texts of the page landed on

    @property
    def path(self) -> str:
        return urlsplit(self.page.url).path

    async def goto(self, url: str, *, in_login: bool = False) -> str:
        resp = await self.page.goto(url, wait_until="domcontentloaded")
        return await self.landed(resp, in_login=in_login)

    async def submit(self, button: Locator, *, in_login: bool = False) -> str:
        """Click a button that posts its form and wait for the page it leads to."""
        async with self.page.expect_navigation(wait_until="domcontentloaded") as nav:
            await button.click()
        return await self.landed(await nav.value, in_login=in_login)

    async def landed(self, resp: PwResponse | None, *, in_login: bool = False) -> str:
        """Where the browser is now, or the error that page means. Returns the path."""
        status = resp.status if resp is not None else 200
        if status == 503 and await self.maintenance.count():
            raise Maintenance("portal maintenance page")
        if status >= 500:
            raise PortalUnavailable(f"portal answered HTTP {status}")
        probe: dict[str, Any] = await self.page.evaluate(_PROBE_JS)
        if not probe["footer"]:
            raise PortalUnavailable("page cut short (no page footer)")
        self.titles = probe["titles"]
        path = self.path
        if "Security Check Required" in self.titles:
            raise ChallengePresented("security check (unusual activity) page shown")
        if path == PASSWORD_CHANGE:
            raise NeedsAttention("password expired: the portal requires a password change")
        if path == REVERIFY:
            raise NeedsAttention("provider profile re-verification required")
        if status == 400 and "Request validation failed" in self.titles:
            raise PortalDrift("portal rejected the form (anti-forgery validation failed)")
        if status == 401:
            raise SessionExpired("portal answered 401")
        if status >= 400:
            raise PortalDrift(f"portal answered HTTP {status}")
        if not in_login and (path == LOGIN or path in INTERSTITIALS):
            raise SessionExpired("redirected to the login page")
        return path


class LoginPage(MmisPage):
    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.user_name = page.get_by_label(re.compile(r"^User Name:?$"))
        self.password = page.get_by_label(re.compile(r"^Password:?$"))
        self.agree_terms = page.get_by_label("I have read and agree to the Terms of Use")
        self.log_in = page.get_by_role("button", name="Log In", exact=True)
        self.accept_terms = page.get_by_role("button", name="I Accept", exact=True)
        self.remind_later = page.get_by_role("button", name="Remind Me Later", exact=True)
        self.notice = page.locator(".InfoMessage")

    async def open(self) -> None:
        await self.goto(LOGIN, in_login=True)

    async def sign_in(self, username: str, password: str) -> str:
        await (await require(self.user_name, "login: user name field")).fill(username)
        await enter(await require(self.password, "login: password field"), password)
        await (await require(self.agree_terms, "login: terms of use checkbox")).check()
        return await self.submit(await require(self.log_in, "login: Log In button"), in_login=True)

    async def login_message(self) -> str:
        """What the login page says: its error (a refusal) and its notice (why a session ended, e.g. one
        that expired while signing in: the portal sends the browser back here with the reason)."""
        texts = await self.error_message.all_inner_texts() + await self.notice.all_inner_texts()
        return " ".join(t.strip() for t in texts)

    async def accept_terms_of_use(self) -> str:
        return await self.submit(await require(self.accept_terms, "terms of use: I Accept"), in_login=True)

    async def remind_me_later(self) -> str:
        return await self.submit(await require(self.remind_later, "password warning: Remind Me Later"),
                                 in_login=True)

    async def is_home(self) -> bool:
        return self.path == HOME and await self.logged_in_as.count() > 0


class InquiryPage(MmisPage):
    # field labels (regex on the label text) of the Claim Inquiry form
    ICN = r"^ICN:?$"
    RECIPIENT_ID = r"^Recipient ID:?$"
    DOS_FROM = r"^Date of Service From:?$"
    DOS_TO = r"^Date of Service To:?$"
    BILLING_NPI = r"^Billing Provider NPI"

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.submit_inquiry = page.locator("input[type=submit][value='Submit Inquiry']")
        self.submitted = page.locator(CID + "lblSubmitted")
        self.validation = page.locator(".ValidationSummary")

    async def open(self) -> None:
        await self.goto(INQUIRY)

    async def by_icn(self, icn: str) -> str:
        return await self._send([(self.ICN, icn)])

    async def by_recipient(self, recipient_id: str, dos_from: date, dos_to: date, npi: str | None) -> str:
        fields = [(self.RECIPIENT_ID, recipient_id), (self.DOS_FROM, f"{dos_from:%m/%d/%Y}"),
                  (self.DOS_TO, f"{dos_to:%m/%d/%Y}")]
        if npi:
            fields.append((self.BILLING_NPI, npi))
        return await self._send(fields)

    async def _send(self, fields: list[tuple[str, str]]) -> str:
        """Fill the form (its own anti-forgery token stays in it), submit it; the portal's reference
        number for its response."""
        if await self.page.evaluate(_FILL_JS, [fields]):
            raise PortalDrift("inquiry: a search field is missing")
        await self.submit(await require(self.submit_inquiry, "inquiry: Submit Inquiry button"))
        if await self.validation.count():
            # the words stay on the page (evidence): a portal may echo the values searched for
            raise PortalDrift("inquiry rejected by the portal's field validation")
        text = await (await require(self.submitted, "inquiry: submitted confirmation")).inner_text()
        m = re.search(r"Inquiry submitted, reference number\s+(\d+)", text)
        if not m:
            raise PortalDrift("inquiry: no reference number in the confirmation")
        return m.group(1)


RESPONSE_LIST_COLUMNS = ("Reference Number", "Submitted", "Search Criteria", "Status", "")


class ResponseListPage(MmisPage):
    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.grid = page.locator(CID + "gvResponses")

    async def refresh(self) -> None:
        await self.goto(RESPONSE_LIST)

    async def response_for(self, ref: str) -> tuple[str, str | None]:
        """(status text, View Response link) of one inquiry."""
        rows = [r for r in await read_grid(self.grid, RESPONSE_LIST_COLUMNS, "response list")
                if r.cells["Reference Number"] == ref]
        if len(rows) != 1:
            raise PortalDrift("response list: the inquiry is not listed")
        return rows[0].cells["Status"], rows[0].href


RESPONSE_COLUMNS = ("ICN", "Recipient ID", "Recipient Name", "Patient Acct #", "From DOS", "To DOS", "Billed",
                    "Status", "Paid")


@dataclass
class ResultPage:
    rows: list[GridRow]
    total: int
    page: int
    pages: int
    next_href: str | None


class ResponsePage(MmisPage):
    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.no_results = page.locator(CID + "lblNoResults")
        self.reference = page.locator(CID + "lblReference")
        self.count = page.locator(CID + "lblCount")
        self.grid = page.locator(CID + "gvClaims")
        self.next_page = page.locator(CID + "pager a", has_text=re.compile(r"^Next >$"))

    async def open(self, href: str) -> None:
        await self.goto(href)

    async def open_ref(self, ref: str) -> bool:
        """Open the response to inquiry `ref` (the Response List's "View Response" link); False while the
        portal says it is not yet available. The page must echo the reference number."""
        await self.goto(f"{RESPONSE}?ref={ref}")
        if "Response not yet available" in self.titles:
            return False
        shown = (await (await require(self.reference, "response: reference number")).inner_text()).strip()
        if shown != ref:
            raise PortalDrift("response: the page shows another inquiry's response")
        return True

    async def not_found_message(self) -> str | None:
        if await self.no_results.count():
            return (await self.no_results.inner_text()).strip()
        return None

    async def results(self) -> ResultPage:
        text = await (await require(self.count, "response: result count")).inner_text()
        m = re.search(r"(\d+) claim\(s\) found\. Page (\d+) of (\d+)", text)
        if not m:
            raise PortalDrift("response: unreadable result count")
        rows = await read_grid(self.grid, RESPONSE_COLUMNS, "response")
        nxt = await self.next_page.get_attribute("href") if await self.next_page.count() == 1 else None
        return ResultPage(rows, int(m.group(1)), int(m.group(2)), int(m.group(3)), nxt)


DETAIL_FIELDS = ("ICN:", "Claim Status:", "Recipient ID:", "Status Date:", "Date Received:",
                 "Patient Account #:", "Billing NPI:", "DOS From:", "DOS To:", "Billed Amount:",
                 "Allowed Amount:", "Paid Amount:", "Patient Liability:", "Payment Method:", "RA Check/EFT #:",
                 "Payment Date:", "Reason:")
LINE_COLUMNS = ("Line", "DOS From", "DOS To", "Procedure", "Modifiers", "Units", "Billed", "Allowed", "Paid",
                "Line Status", "EOB Codes")
CLAIM_EOB_COLUMNS = ("Claim EOB", "Description")


@dataclass
class ClaimDetail:
    """Claim Detail as printed (strings); the recipient's name is deliberately not read."""

    header: dict[str, str]
    lines: list[GridRow]
    claim_eobs: list[str]


class ClaimDetailPage(MmisPage):
    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.header = page.locator(CID + "tblClaimHeader")
        self.lines = page.locator(CID + "gvServiceLines")
        self.claim_eobs = page.locator(CID + "gvClaimEOB")

    async def open(self, href: str) -> None:
        await self.goto(href)

    async def read(self) -> ClaimDetail:
        pairs: dict[str, str] = await (await require(self.header, "claim detail: header table")).evaluate(
            _PAIRS_JS)
        missing = [f for f in DETAIL_FIELDS if f not in pairs]
        if missing:
            raise PortalDrift(f"claim detail: fields missing: {', '.join(missing)}")
        header = {f: pairs[f] for f in DETAIL_FIELDS}
        lines = await read_grid(self.lines, LINE_COLUMNS, "service lines")
        eobs: list[str] = []
        if await self.claim_eobs.count():
            eobs = [r.cells["Claim EOB"] for r in await read_grid(self.claim_eobs, CLAIM_EOB_COLUMNS,
                                                                   "claim EOB codes")]
        return ClaimDetail(header, lines, eobs)


CROSSWALK_COLUMNS = ("EOB Code", "EOB Description", "Group Code", "CARC", "RARC")


class CrosswalkPage(MmisPage):
    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.summary = page.get_by_text(re.compile(r"\d+ codes; page \d+ of \d+"))
        self.grid = page.locator(CID + "gvCrosswalk")
        self.next_page = page.get_by_role("link", name="Next >")

    async def open(self, url: str = CROSSWALK) -> None:
        await self.goto(url)

    async def rows(self) -> tuple[list[GridRow], int, str | None]:
        """(rows of this page, total number of codes, next page link)."""
        text = await (await require(self.summary, "crosswalk: code count")).inner_text()
        m = re.search(r"(\d+) codes; page \d+ of \d+", text)
        if not m:
            raise PortalDrift("crosswalk: unreadable code count")
        rows = await read_grid(self.grid, CROSSWALK_COLUMNS, "EOB crosswalk")
        nxt = await self.next_page.get_attribute("href") if await self.next_page.count() == 1 else None
        return rows, int(m.group(1)), nxt
