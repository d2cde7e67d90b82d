"""Test harness: the sandbox runs as a real subprocess on free 127.0.0.1 ports, once per session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent.browser import BrowserPool
from agent.pacing import reset_pacers
from core.clock import REAL_CLOCK, ScaledClock, set_portal_clock
from core.config import get_settings

REPO = Path(__file__).resolve().parent.parent
# The sandbox's running clock runs this many times real time in the tests (idle timeouts, response delays,
# rate-limit windows, lockouts: fixtures/common/sandbox.py RunningClock), and the portal clock of this
# process with it (core.clock.portal_clock: the pacer's windows, the medicaid adapter's response wait), so
# the agent paces to the same sped-up minute the portals count. 1 = real time.
TIME_SCALE = float(os.environ.get("PORTAL_AGENT_TEST_TIME_SCALE", "5"))


@dataclass
class SandboxHandle:
    urls: dict[str, str]
    control: httpx.Client

    def url(self, portal: str) -> str:
        return self.urls[portal]

    def reset(self, seed: int = 7, size: int = 500, profile: str = "off", **kw) -> dict:
        """A new world (faults `profile`); `keep_sessions=True` keeps the portals' signed-in sessions when
        the world is the same one (tests/portals/conftest.py `signed_in` reuses them)."""
        r = self.control.post("/control/reset", json={"seed": seed, "size": size, "profile": profile, **kw})
        r.raise_for_status()
        return r.json()

    def faults(self, profile: str | None = None, **overrides) -> dict:
        r = self.control.put("/control/faults", json={"profile": profile, "overrides": overrides})
        r.raise_for_status()
        return r.json()

    def clock(self, **body) -> dict:
        r = self.control.post("/control/clock", json=body)
        r.raise_for_status()
        return r.json()

    def accounts(self, portal: str) -> list[dict]:
        return [a for a in self.control.get("/control/accounts").json() if a["portal"] == portal]

    def account(self, portal: str, i: int = 0) -> dict:
        return self.accounts(portal)[i]

    def totp(self, portal: str, username: str) -> str:
        return self.control.get(f"/control/accounts/{portal}/{username}/totp").json()["code"]

    def counters(self) -> dict:
        return self.control.get("/control/counters").json()

    def ground_truth(self) -> dict:
        return self.control.get("/control/ground-truth").json()

    def claim_truth(self, claim_id: str) -> dict:
        return self.control.get(f"/control/ground-truth/claims/{claim_id}").json()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fixtures", "--port-base", "0", "--json", "--time-scale", str(TIME_SCALE)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("sandbox did not start")
    urls = json.loads(line)["urls"]
    client = httpx.Client(base_url=urls["control"], timeout=60)
    set_portal_clock(ScaledClock(TIME_SCALE))
    try:
        yield SandboxHandle(urls, client)
    finally:
        set_portal_clock(REAL_CLOCK)
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    """The sandbox, reset to the default world (seed 7, 500 claims, faults off) for this test; the portals'
    signed-in sessions are kept (a test that needs none signs in on a fresh browser context)."""
    sandbox_server.reset(keep_sessions=True)
    return sandbox_server


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite store migrated to head with its code tables loaded, once per session: tests copy the file
    (`fresh_sqlite`) instead of migrating a store of their own."""
    from store import repo
    from store.db import make_engine, migrate, session_factory

    path = tmp_path_factory.mktemp("template") / "portal_agent.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with session_factory(engine)() as s:
        repo.load_code_tables(s)
        s.commit()
    engine.dispose()
    return path


@pytest.fixture
def fresh_sqlite(migrated_sqlite):
    """Copy the migrated template to `dest` (a path): a new store, migrated, in a file copy's time."""

    def copy(dest: Path) -> Path:
        shutil.copyfile(migrated_sqlite, dest)
        return dest

    return copy


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[BrowserPool]:
    """The session's one Chromium (started on first use). Tests take `pool` or a Runtime sharing it."""
    owner = BrowserPool(get_settings().browser)
    yield owner
    await owner.close()


@pytest.fixture
async def pool(chromium: BrowserPool) -> AsyncIterator[BrowserPool]:
    """A browser pool of this test's own (its contexts and warm sessions closed after it) on the session's
    Chromium, with the process's pacers reset."""
    reset_pacers()
    p = BrowserPool(get_settings().browser, shares=chromium)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    b = get_settings().browser
    args = {**browser_type_launch_args, "headless": b.headless, "args": b.args}
    if path := b.launch_path():
        args["executable_path"] = path
    return args


SYNC_PLAYWRIGHT_FIXTURES = {"page", "browser", "context"}
# A test that asks for one of these starts Chromium: it is marked `browser` here, so none is missed. A test
# that starts one otherwise (a CLI sweep in a subprocess) carries the marker itself; an unmarked test that
# tries is stopped (`_chromium_only_where_marked`).
BROWSER_FIXTURES = {"chromium", "pool", "runtime", "onboarded"} | SYNC_PLAYWRIGHT_FIXTURES
NO_BROWSER = "/nonexistent/a-test-not-marked-browser-may-not-start-chromium"


def pytest_collection_modifyitems(session, config, items):
    """Mark the tests that start Chromium `browser`; run the sync pytest-playwright tests last: their
    session-wide Playwright keeps an event loop running in the main thread, after which asyncio tests (the
    adapters, the agent) cannot start a loop."""
    for item in items:
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)
    sync = [i for i in items if SYNC_PLAYWRIGHT_FIXTURES & set(getattr(i, "fixturenames", ()))]
    ids = {id(i) for i in sync}
    items[:] = [i for i in items if id(i) not in ids] + sync


@pytest.fixture(autouse=True)
def _chromium_only_where_marked(request, monkeypatch):
    """A test not marked `browser` cannot start Chromium, in this process or in one it starts: the fast tier
    (`-m "not browser and not slow"`) then never holds a browser test by mistake."""
    if request.node.get_closest_marker("browser"):
        return

    async def refuse(self):
        raise AssertionError(f"{request.node.nodeid} starts Chromium: mark it @pytest.mark.browser")

    monkeypatch.setattr(BrowserPool, "browser", refuse)
    monkeypatch.setenv("PORTAL_AGENT_BROWSER_EXECUTABLE_PATH", NO_BROWSER)
