"""Test harness: the sandbox runs as a real subprocess on free 127.0.0.1 ports, once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent.browser import BrowserPool
from agent.pacing import reset_pacers
from core.config import get_settings

REPO = Path(__file__).resolve().parent.parent


@dataclass
class SandboxHandle:
    urls: dict[str, str]
    control: httpx.Client

    def url(self, portal: str) -> str:
        return self.urls[portal]

    def reset(self, seed: int = 7, size: int = 500, profile: str = "off", **kw) -> dict:
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
        [sys.executable, "-m", "fixtures", "--port-base", "0", "--json"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("sandbox did not start")
    urls = json.loads(line)["urls"]
    client = httpx.Client(base_url=urls["control"], timeout=60)
    try:
        yield SandboxHandle(urls, client)
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    """The sandbox, reset to the default world (seed 7, 500 claims, faults off) for this test."""
    sandbox_server.reset()
    return sandbox_server


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


def pytest_collection_modifyitems(session, config, items):
    """Run the sync pytest-playwright tests last: their session-wide Playwright keeps an event loop
    running in the main thread, after which asyncio tests (the adapters, the agent) cannot start a loop."""
    sync = [i for i in items if SYNC_PLAYWRIGHT_FIXTURES & set(getattr(i, "fixturenames", ()))]
    ids = {id(i) for i in sync}
    items[:] = [i for i in items if id(i) not in ids] + sync
