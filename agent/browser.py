"""The only place that launches Chromium. Contexts are guarded: read-only by construction.

Every context the agent creates routes all requests through one handler that
- aborts any non-GET request the adapter did not declare in `allowed_writes` (login/MFA/search) and
  records it as a blocked action (method + path only: queries can hold PHI);
- aborts images, fonts and media (nothing an adapter reads) and requests to other hosts.
Note (Playwright): routing disables the HTTP cache; long-lived contexts accumulate request data, so the
runner recycles a context every N claims.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, Page, Playwright, Route, async_playwright

from core.config import BrowserSettings
from portals.base import RequestPattern

BLOCKED_RESOURCES = frozenset({"image", "font", "media"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Capture:
    """A page as it was: HTML and screenshot, with their SHA-256 (PHI: store encrypted, never log)."""

    url_path: str
    html: str
    png: bytes
    taken_at: datetime
    reason: str

    @property
    def html_sha256(self) -> str:
        return hashlib.sha256(self.html.encode()).hexdigest()

    @property
    def png_sha256(self) -> str:
        return hashlib.sha256(self.png).hexdigest()


@dataclass
class BrowserSession:
    """What the runner hands an adapter: a guarded, logged-in context on one portal account."""

    context: BrowserContext
    base_url: str
    blocked: list[dict] = field(default_factory=list)
    requests: int = 0
    _main: Page | None = None
    state: dict[str, Any] = field(default_factory=dict)  # adapter's per-session cache (e.g. crosswalk)

    async def page(self) -> Page:
        """The session's main page (created on first use)."""
        if self._main is None or self._main.is_closed():
            self._main = await self.context.new_page()
        return self._main

    async def new_page(self) -> Page:
        return await self.context.new_page()

    async def capture(self, page: Page | None = None, reason: str = "") -> Capture | None:
        """Snapshot a page for evidence; None if there is no live page to capture."""
        page = page or self._main
        if page is None or page.is_closed():
            pages = [p for p in self.context.pages if not p.is_closed()]
            if not pages:
                return None
            page = pages[-1]
        try:
            html = await page.content()
            png = await page.screenshot(full_page=True, timeout=10_000)
        except Exception:  # noqa: BLE001 - a dying page must not hide the original failure
            return None
        return Capture(urlsplit(page.url).path, html, png, datetime.now(UTC), reason)

    async def storage_state(self) -> dict:
        return await self.context.storage_state()

    async def close(self) -> None:
        await self.context.close()


class BrowserPool:
    """One Chromium per process; contexts per portal account."""

    def __init__(self, settings: BrowserSettings) -> None:
        self.settings = settings
        self._pw: Playwright | None = None
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()

    async def browser(self) -> Browser:
        async with self._lock:
            if self._browser is None or not self._browser.is_connected():
                if self._pw is None:
                    self._pw = await async_playwright().start()
                kwargs: dict[str, Any] = {"headless": self.settings.headless, "args": self.settings.args}
                if self.settings.executable_path:
                    kwargs["executable_path"] = self.settings.executable_path
                self._browser = await self._pw.chromium.launch(**kwargs)
            return self._browser

    async def new_session(self, base_url: str, allowed_writes: Sequence[RequestPattern],
                          storage_state: dict | None = None, block_resources: bool = True,
                          timeout_ms: int = 20_000) -> BrowserSession:
        browser = await self.browser()
        ctx = await browser.new_context(storage_state=storage_state, base_url=base_url,
                                        viewport={"width": 1280, "height": 900}, locale="en-US",
                                        timezone_id="America/New_York")
        ctx.set_default_timeout(timeout_ms)
        session = BrowserSession(ctx, base_url)
        host = urlsplit(base_url).netloc

        async def guard(route: Route) -> None:
            req = route.request
            parts = urlsplit(req.url)
            if parts.scheme in ("http", "https") and parts.netloc != host:
                await route.abort("blockedbyclient")
                return
            if block_resources and req.resource_type in BLOCKED_RESOURCES:
                await route.abort("blockedbyclient")
                return
            method = req.method.upper()
            if method not in READ_METHODS and not any(p.matches(method, req.url) for p in allowed_writes):
                session.blocked.append({"method": method, "path": parts.path,
                                        "at": datetime.now(UTC).isoformat()})
                await route.abort("blockedbyclient")
                return
            session.requests += 1
            await route.continue_()

        await ctx.route("**/*", guard)
        return session

    async def close(self) -> None:
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        if self._pw is not None:
            await self._pw.stop()
            self._pw = None
