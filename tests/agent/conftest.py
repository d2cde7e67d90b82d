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
def onboarded(request, sandbox, settings):
    """A store onboarded from a sandbox world of `param` claims (default 120: enough of every kind)."""
    sandbox.reset(size=getattr(request, "param", 120))
    reset_pacers()
    rt = Runtime.start(settings)
    onboard(rt.Session, rt.vault, sandbox.control, sandbox.urls)
    return rt
