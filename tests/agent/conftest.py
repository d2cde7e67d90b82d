"""Agent tests: a store onboarded from the session sandbox, in a temp data dir."""

from __future__ import annotations

import pytest

from agent.pacing import reset_pacers
from core.config import get_settings
from portal_agent.demo import onboard
from portal_agent.runtime import Runtime
from tests.worlds import sample_claims


@pytest.fixture
def settings(tmp_path, fresh_sqlite):
    """Settings of a store of this test's own: the migrated template copied into its data dir."""
    s = get_settings().model_copy(deep=True)
    s.data_dir = tmp_path
    s.database_url = ""
    fresh_sqlite(tmp_path / "portal_agent.db")  # the default store's file (Settings.resolved_database_url)
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
    """A store onboarded from the session sandbox. `param`: a world size (every claim of a world that size is
    onboarded), or by default a small world: up to 3 claims of every (portal, kind) of a 120-claim world
    (42 claims at seed 7: every kind on every portal, every account)."""
    size = getattr(request, "param", None)
    sandbox.reset(size=size or 120)
    reset_pacers()
    rt = runtime()
    only = None if size else sample_claims(sandbox.ground_truth(), per_kind=3)
    onboard(rt.Session, rt.vault, sandbox.control, sandbox.urls, only=only)
    return rt
