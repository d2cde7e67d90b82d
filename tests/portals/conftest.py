"""Adapter tests: one sign-in per portal account per module.

`signed_in(adapter, portal)` gives a session signed in as the portal's first demo account: the module's
saved sign-in (its storage state) restored and verified, as the agent restores a saved session, or a full
sign-in when there is none yet or the portal has ended it (the sandbox fixture's reset keeps the portals'
sessions while the world stays the same). Tests of signing in itself call `adapter.login` on a fresh session.
"""

from __future__ import annotations

import pytest

from agent.pacing import TokenBucket
from tests.worlds import account_credentials


@pytest.fixture(scope="module")
def saved_sign_ins() -> dict[tuple[str, str], dict]:
    return {}


@pytest.fixture
def signed_in(sandbox, pool, saved_sign_ins):
    stats = {"restored": 0, "signed_in": 0}

    async def open_session(adapter, portal: str, *, pacer: TokenBucket | None = None, fresh: bool = False):
        url = sandbox.url(portal)
        creds = account_credentials(sandbox, portal)
        key = (url, creds.username)
        if not fresh and (state := saved_sign_ins.get(key)) is not None:
            s = await pool.session_for(adapter, url, pacer=pacer, storage_state=state)
            if await adapter.verify(s):
                if resume := getattr(adapter, "resume", None):  # as the runner does with a restored session
                    resume(s, creds)
                stats["restored"] += 1
                return s
            await s.close()
        s = await pool.session_for(adapter, url, pacer=pacer)
        await adapter.login(s, creds)
        stats["signed_in"] += 1
        saved_sign_ins[key] = await s.storage_state()
        return s

    open_session.stats = stats
    return open_session
