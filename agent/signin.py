"""An account's sign-in lifecycle within a sweep: open its session (a warm one kept logged in, a saved one
restored, or a fresh login), log in again after a session expiry (once for all the lookups that saw it),
sign in once more later after giving up on a flaky portal, and stop the account on an account-level error
(the lockout guard: never a password again after a refusal until a human or the window clears it).

`SignIn` is a mixin of `SweepRunner` (agent/sweep.py): it uses the runner's settings, store sessions, browser
pool, evidence store, vault, clock and lockout guard, and `_breaker_failure` (agent/outcomes.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from agent.browser import BrowserPool, BrowserSession
from agent.evidence import EvidenceStore
from agent.guards import CircuitBreaker, LockoutGuard
from agent.pacing import pacer_for
from core.config import Settings
from core.errors import AccountError, AccountLocked, LoginRejected, MfaFailed, PortalDrift, PortalError
from store import accounts as acct_repo
from store import events
from store.models import PortalAccount

log = structlog.get_logger("portal_agent.sweep")

FAILED_LOGIN_ERRORS = (LoginRejected, MfaFailed, AccountLocked)


def warm_key(acct: PortalAccount) -> tuple[int, str]:
    """The key an account's session is parked under in the browser pool (keep_warm_s)."""
    return acct.id, acct.base_url


@dataclass
class AccountRun:
    """One account's live run: what an on-demand check of the same account joins instead of waiting."""

    acct: PortalAccount
    adapter: object
    session: BrowserSession | None = None
    breaker: CircuitBreaker | None = None
    stop: list[str] = field(default_factory=list)  # set once the account must stop (reason)
    login_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    login_epoch: int = 0  # bumped by every successful (re)login
    requests_at_open: tuple[int, int] = (0, 0)  # the session's (all, counted) requests when this run took it
    checked: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    drift: tuple[str, str | None] | None = None  # (reason, evidence ref) of the first drift seen
    revivable: bool = False  # the stop is a sign-in given up on retryable failures: may be tried again
    revived: int = 0  # times this run signed in again after such a stop


class SignIn:
    settings: Settings
    Session: Callable
    pool: BrowserPool
    evidence: EvidenceStore
    vault: object
    clock: Callable[[], datetime]
    guard: LockoutGuard

    def _rate_limit(self, adapter, portal_key: str) -> int | None:
        """The portal's limit as the adapter declares it, lowered by settings (never raised)."""
        declared = getattr(adapter, "rate_limit_per_minute", None)
        override = self.settings.rate_limits.get(portal_key)
        if declared and override:
            return min(declared, override)
        return declared or override

    async def _save_state(self, run: AccountRun, success: bool = False) -> None:
        state = await run.session.storage_state()
        with self.Session() as s:
            acct_repo.session_saved(s, self.vault, run.acct.id, state, succeeded_at=self.clock() if success else None)
            s.commit()

    async def _open_session(self, run: AccountRun, summary) -> str:
        acct, adapter = run.acct, run.adapter
        if self.settings.keep_warm_s > 0:
            warm = await self.pool.take_warm(warm_key(acct), self.settings.keep_warm_s)
            if warm is not None:  # still logged in; a lookup that finds it expired logs in again (_check)
                run.session = warm
                run.requests_at_open = (warm.requests, warm.counted)
                summary.counts["sessions_warm"] += 1
                return ""
        state = acct_repo.saved_state(self.vault, acct)
        pacer = pacer_for(acct.base_url, acct.username, self._rate_limit(adapter, acct.portal_key),
                          margin=getattr(adapter, "rate_margin", 4), standing=self.settings.on_demand_reserve)
        run.session = await self.pool.session_for(adapter, acct.base_url, storage_state=state, pacer=pacer,
                                                  recycle_after=self.settings.recycle_context_every)
        if state is not None:
            try:
                if await adapter.verify(run.session):
                    if resume := getattr(adapter, "resume", None):  # what prompts inside a session need
                        resume(run.session, acct_repo.credentials(self.vault, acct))
                    summary.counts["sessions_restored"] += 1
                    return ""
            except PortalError:
                pass
            summary.counts["sessions_stale"] += 1
        ok, why = await self._login(run, summary)
        return "" if ok else why

    async def _relogin(self, run: AccountRun, epoch_seen: int, summary) -> bool:
        """Log in again after a session expiry, once for all the lookups that saw it."""
        async with run.login_lock:
            if run.stop:
                return False
            if run.login_epoch > epoch_seen:
                return True  # another lookup already logged in again
            ok, why = await self._login(run, summary, relogin=True)
            if not ok:
                run.stop.append(why)
            return ok

    async def _revive(self, run: AccountRun, summary) -> None:
        """An account stopped because its sign-in failed on retryable errors (5xx, drops, pages cut short:
        every attempt of `login_attempts`) signs in once more after `account_retry_after_s`, at most
        `account_revivals` times a run, instead of failing every claim left. One worker does it while the
        others wait; never after a refusal, a lockout guard's no, drift or an open circuit, nor for an on-demand
        check (someone is waiting: it fails with the reason after `login_attempts`)."""
        async with run.login_lock:
            if not run.stop or not run.revivable or run.revived >= self.settings.account_revivals:
                return
            run.revived += 1
            await asyncio.sleep(self.settings.account_retry_after_s)
            ok, why = await self._login(run, summary, relogin=True)
            if ok:
                run.stop.clear()
                summary.counts["accounts_revived"] += 1
            else:
                run.stop[:] = [why]

    async def _login(self, run: AccountRun, summary, relogin: bool = False) -> tuple[bool, str]:
        acct, adapter, session, breaker = run.acct, run.adapter, run.session, run.breaker
        run.revivable = False
        if breaker is not None and not breaker.allow():
            return False, f"circuit open for {acct.portal_key}"
        allowed, why = self.guard.password_allowed(acct.status, acct.last_failed_login_at)
        if not allowed:
            summary.accounts_needing_attention.append(acct.username)
            return False, f"needs attention: {why}"
        creds = acct_repo.credentials(self.vault, acct)
        delay = self.settings.retry_backoff_s
        error: PortalError | None = None
        for attempt in range(1, self.settings.login_attempts + 1):
            try:  # a 5xx or dropped connection during sign-in is retried; a refusal never is
                await adapter.login(session, creds)
                error = None
                break
            except PortalError as e:
                error = e
                if isinstance(e, AccountError) or not e.retryable or attempt == self.settings.login_attempts:
                    break
                summary.counts["login_retries"] += 1
                await asyncio.sleep(delay)
                delay *= 2
        try:
            if error is not None:
                raise error
        except AccountError as e:
            await self._account_failed(acct, e, await session.capture(reason=type(e).__name__), summary)
            return False, f"{type(e).__name__}: {e}"
        except PortalError as e:
            summary.errors[f"login.{type(e).__name__}"] += 1
            if breaker is not None and (isinstance(e, PortalDrift) or e.retryable):
                self._breaker_failure(breaker, acct, e)
            cap = await session.capture(reason=f"login {type(e).__name__}")
            ref = None
            if cap:
                with self.Session() as s:
                    ref = self.evidence.save(s, cap, portal_key=acct.portal_key, kind="failure",
                                             org_id=acct.org_id, account_id=acct.id).ref
                    s.commit()
            if isinstance(e, PortalDrift) and run.drift is None:
                run.drift = (f"login: {e}", ref)
            run.failed += 1
            run.revivable = e.retryable and not isinstance(e, PortalDrift)
            return False, f"login failed: {type(e).__name__}"
        run.login_epoch += 1
        summary.counts["relogins" if relogin else "logins"] += 1
        with self.Session() as s:
            acct_repo.signed_in(s, acct.id, self.clock())
            s.commit()
        acct.status = "active"
        if not relogin:  # a check in another process can restore this session instead of logging in
            await self._save_state(run)
        return True, ""

    async def _account_failed(self, acct: PortalAccount, e: AccountError, cap, summary) -> None:
        with self.Session() as s:
            acct_repo.account_failed(s, acct.id, error_type=type(e).__name__, message=str(e), at=self.clock(),
                                     failed_login=isinstance(e, FAILED_LOGIN_ERRORS))
            ev = self.evidence.save(s, cap, portal_key=acct.portal_key, kind="failure", org_id=acct.org_id,
                                    account_id=acct.id) if cap else None
            events.emit(s, acct.org_id, events.PortalAccountFailed(
                account_id=acct.id, portal=acct.portal_key, error=type(e).__name__,
                evidence_ref=ev.ref if ev else None))
            s.commit()
        acct.status = "needs_attention"
        acct.last_failed_login_at = self.clock()
        summary.accounts_needing_attention.append(acct.username)
        summary.errors[f"account.{type(e).__name__}"] += 1
        log.warning("account.needs_attention", account_id=acct.id, portal=acct.portal_key, error=type(e).__name__)
