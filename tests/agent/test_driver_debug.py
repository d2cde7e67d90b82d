"""Playwright's driver debug channel (DEBUG=pw:*) prints every call with its arguments: a filled password, a
member id. It never reaches the driver unless the setting allows it."""

from __future__ import annotations

import pytest

from agent.browser import BrowserPool
from core.config import get_settings
from portals import load_adapters
from tests.portals.conftest import credentials


async def _sign_in_with_driver_debug(sandbox, monkeypatch, allow: bool) -> None:
    monkeypatch.setenv("DEBUG", "pw:api")
    settings = get_settings().browser.model_copy(update={"driver_debug": allow})
    pool = BrowserPool(settings)  # a driver of its own: it reads DEBUG when it starts
    adapter = load_adapters()["medicaid"]()
    try:
        s = await pool.session_for(adapter, sandbox.url("medicaid"))
        await adapter.login(s, credentials(sandbox, "medicaid"))
    finally:
        await pool.close()


@pytest.mark.browser
async def test_a_sign_in_with_debug_set_prints_no_password(sandbox, monkeypatch, capfd):
    password = sandbox.account("medicaid")["password"]
    await _sign_in_with_driver_debug(sandbox, monkeypatch, allow=False)
    out = "".join(capfd.readouterr())
    assert "pw:api" not in out and password not in out
    # the setting lets the channel through (for a developer on the sandbox): then it echoes the fill
    await _sign_in_with_driver_debug(sandbox, monkeypatch, allow=True)
    out = "".join(capfd.readouterr())
    assert "pw:api" in out and password in out
