"""Agent tests: a store onboarded from the session sandbox, in a temp data dir."""

from __future__ import annotations

import pytest

from agent.pacing import reset_pacers
from agent.runtime import Runtime
from core.config import get_settings
from core.demo import onboard


@pytest.fixture
def settings(tmp_path):
    s = get_settings().model_copy(deep=True)
    s.data_dir = tmp_path
    s.database_url = ""
    s.retry_backoff_s = 0.2
    return s


@pytest.fixture
async def runtime(settings, chromium):
    """Start a Runtime on the session's Chromium: `runtime()` or `runtime(other_settings)`. Each is closed
    after the test (its contexts; the Chromium stays for the next test) if the test did not close it."""
    started: list[Runtime] = []

    def start(s=None) -> Runtime:
        started.append(Runtime.start(s or settings, browser=chromium))
        return started[-1]

    yield start
    for rt in started:
        await rt.aclose()


@pytest.fixture
def onboarded(request, sandbox, runtime):
    """A store onboarded from a sandbox world of `param` claims (default 120: enough of every kind)."""
    sandbox.reset(size=getattr(request, "param", 120))
    reset_pacers()
    rt = runtime()
    onboard(rt.Session, rt.vault, sandbox.control, sandbox.urls)
    return rt
