"""Meridian Exchange's Claim Status tool, inside the shell's iframe: organization and payer pickers, the
claim-number and member searches, the results table, and the claim detail modal read card by card.

Where the markup gives no accessible name (the results area, the status badge, the line accordions'
panels), a named locator says why. Every element a step needs is checked on the loaded document
(portals/dom.py): a missing one is PortalDrift at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Locator, Page
from playwright.async_api import Request as PwRequest
from playwright.async_api import Response as PwResponse

from core.errors import ChallengePresented, Maintenance, PortalDrift, PortalUnavailable, SessionExpired
from portals.clearinghouse import mapping
from portals.clearinghouse.pages.screens import (
    APP,
    CLAIM_STATUS_APP,
    SEARCH,
    NotFound,
    at_the_tool,
    combo_options,
    landed,
    navigate,
    path_of,
    redirect_error,
    redirect_path,
)
from portals.clearinghouse.results import ClaimDetail, LinePanel, ResultRow
from portals.dom import GRID_FN, TEXT_JS, each, grid_rows, one, pairs_js, require
from portals.fields import enter

CARDS = "/apps/claim-status/claims/"
CARD_NAMES = ("summary", "payment", "lines", "codes", "actions")
CARD_COUNT = len(CARD_NAMES)
_CARD_URL = re.compile(r"^(?P<head>[^?#]*/apps/claim-status/claims/[^/?#]+/cards/)(?P<name>[^/?#]+)(?P<tail>[?#].*)?$")


def card_group(url: str) -> list[str]:
    """The detail's card URLs when `url` is one of them: the portal's script asks for the five cards of a
    claim one after another (each answered after its own server delay), so the session reads them ahead,
    all at once (agent/browser.py, read-ahead); () for any other URL."""
    m = _CARD_URL.match(url)
    if m is None or m["name"] not in CARD_NAMES:
        return []
    return [f"{m['head']}{name}{m['tail'] or ''}" for name in CARD_NAMES]


RESULT_COLUMNS = ("Claim Number", "Patient Account", "Patient", "Service Dates", "Billed", "Status",
                  "Finalized Date")
ADJ_COLUMNS = ("Group", "Reason code", "Amount")
CODE_COLUMNS = ("Type", "Code", "Description")

# Accordions: a toggle button and, right after it, its panel. The panel is taken as the button's next
# sibling, not by the aria-controls id: generated ids can collide, and then getElementById (the portal's
# own toggle script too) finds another element. [label, aria-expanded, toggle finds its own panel].
_TOGGLE_STATE_JS = """(btn) => [btn.innerText.trim(), btn.getAttribute('aria-expanded'),
  document.getElementById(btn.getAttribute('aria-controls')) === btn.nextElementSibling]"""

# A line accordion's panel: the row-header table as fields, the column-header table (adjustments) as a
# grid, and the "Remark codes:" line. null when the toggle has no panel after it.
_LINE_PANEL_JS = "(btn) => {\n  const grid = " + GRID_FN + """;
  const panel = btn.nextElementSibling;
  if (!panel) return null;
  const out = {fields: {}, grids: [], remarks: null};
  for (const t of panel.querySelectorAll('table')) {
    if (t.tHead) {
      out.grids.push(grid(t));
    } else {
      for (const r of t.rows) {
        const th = r.querySelector('th'), td = r.querySelector('td');
        if (th && td) out.fields[th.innerText.trim()] = td.innerText.trim();
      }
    }
  }
  for (const p of panel.querySelectorAll('p')) {
    const m = p.innerText.trim().match(/^Remark codes:\\s*(.*)$/);
    if (m) out.remarks = m[1].trim();
  }
  return out;
}"""

# The summary and payment cards: label/value lists.
_PAIRS_JS = pairs_js("dt", "dd")


# The detail modal's cards as they are now (a modal hidden on Close comes back showing the previous
# claim's cards until each new card replaces its content): nodes that must be gone before reading.
_CARD_NODES_JS = """() => Array.from(document.querySelectorAll('[role=dialog] section')).map(s => s.firstChild)
  .filter(n => n !== null)"""

# Every card of the shown detail modal holds content that arrived after the click (none of `before`)
# and no loader.
_CARDS_FRESH_JS = """([count, before]) => {
  const d = Array.from(document.querySelectorAll('[role=dialog]')).find(
    e => e.getAttribute('aria-label') === 'Claim detail' && !e.closest('[hidden]'));
  if (!d) return false;
  const cards = Array.from(d.querySelectorAll('section'));
  return cards.length === count && cards.every(
    c => c.firstChild !== null && !before.includes(c.firstChild) && !c.querySelector('[role=progressbar]'));
}"""

# The results area shows the answer to the search just sent (not what it showed before), or the
# error dialog is up.
_RESULTS_FRESH_JS = """([results, before]) => (results.firstElementChild !== null
  && results.firstElementChild !== before) || document.querySelector('[role=alertdialog]') !== null"""


class ClaimStatusApp:
    """Claim status inquiry inside the frame: pickers, search forms, results, detail modal."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.page = frame.page
        self.heading = frame.get_by_role("heading", name="Claim status inquiry", exact=True)
        self.org = frame.get_by_role("combobox", name="Organization", exact=True)
        self.orgs = frame.get_by_role("listbox", name="Organization", exact=True, include_hidden=True)
        self.payer = frame.get_by_role("combobox", name="Payer", exact=True)
        self.payers = frame.get_by_role("listbox", name="Payer", exact=True, include_hidden=True)
        self.member_tab = frame.get_by_role("tab", name=re.compile(r"^(Member|Subscriber) search$"))
        self.claim_tab = frame.get_by_role("tab", name="Claim number search", exact=True)
        self.member_id = frame.get_by_label(re.compile(r"^(Member|Subscriber) ID\b"))
        self.patient_is_subscriber = frame.get_by_label("Patient is subscriber", exact=True)
        self.subscriber_dob = frame.get_by_label(re.compile(r"^Subscriber date of birth\b"))
        self.dos_from = frame.get_by_label(re.compile(r"^Service from date\b"))
        self.dos_to = frame.get_by_label(re.compile(r"^Service to date\b"))
        self.npi = frame.get_by_label(re.compile(r"^(Billing provider|Provider) NPI\b"))
        self.claim_number = frame.get_by_label(re.compile(r"^Payer claim number\b"))
        self.submit = frame.get_by_role("button", name="Submit", exact=True)  # the shown tab's form
        self.error_dialog = frame.get_by_role("alertdialog", name="Error")
        self.error_ok = self.error_dialog.get_by_role("button", name="OK", exact=True)
        # The results area is an aria-live section without a name: found by its fixed id.
        self.results = frame.locator("#results")
        self.result_table = self.results.get_by_role("table")
        self.result_count = self.results.get_by_text(re.compile(r"^\d+ claims? found$"))
        self.outcome = (self.result_table.or_(self.results.get_by_role("alert"))
                        .or_(self.results.get_by_role("heading")).or_(self.error_dialog))
        self.detail = frame.get_by_role("dialog", name="Claim detail")

    async def is_shown(self) -> bool:
        return path_of(self.frame) == CLAIM_STATUS_APP and await self.heading.count() == 1

    async def load(self, org_id: str, payer_id: str) -> None:
        """Load the tool in its frame for an organization and payer (what choosing them in the pickers
        does: one request)."""
        url = urljoin(self.frame.url, f"{CLAIM_STATUS_APP}?{urlencode({'orgId': org_id, 'payerId': payer_id})}")
        resp = await self.frame.goto(url, wait_until="domcontentloaded")
        at_the_tool(await landed(self.frame, resp), "claim status: the tool did not load")

    # -- pickers
    async def org_options(self) -> dict[str, str]:
        return {v: label for v, label, _ in await combo_options(self.orgs, "claim status: organization list")}

    async def payer_options(self) -> dict[str, str]:
        return {v: label for v, label, _ in await combo_options(self.payers, "claim status: payer list")}

    async def org_shown(self) -> str:
        return await (await require(self.org, "claim status: Organization picker")).input_value()

    async def payer_shown(self) -> str:
        return await (await require(self.payer, "claim status: Payer picker")).input_value()

    async def choose_org(self, name: str) -> None:
        await self._choose_and_reload(self.org, self.orgs, name, "claim status: Organization picker")

    async def choose_payer(self, name: str) -> None:
        await self._choose_and_reload(self.payer, self.payers, name, "claim status: Payer picker")

    async def _choose_and_reload(self, combo: Locator, listbox: Locator, label: str, what: str) -> None:
        """Choosing an organization or a payer reloads the tool in the frame."""
        await (await require(combo, what)).fill(label)
        option = listbox.get_by_role("option", name=label, exact=True)
        await option.wait_for()
        if await navigate(self.frame, option.click) != CLAIM_STATUS_APP:
            raise PortalDrift(f"{what}: the tool did not reload")

    # -- searches
    async def search_by_claim_number(self, number: str) -> list[ResultRow]:
        await (await require(self.claim_tab, "claim status: Claim number search tab")).click()
        await (await require(self.claim_number, "claim status: Payer claim number field")).fill(number)
        return await self._submit()

    async def search_by_member(self, member_id: str, dos_from: str, dos_to: str, npi: str,
                               subscriber_dob: str | None) -> list[ResultRow]:
        """The member form of the chosen payer: "standard" (Member ID) or "alt" (Subscriber ID with a
        patient-is-subscriber box and a required date of birth)."""
        await (await require(self.member_tab, "claim status: member search tab")).click()
        await enter(await require(self.member_id, "claim status: member/subscriber ID field"), member_id)
        if await self.patient_is_subscriber.count():
            if subscriber_dob is None:
                raise PortalDrift("claim status: this payer's form needs a date of birth")
            await self.patient_is_subscriber.check()
            await enter(await require(self.subscriber_dob, "claim status: Subscriber date of birth"), subscriber_dob)
        await enter(await require(self.dos_from, "claim status: Service from date"), dos_from)
        await enter(await require(self.dos_to, "claim status: Service to date"), dos_to)
        await (await require(self.npi, "claim status: provider NPI field")).fill(npi)
        return await self._submit()

    async def form_ready(self) -> bool:
        """Both search tabs and every field this adapter fills are on the page, found by their labels
        (a label whose generated id collides with another element's finds nothing)."""
        fields = [self.member_tab, self.claim_tab, self.member_id, self.dos_from, self.dos_to, self.npi,
                  self.claim_number]
        if await self.patient_is_subscriber.count():
            fields.append(self.subscriber_dob)
        return all([await f.count() == 1 for f in fields])

    async def needs_subscriber_dob(self) -> bool:
        return await self.patient_is_subscriber.count() > 0

    async def _submit(self) -> list[ResultRow]:
        button, area = await asyncio.gather(require(self.submit, "claim status: Submit"),
                                            require(self.results, "claim status: results area"))
        results = await area.element_handle()
        before = await results.evaluate_handle("r => r.firstElementChild")
        async with self.page.expect_request(
                lambda r: r.method == "POST" and urlsplit(r.url).path == SEARCH) as info:
            await button.click()
        resp = await (await info.value).response()  # None when the request failed (connection lost)
        if resp is None:
            raise PortalUnavailable("claim search: the request failed")
        if resp.status == 401:
            raise SessionExpired("claim search: the portal ended the session")
        if resp.status == 429:
            raise ChallengePresented("claim search: the portal shows its unusual-activity challenge")
        moved = redirect_error("claim search", redirect_path(resp))
        if moved:
            raise moved
        # the app may keep the previous search's results on screen until this answer is rendered
        await self.frame.wait_for_function(_RESULTS_FRESH_JS, arg=[results, before])
        await self.outcome.first.wait_for()
        # everything the answer may show, read at once; judged below in the order the portal means it
        dialogs, maintenance, alerts, counts, grids = await asyncio.gather(
            self.error_dialog.count(),
            self.results.get_by_role("heading", name="System maintenance").count(),
            each(self.results.get_by_role("alert"), TEXT_JS),
            each(self.result_count, TEXT_JS),
            each(self.result_table, GRID_FN))
        if dialogs:
            # the error dialog sits over a still-visible loading overlay: read it, then OK (closes both)
            messages = await self.error_dialog.get_by_role("listitem").all_inner_texts()
            await self.error_ok.click()
            raise mapping.search_error([m.strip() for m in messages])
        if maintenance:
            raise Maintenance("claim search: the portal shows its maintenance page")
        alerts = [a for a in alerts if not mapping.is_informational(a)]
        for a in alerts:
            why = mapping.not_found_reason(a)
            if why:
                raise NotFound(why)
        if alerts:  # inline errors (when the portal does not use its error dialog)
            raise mapping.search_error(alerts)
        if resp.status >= 500:
            raise PortalUnavailable(f"claim search: the portal answered HTTP {resp.status}")
        if resp.status != 200:
            raise PortalDrift(f"claim search: the portal answered HTTP {resp.status}")
        if len(counts) != 1:
            raise PortalDrift("claim status: result count not found on the page")
        if len(grids) != 1:
            raise PortalDrift("claim status: results table not found on the page")
        rows = [r.cells for r in grid_rows(grids[0], RESULT_COLUMNS, "claim status: results table")]
        if len(rows) != int(counts[0].split()[0]):
            raise PortalUnavailable("claim search: fewer rows than the count shown (page cut short)")
        return [ResultRow(i, r) for i, r in enumerate(rows)]

    # -- detail
    async def close_detail(self) -> None:
        """Close a detail left open (after a failed read)."""
        if await self.detail.count():
            await DetailModal(self.frame, self.detail).close()

    async def open_detail(self, row: ResultRow) -> DetailModal:
        """Open a result's detail modal and wait for its cards (each its own request behind a loader)."""
        if await self.detail.count():
            raise PortalDrift("claim status: a claim detail is already open")
        link = self.result_table.locator("tbody").get_by_role("row").nth(row.index).get_by_role("link")
        await require(link, "claim status: result link")
        # a detail hidden on Close may come back showing the previous claim until each card is replaced:
        # wait for this claim's cards (their requests done) and for every card's old content to be gone
        before = await self.frame.evaluate_handle(_CARD_NODES_JS)
        statuses: list[int] = []
        moved_to: list[str] = []  # where redirected card requests were sent
        finished: list[str] = []
        all_done = asyncio.Event()
        failed = asyncio.Event()  # a card request died: its loader would spin forever

        def is_card(url: str) -> bool:
            return CARDS in url and "/cards/" in url

        def on_response(r: PwResponse) -> None:
            if is_card(r.url):
                statuses.append(r.status)
                if where := redirect_path(r):
                    moved_to.append(where)

        def on_finished(r: PwRequest) -> None:
            if is_card(r.url):
                finished.append(r.url)
                if len(finished) >= CARD_COUNT:
                    all_done.set()

        def on_failed(r: PwRequest) -> None:
            if is_card(r.url):
                failed.set()

        self.page.on("response", on_response)
        self.page.on("requestfinished", on_finished)
        self.page.on("requestfailed", on_failed)
        try:
            await link.click()
            modal = DetailModal(self.frame, self.detail)
            try:
                await self.detail.wait_for()
                await _until(_bounded(all_done.wait(), CARD_WAIT_S), failed, "claim detail: a card request failed")
                _card_errors(statuses, moved_to)
                await self.frame.wait_for_function(_CARDS_FRESH_JS, arg=[CARD_COUNT, before])
            except PlaywrightError:
                _card_errors(statuses, moved_to)
                raise
        finally:
            self.page.remove_listener("response", on_response)
            self.page.remove_listener("requestfinished", on_finished)
            self.page.remove_listener("requestfailed", on_failed)
        _card_errors(statuses, moved_to)
        if len(statuses) != CARD_COUNT or path_of(self.page) != APP:
            raise PortalUnavailable("claim detail: not every card loaded")
        return modal


CARD_WAIT_S = 20.0


async def _bounded(wait: Awaitable[Any], seconds: float) -> None:
    try:
        await asyncio.wait_for(wait, seconds)
    except TimeoutError:
        raise PortalUnavailable("claim detail: the cards did not arrive in time") from None


async def _until(wait: Awaitable[None], failed: asyncio.Event, why: str) -> None:
    """Await `wait`, unless `failed` is set first (then PortalUnavailable at once, not at the timeout)."""
    done_task = asyncio.ensure_future(wait)
    failed_task = asyncio.ensure_future(failed.wait())
    try:
        await asyncio.wait({done_task, failed_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (done_task, failed_task):
            if not t.done():
                t.cancel()
    if done_task.done() and not done_task.cancelled():
        done_task.result()  # re-raises a timeout
        return
    raise PortalUnavailable(why)


def _card_errors(statuses: list[int], moved_to: list[str]) -> None:
    for where in moved_to:
        moved = redirect_error("claim detail", where)
        if moved:
            raise moved
    if 401 in statuses:
        raise SessionExpired("claim detail: the portal ended the session")
    if 429 in statuses:
        raise ChallengePresented("claim detail: the portal shows its unusual-activity challenge")
    if 503 in statuses:
        raise PortalUnavailable("claim detail: a card answered HTTP 503 (maintenance or outage)")
    if any(s >= 500 for s in statuses):
        raise PortalUnavailable("claim detail: a card answered with a server error")
    if 404 in statuses:  # "This claim is no longer available. Search again." (results reset, e.g. a re-login)
        raise PortalUnavailable("claim detail: the portal no longer holds the search result; search again")
    if any(s != 200 for s in statuses):
        raise PortalDrift("claim detail: a card was refused")


def _line_panel(title: str, data: dict | None) -> LinePanel:
    if data is None:
        raise PortalDrift("claim detail: a service line did not open")
    grids = data["grids"]
    adjustments = None
    if grids:
        if len(grids) != 1:
            raise PortalDrift("claim detail: adjustment table changed")
        adjustments = [r.cells for r in grid_rows(grids[0], ADJ_COLUMNS, "claim detail: adjustments")]
    return LinePanel(title=title, fields=data["fields"], adjustments=adjustments, remarks=data["remarks"])


class DetailModal:
    """The claim detail: cards found by their headings; closed accordions opened before reading."""

    def __init__(self, frame: Frame, dialog: Locator) -> None:
        self.frame = frame
        self.dialog = dialog
        self.loaders = dialog.get_by_role("progressbar", name="Loading")
        self.summary = self._card("Claim information")
        self.payment = self._card("Payment")
        self.lines = self._card("Service lines")
        self.codes = self._card("Reason/Remark Codes")
        # The badge has no accessible name; the portal marks it as its status-label field.
        self.badge = self.summary.locator("[data-field=status_label]")
        self.rejection = self.summary.get_by_role("alert")
        self.no_payment = self.payment.get_by_text("No payment information is available for this claim.")
        self.line_toggles = self.lines.get_by_role("button", name=re.compile(r"^Line \d+:"))
        self.remit_link = self.lines.get_by_role("link", name="View remittance", exact=True)
        self.code_toggle = self.codes.get_by_role("button", name="Code descriptions", exact=True)
        self.codes_table = self.codes.get_by_role("table", include_hidden=True)
        self.no_codes_here = self.codes.get_by_text("This payer does not return reason codes with claim status.")
        self.close_button = dialog.get_by_role("button", name="Close", exact=True)

    def _card(self, heading: str) -> Locator:
        return self.dialog.locator("section").filter(
            has=self.frame.get_by_role("heading", name=heading, exact=True))

    async def read(self) -> ClaimDetail:
        """Read every card in three round trips: what is shown (and which accordions are closed), open the
        closed ones (line panels, code descriptions), read what they show."""
        (badge, rejections, summary, payment, _, _, no_codes, code_toggles, states, no_payment,
         remit_links) = await asyncio.gather(
            one(self.badge, TEXT_JS, "claim detail: status badge"),
            each(self.rejection, TEXT_JS),
            one(self.summary, _PAIRS_JS, "claim detail: summary card"),
            one(self.payment, _PAIRS_JS, "claim detail: payment card"),
            one(self.lines, "() => 1", "claim detail: service lines card"),
            one(self.codes, "() => 1", "claim detail: reason/remark codes card"),
            self.no_codes_here.count(),
            each(self.code_toggle, _TOGGLE_STATE_JS),
            each(self.line_toggles, _TOGGLE_STATE_JS),
            self.no_payment.count(),
            self.remit_link.count())
        rejection = None
        if len(rejections) > 1:
            raise PortalDrift("claim detail: more than one alert on the summary card")
        if rejections:
            prefix = "Rejected by the payer:"
            if not rejections[0].startswith(prefix):
                raise PortalDrift("claim detail: unknown alert on the summary card")
            rejection = rejections[0][len(prefix):].strip()
        if not no_codes and len(code_toggles) != 1:
            raise PortalDrift("claim detail: Code descriptions not found on the page")
        # open what is closed; never a toggle that would hide something else (its panel is not its own).
        # A dispatched click: the cards' own click handler, without waiting for layout between toggles.
        closed = [self.line_toggles.nth(i) for i, (_, expanded, own) in enumerate(states)
                  if expanded != "true" and own]
        if not no_codes and code_toggles[0][1] != "true" and code_toggles[0][2]:
            closed.append(self.code_toggle)
        await asyncio.gather(*(t.dispatch_event("click") for t in closed))
        panels, code_grids, no_code_rows = await asyncio.gather(
            each(self.line_toggles, _LINE_PANEL_JS),
            each(self.codes_table, GRID_FN),
            self.codes.get_by_text("No reason or remark codes on this claim.").count())
        if len(panels) != len(states):
            raise PortalDrift("claim detail: service lines changed while reading")
        lines = [_line_panel(title, data) for (title, _, _), data in zip(states, panels, strict=True)]
        codes: list[dict[str, str]] | None = None
        if not no_codes:
            if len(code_grids) > 1:
                raise PortalDrift("claim detail: code descriptions not found on the page")
            if code_grids:
                codes = [r.cells for r in grid_rows(code_grids[0], CODE_COLUMNS, "claim detail: code descriptions")]
            elif no_code_rows:
                codes = []
            else:
                raise PortalDrift("claim detail: code descriptions not shown")
        return ClaimDetail(badge=badge, rejection=rejection, summary=summary, payment=payment,
                           no_payment=no_payment > 0, lines=lines, codes=codes, remit_link=remit_links > 0)

    async def open_remittance(self) -> Page:
        """View remittance opens the remittance viewer in a new tab."""
        link = await require(self.remit_link, "claim detail: View remittance")
        async with self.frame.page.expect_popup() as info:  # this tab's popup, not another lookup's
            await link.click()
        tab = await info.value
        await tab.wait_for_load_state("domcontentloaded")
        return tab

    async def close(self) -> None:
        if await self.close_button.count():
            await self.close_button.click()
            await self.dialog.wait_for(state="hidden")  # removed, or hidden for reuse
