"""Adapter tests: one Chromium (BrowserPool) per test."""

from __future__ import annotations

import pytest

from agent.browser import BrowserPool
from agent.pacing import reset_pacers
from core.config import get_settings


@pytest.fixture
async def pool():
    reset_pacers()
    p = BrowserPool(get_settings().browser)
    yield p
    await p.close()
