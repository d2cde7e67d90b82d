"""Meridian Exchange's remittance viewer: the new tab View remittance opens (after the step-up
verification, once per portal session), its remit row and adjustments read as printed."""

from __future__ import annotations

import re

from playwright.async_api import Page

from core.errors import PortalDrift
from portals.clearinghouse import mapping
from portals.clearinghouse.pages.screens import MFA_PATHS, landed, path_of
from portals.clearinghouse.results import Remit
from portals.dom import read_grid, require

REMITS_COLUMNS = ("Payer", "Claim number", "Patient account", "Check/EFT number", "Payment date", "Billed",
                  "Paid", "Patient responsibility")
REMIT_ADJ_COLUMNS = ("Line", "Procedure", "Group", "CARC", "Amount", "RARC", "Description")
MAX_VIEW_MORE = 200


class RemitViewer:
    """The remittance viewer tab (step-up verification first, once per portal session)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.heading = page.get_by_role("heading", name="Remittance Viewer", exact=True)
        self.no_remit = page.get_by_role("alert").filter(has_text=mapping.NO_REMIT)
        self.remits = page.get_by_role("table").filter(
            has=page.get_by_role("columnheader", name="Check/EFT number", exact=True))
        self.adjustments = page.get_by_role("table").filter(
            has=page.get_by_role("columnheader", name="CARC", exact=True))
        self.view_more = self.adjustments.get_by_role("button", name="View More", exact=True)

    async def landed(self) -> str:
        path = path_of(self.page)
        if path in MFA_PATHS:
            await landed(self.page, None, signing_in=True)
            return path
        return await landed(self.page, None)

    async def read(self) -> Remit | None:
        """The remit row and its adjustments; None when the viewer says it has no remittance."""
        await require(self.heading, "remittance viewer: heading")
        if await self.no_remit.count():
            return None
        remits = [r.cells for r in await read_grid(self.remits, REMITS_COLUMNS, "remittance viewer: remits")]
        if len(remits) != 1:
            raise PortalDrift("remittance viewer: expected one remit for the claim")
        for _ in range(MAX_VIEW_MORE):  # long descriptions are cut at 60 characters behind View More
            if not await self.view_more.count():
                break
            await self.view_more.first.click()
        else:
            raise PortalDrift("remittance viewer: too many truncated descriptions")
        rows = [r.cells for r in await read_grid(self.adjustments, REMIT_ADJ_COLUMNS,
                                                 "remittance viewer: adjustments")]
        for r in rows:
            r["Description"] = re.sub(r"\s*View (Less|More)$", "", r["Description"])
        return Remit(remits[0], rows)
