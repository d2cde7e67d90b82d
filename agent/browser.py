"""The only place that launches Chromium. Contexts are guarded: read-only by construction.

Every context the agent creates routes all requests through one handler that
- aborts any non-GET request the adapter did not declare in `allowed_writes` (login/MFA/search) and
  records it as a blocked action (method + path only: queries can hold PHI);
- aborts images, fonts and media (nothing an adapter reads) and requests to other hosts.
- holds every request the portal counts toward its rate limit (the adapter's `counted_requests`) until
  the account's token bucket (agent/pacing.py) has room; the page a redirect leads to (which the browser
  follows without the route) is debited from the bucket when it is sent;
- reads ahead where the adapter says a page's script will ask for sibling resources one after another
  (`read_ahead(url)`: e.g. a detail whose cards the portal's script fetches in turn): at the first of
  them, all are fetched at once through the context's own request client (same cookies and headers, each
  paced and counted), and the page's requests are answered from those responses, unchanged (status,
  headers, body). The portal sees the same requests; the page renders what the portal sent.
Several lookups can be in flight on one session: each runs on a page leased for it (`lease()`); inside a
lease, `page()` is that page, `page_state()` its adapter state, `show_evidence(page)` names the page a
status was read from (e.g. a tab the adapter opened), and blocked requests are attributed to it.
Note (Playwright): routing disables the HTTP cache.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import structlog
from playwright.async_api import (
    APIResponse,
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from agent.pacing import TokenBucket
from core.config import BrowserSettings
from portals.base import RequestPattern

log = structlog.get_logger("portal_agent.browser")
BLOCKED_RESOURCES = frozenset({"image", "font", "media"})
_ID_SEGMENT = re.compile(r"^(?:.*\d){4}|^(?=[^.]*\d)[^.]{10,}$|^[^.]{24,}$")


def redact_path(path: str) -> str:
    """A URL path fit for logs and failure messages: segments that may identify a claim or member (four
    digits or more, or long tokens without a file extension: claim numbers, keys, base64) become {id}."""
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ReadAhead = Callable[[str], Sequence[str]]  # a GET's URL -> every URL of its group (itself included), or ()


@dataclass
class Lease:
    """One lookup's page on a session; the runner holds it until it has captured what it needs."""

    page: Page
    state: dict[str, Any]
    evidence_page: Page | None = None
    extra_pages: list[Page] = field(default_factory=list)
    blocked: list[dict] = field(default_factory=list)
    urgent: bool = False  # an on-demand check someone waits for: its requests go first in the pacer


def _dispose(read: asyncio.Future) -> None:
    """Free the body of a response read ahead that no page asked for."""
    if not read.cancelled() and read.exception() is None:
        asyncio.ensure_future(read.result().dispose()).add_done_callback(
            lambda f: f.cancelled() or f.exception())


@dataclass(frozen=True)
class _Get:
    """A GET the session sends itself (read ahead), as the pacing rules see a request."""

    url: str
    method: str = "GET"


_LEASE: ContextVar[Lease | None] = ContextVar("portal_agent_lease", default=None)


@dataclass
class Capture:
    """A page as it was: HTML (with the HTML of its frames) and a full-page screenshot, with their SHA-256
    (PHI: store encrypted, never log). The screenshot is a JPEG: a PNG of a full page costs the browser
    about three times the CPU (measured in bench.sweep) for no detail a reader of an appeal needs."""

    url_path: str
    html: str
    screenshot: bytes
    taken_at: datetime
    reason: str
    frames: list[dict] = field(default_factory=list)  # [{"url_path", "html"}] of child frames (iframes)
    screenshot_type: str = "jpeg"

    @property
    def html_sha256(self) -> str:
        h = hashlib.sha256(self.html.encode())
        for f in self.frames:  # the frames' HTML is part of what was read
            h.update(b"\x00" + f["html"].encode())
        return h.hexdigest()

    @property
    def screenshot_sha256(self) -> str:
        return hashlib.sha256(self.screenshot).hexdigest()


@dataclass
class BrowserSession:
    """What the runner hands an adapter: a guarded, logged-in context on one portal account."""

    context: BrowserContext
    base_url: str
    blocked: list[dict] = field(default_factory=list)
    requests: int = 0
    counted: int = 0  # requests the portal counts toward its rate limit (paced)
    read_ahead_served: int = 0  # page requests answered from a response read ahead (no request of their own)
    timeout_ms: int = 20_000
    _main: Page | None = None
    state: dict[str, Any] = field(default_factory=dict)  # adapter's per-session cache (e.g. crosswalk)
    pacer: TokenBucket | None = None
    recycle_after: int = 0  # lookups a leased page serves before it is replaced (0 = never)
    _idle: list[Page] = field(default_factory=list)
    _page_state: dict[int, dict[str, Any]] = field(default_factory=dict)
    _leases: dict[int, Lease] = field(default_factory=dict)  # id(page) -> lease, for blocked attribution
    _ahead: dict[Page, dict[str, asyncio.Future]] = field(default_factory=dict)  # per page: URL -> its read

    async def page(self) -> Page:
        """The current lease's page; outside a lease, the session's main page (created on first use)."""
        lease = _LEASE.get()
        if lease is not None and not lease.page.is_closed():
            return lease.page
        if self._main is None or self._main.is_closed():
            self._main = await self.context.new_page()
        return self._main

    def page_state(self, page: Page | None = None) -> dict[str, Any]:
        """Adapter state that belongs to one page (its app instance, its feed...)."""
        if page is None:
            lease = _LEASE.get()
            page = lease.page if lease is not None else self._main
        return self._page_state.setdefault(id(page), {})

    async def new_page(self) -> Page:
        """An extra tab (closed when the current lease ends, if the adapter has not closed it)."""
        page = await self.context.new_page()
        lease = _LEASE.get()
        if lease is not None:
            lease.extra_pages.append(page)
            self._leases[id(page)] = lease
        return page

    def show_evidence(self, page: Page) -> None:
        """Name the page the current lookup read its result from (default: the lease's page)."""
        lease = _LEASE.get()
        if lease is not None:
            lease.evidence_page = page

    @asynccontextmanager
    async def lease(self, affinity: Hashable | None = None, urgent: bool = False) -> AsyncIterator[Lease]:
        """A page of its own for one lookup: reused across lookups, never shared by two at once. With an
        `affinity` (what the page is set up for, e.g. the organization and payer a portal's search tool
        is loaded for), an idle page last used for the same affinity is preferred: it needs no reload."""
        self._idle = [p for p in self._idle if not p.is_closed()]
        page = None
        if affinity is not None:
            page = next((p for p in reversed(self._idle)
                         if self._page_state.get(id(p), {}).get("_affinity") == affinity), None)
            if page is not None:
                self._idle.remove(page)
        if page is None and self._idle:
            page = self._idle.pop()
        if page is None:  # never the main page: login and verify use it while lookups run
            page = await self.context.new_page()
        lease = Lease(page, self.page_state(page), urgent=urgent)
        self._leases[id(page)] = lease

        def popup(tab: Page) -> None:  # a tab the page opened (target=_blank): the lease's, closed with it
            lease.extra_pages.append(tab)
            self._leases[id(tab)] = lease

        page.on("popup", popup)
        token = _LEASE.set(lease)
        priority = self.pacer.urgent_lookup() if urgent and self.pacer is not None else contextlib.nullcontext()
        try:
            with priority:
                yield lease
        finally:
            _LEASE.reset(token)
            page.remove_listener("popup", popup)
            for extra in lease.extra_pages:
                self._leases.pop(id(extra), None)
                if not extra.is_closed():
                    try:
                        await extra.close()
                    except Exception:  # noqa: BLE001 - closing a tab must not hide a result or failure
                        pass
            self._leases.pop(id(page), None)
            uses = lease.state["_uses"] = lease.state.get("_uses", 0) + 1
            lease.state["_affinity"] = affinity
            if not page.is_closed() and self.recycle_after and uses >= self.recycle_after:
                try:  # long-lived pages accumulate memory (SPAs, request data): start a fresh one
                    await page.close()
                except Exception:  # noqa: BLE001
                    pass
            if not page.is_closed():
                self._idle.append(page)
            else:
                self._page_state.pop(id(page), None)

    def _lease_of(self, req) -> Lease | None:
        """The lease whose page (or a tab it opened) sent a request; None outside a lookup."""
        try:
            return self._leases.get(id(req.frame.page))
        except Exception:  # noqa: BLE001 - service worker or detached frame: no page to blame
            return None

    async def _sent(self, req, counted: bool, lease: Lease | None = None) -> None:
        """Count a request about to go to the portal; hold it until the account's pacer has room."""
        self.requests += 1
        if counted and self.pacer is not None:
            self.counted += 1
            lease = lease or self._lease_of(req)
            await self.pacer.acquire(urgent=lease is not None and lease.urgent)

    async def _serve_ahead(self, route: Route, rule: ReadAhead, is_counted: Callable[[Any], bool]) -> bool:
        """Answer a page's GET from a response read ahead for it, or, at the first request of a group the
        adapter's rule names, read every URL of the group at once and answer this one. False: not a
        group's request (the guard sends it as usual)."""
        req = route.request
        try:
            page = req.frame.page
        except Exception:  # noqa: BLE001 - service worker or detached frame
            return False
        ahead = self._ahead.get(page)
        if ahead is None:
            ahead = self._ahead[page] = {}
            page.once("close", lambda _: self._ahead.pop(page, None))
        pending = ahead.pop(req.url, None)
        if pending is None:
            host = urlsplit(req.url).netloc  # never a read of another host's resource
            group = [u for u in rule(req.url) if urlsplit(u).netloc == host]
            if req.url not in group:
                return False
            for left in ahead.values():  # what an earlier group left unasked belongs to a page state that is gone
                left.add_done_callback(_dispose)
            ahead.clear()
            lease = self._lease_of(req)
            headers = dict(req.headers)  # the page's own (the context adds its cookies)
            for url in group:
                if url != req.url:
                    ahead[url] = asyncio.ensure_future(self._read(url, headers, is_counted, lease))
            pending = asyncio.ensure_future(self._read(req.url, headers, is_counted, lease))
        else:
            self.read_ahead_served += 1
        try:
            resp: APIResponse = await pending
        except Exception:  # noqa: BLE001 - the read failed: the page's request fails as it would have
            with contextlib.suppress(Exception):
                await route.abort("failed")
            return True
        try:
            await route.fulfill(response=resp)
        except Exception:  # noqa: BLE001 - the page went away meanwhile
            pass
        finally:  # the driver keeps a response's body until the context closes unless disposed
            with contextlib.suppress(Exception):
                await resp.dispose()
        return True

    async def _read(self, url: str, headers: dict[str, str], is_counted: Callable[[Any], bool],
                    lease: Lease | None) -> APIResponse:
        """One GET through the context's request client (its cookies), paced and counted like the page's
        own; redirects are not followed (the page gets the redirect itself and follows it)."""
        get = _Get(url)
        await self._sent(get, is_counted(get), lease)
        return await self.context.request.get(url, headers=headers, max_redirects=0, timeout=self.timeout_ms)

    def _blocked(self, req, entry: dict) -> None:
        self.blocked.append(entry)
        lease = self._lease_of(req)
        if lease is not None:
            lease.blocked.append(entry)

    async def capture(self, page: Page | None = None, reason: str = "") -> Capture | None:
        """Snapshot a page (and its frames) for evidence; None if there is no live page to capture."""
        if page is None:
            lease = _LEASE.get()
            if lease is not None:
                page = lease.evidence_page or lease.page
        page = page or self._main
        if page is None or page.is_closed():
            pages = [p for p in self.context.pages if not p.is_closed()]
            if not pages:
                return None
            page = pages[-1]
        async def frame_html(frame) -> dict | None:
            try:
                return {"url_path": urlsplit(frame.url).path, "html": await frame.content()}
            except Exception:  # noqa: BLE001 - a frame detached while reading
                return None

        try:  # the HTML (page, frames) and the screenshot asked for at once: one wait, not three in a row
            html, shot, *frames = await asyncio.gather(
                page.content(), _screenshot(page),
                *(frame_html(f) for f in page.frames[1:]))
        except Exception:  # noqa: BLE001 - a dying page must not hide the original failure
            return None
        return Capture(urlsplit(page.url).path, html, shot, datetime.now(UTC), reason, [f for f in frames if f])

    async def storage_state(self) -> dict:
        return await self.context.storage_state()

    async def close(self) -> None:
        await self.context.close()


async def _screenshot(page: Page) -> bytes:
    """The whole page (beyond the viewport) as JPEG, drawn by Chromium's own capture (CDP): the same image as
    Playwright's full-page screenshot, without resizing the viewport to the page and back (bench.sweep, three
    runs each: ~12% less CPU a claim on a first sweep, where every claim keeps evidence). Playwright's
    screenshot where no CDP session can be opened."""
    try:
        cdp = await page.context.new_cdp_session(page)
    except PlaywrightError:
        return await page.screenshot(full_page=True, timeout=10_000, type="jpeg", quality=80)
    try:
        size = (await asyncio.wait_for(cdp.send("Page.getLayoutMetrics"), 10))["cssContentSize"]
        shot = await asyncio.wait_for(cdp.send("Page.captureScreenshot", {
            "format": "jpeg", "quality": 80, "captureBeyondViewport": True, "optimizeForSpeed": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}), 10)
        return base64.b64decode(shot["data"])
    finally:
        with contextlib.suppress(PlaywrightError):
            await cdp.detach()


@contextlib.contextmanager
def _driver_env(allow_debug: bool) -> Iterator[None]:
    """The environment Playwright's driver starts with: DEBUG without its pw:* channels (they print every
    call's arguments: passwords, member ids) unless `allow_debug`, which logs a warning naming the risk."""
    debug = os.environ.get("DEBUG")
    channels = [c.strip() for c in (debug or "").split(",") if c.strip()]
    driver = [c for c in channels if c.startswith("pw") or c in ("*", "-*")]
    if not driver:
        yield
        return
    if allow_debug:
        log.warning("browser.driver_debug_on", channels=driver,
                    risk="Playwright's driver prints every call's arguments: passwords, TOTP codes, member ids")
        yield
        return
    kept = ",".join(c for c in channels if c not in driver)
    if kept:
        os.environ["DEBUG"] = kept
    else:
        del os.environ["DEBUG"]
    try:
        yield
    finally:
        os.environ["DEBUG"] = debug


class BrowserPool:
    """One Chromium per process; contexts per portal account.

    A pool made with `shares=` another pool uses that pool's Chromium (started once, kept when this pool
    closes) and keeps its own contexts and warm sessions: what closing it closes. One process can so run
    several runtimes (the tests: one Chromium for the whole session) without any of them seeing another's
    sessions."""

    def __init__(self, settings: BrowserSettings, *, shares: BrowserPool | None = None) -> None:
        self.settings = settings
        self._shares = shares
        self._pw: Playwright | None = None
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()
        self._warm: dict[Hashable, tuple[BrowserSession, float]] = {}  # key -> (idle session, parked at)
        self._contexts: set[BrowserContext] = set()  # open contexts of this pool (closed with a shared pool)

    # -- warm sessions: a logged-in context kept open between runs for the next check of the same account
    async def park(self, key: Hashable, session: BrowserSession, keep_s: float) -> None:
        """Keep an idle logged-in session for `keep_s` seconds (0: close it now). A session that saw a
        blocked action is never kept. Replaces (closes) an older parked session of the same key."""
        await self.close_stale(keep_s)
        if keep_s <= 0 or session.blocked:
            await session.close()
            return
        old = self._warm.pop(key, None)
        if old is not None and old[0] is not session:
            await old[0].close()
        self._warm[key] = (session, time.monotonic())

    async def take_warm(self, key: Hashable, keep_s: float) -> BrowserSession | None:
        """The session parked under `key` if it was parked less than `keep_s` seconds ago (it leaves the
        pool: one run uses it at a time); a staler one is closed. None when there is none."""
        await self.close_stale(keep_s)
        entry = self._warm.pop(key, None)
        return entry[0] if entry is not None else None

    async def close_stale(self, keep_s: float) -> None:
        now = time.monotonic()
        for key in [k for k, (_, at) in self._warm.items() if now - at >= keep_s]:
            try:
                await self._warm.pop(key)[0].close()
            except PlaywrightError:  # the browser already went away with it
                pass

    async def browser(self) -> Browser:
        if self._shares is not None:
            return await self._shares.browser()
        async with self._lock:
            if self._browser is None or not self._browser.is_connected():
                if self._pw is None:
                    with _driver_env(self.settings.driver_debug):  # the driver reads DEBUG once, at its start
                        self._pw = await async_playwright().start()
                kwargs: dict[str, Any] = {"headless": self.settings.headless, "args": self.settings.args}
                if path := self.settings.launch_path():
                    kwargs["executable_path"] = path
                self._browser = await self._pw.chromium.launch(**kwargs)
            return self._browser

    async def session_for(self, adapter: Any, base_url: str, *, pacer: TokenBucket | None = None,
                          storage_state: dict | None = None, recycle_after: int = 0) -> BrowserSession:
        """The session an adapter works in: its declared writes allowed (nothing else), its counted requests
        paced by `pacer`, its read-ahead groups read ahead. What the runner, the tests and the benches use,
        so none of them forgets a part of what the adapter declares."""
        return await self.new_session(base_url, adapter.allowed_writes, storage_state=storage_state, pacer=pacer,
                                      counted=getattr(adapter, "counted_requests", ()),
                                      recycle_after=recycle_after, read_ahead=getattr(adapter, "read_ahead", None))

    async def new_session(self, base_url: str, allowed_writes: Sequence[RequestPattern],
                          storage_state: dict | None = None, block_resources: bool = True,
                          timeout_ms: int = 20_000, pacer: TokenBucket | None = None,
                          counted: Sequence[RequestPattern] = (), recycle_after: int = 0,
                          read_ahead: ReadAhead | None = None) -> BrowserSession:
        browser = await self.browser()
        ctx = await browser.new_context(storage_state=storage_state, base_url=base_url,
                                        viewport={"width": 1280, "height": 900}, locale="en-US",
                                        timezone_id="America/New_York")
        ctx.set_default_timeout(timeout_ms)
        self._contexts.add(ctx)
        ctx.on("close", lambda _ctx: self._contexts.discard(ctx))
        session = BrowserSession(ctx, base_url, pacer=pacer, recycle_after=recycle_after, timeout_ms=timeout_ms)
        host = urlsplit(base_url).netloc

        def is_counted(req) -> bool:  # a request the portal counts toward its rate limit
            return session.pacer is not None and any(p.matches(req.method.upper(), req.url) for p in counted)

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
                session._blocked(req, {"method": method, "path": redact_path(parts.path),
                                        "at": datetime.now(UTC).isoformat()})
                await route.abort("blockedbyclient")
                return
            if read_ahead is not None and method == "GET" and await session._serve_ahead(route, read_ahead, is_counted):
                return
            await session._sent(req, is_counted(req))
            await route.continue_()

        def redirected(req) -> None:  # a redirect's next page: sent by the browser without the route
            if req.redirected_from is not None and is_counted(req):
                session.counted += 1
                session.pacer.debit()

        await ctx.route("**/*", guard)
        ctx.on("request", redirected)
        return session

    async def close(self) -> None:
        await self.close_stale(0)
        if self._shares is not None:  # the Chromium stays for the pool that owns it; this pool's contexts go
            for ctx in list(self._contexts):
                with contextlib.suppress(PlaywrightError):
                    await ctx.close()
            self._contexts.clear()
            return
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        if self._pw is not None:
            await self._pw.stop()
            self._pw = None
