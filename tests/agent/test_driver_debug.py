"""Playwright's driver debug channel (DEBUG=pw:*) prints every call with its arguments: a filled password, a
member id. It never reaches the driver unless the setting allows it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from agent.browser import BrowserPool
from core.config import get_settings
from portals import load_adapters
from store.models import Claim
from tests.worlds import account_credentials


async def _sign_in_with_driver_debug(sandbox, monkeypatch, allow: bool) -> None:
    monkeypatch.setenv("DEBUG", "pw:api")
    settings = get_settings().browser.model_copy(update={"driver_debug": allow})
    pool = BrowserPool(settings)  # a driver of its own: it reads DEBUG when it starts
    adapter = load_adapters()["medicaid"]()
    try:
        s = await pool.session_for(adapter, sandbox.url("medicaid"))
        await adapter.login(s, account_credentials(sandbox, "medicaid"))
    finally:
        await pool.close()


@pytest.mark.browser
async def test_a_sign_in_with_debug_set_prints_no_password(sandbox, monkeypatch, capfd):
    password = sandbox.account("medicaid")["password"]
    await _sign_in_with_driver_debug(sandbox, monkeypatch, allow=False)
    out = "".join(capfd.readouterr())
    assert "pw:api" not in out and password not in out
    # the setting lets the channel through (for a developer on the sandbox), with a warning naming the
    # risk; the password is still not in it: it is entered without the driver echoing it (portals/fields.py;
    # with Locator.fill it was: "fill("<password>")")
    await _sign_in_with_driver_debug(sandbox, monkeypatch, allow=True)
    out = "".join(capfd.readouterr())
    assert "browser.driver_debug_on" in out and "pw:api" in out and password not in out


@pytest.mark.browser
@pytest.mark.timeout(600)
async def test_a_sweep_with_the_driver_channel_on_echoes_no_secret_or_member_id(sandbox, onboarded, monkeypatch,
                                                                               capfd):
    """Even with the channel let through (a developer's setting), what the adapters type - passwords, TOTP
    codes, member ids, dates of birth - is entered without the driver echoing it (portals/fields.py)."""
    monkeypatch.setenv("DEBUG", "pw:api")
    rt = onboarded
    rt.pool = BrowserPool(rt.settings.browser.model_copy(update={"driver_debug": True}))  # its own driver
    try:
        with rt.Session() as s:
            ids = list(s.scalars(select(Claim.id)))
        summary = await rt.runner().sweep(claim_ids=ids, trigger="test")
    finally:
        await rt.pool.close()
    assert summary.counts["checked"] == len(ids) and summary.counts["logins"] >= 3
    out = "".join(capfd.readouterr())
    assert out.count("pw:api") > 100  # the channel was on: every call is in the output
    accounts = sandbox.control.get("/control/accounts").json()
    gt = sandbox.ground_truth()
    secrets = [a["password"] for a in accounts] + [a["totp_secret"] for a in accounts]
    phi = [m["member_id"] for m in gt["members"]] + [m["last_name"] for m in gt["members"]]
    assert [v for v in secrets + phi if v in out] == []
