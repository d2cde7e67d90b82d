"""One sweep: for each portal account, one guarded browser context and one login reused for all its due
claims; several lookups in flight per session (each on its own leased page, up to the adapter's
max_in_flight), paced by the account's token bucket under the portal's rate limit; retries with backoff
for retryable errors; re-login on session expiry; the lockout guard; a circuit breaker per portal.

Trust (DESIGN §4): a lookup during which the read-only guard blocked a state-changing request fails as
BlockedAction (its result, if any, is discarded); a result that does not prove its claim (agent/proof.py)
fails as ClaimMismatch; every status change keeps the page it was read from as evidence, every failure
keeps the failing page; each account's canary claim is read first and a different reading stops the
account as drift before any other result is stored. Account health (last check, failures, circuit,
drift, canary) is written at the end of each account's run.

The runner does not care who calls it (CLI, APScheduler, an API on-demand check, a distributed worker):
`SweepRunner.sweep(...)` is the whole job. Logs carry ids and error types, never PHI or secrets.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import structlog

from agent.browser import BrowserPool, BrowserSession
from agent.evidence import EvidenceStore
from agent.guards import CircuitBreaker, LockoutGuard
from agent.pacing import pacer_for
from agent.proof import claim_number_key, unproven
from core.claims import ClaimQuery, ClaimStatusResult
from core.config import Settings
from core.errors import (
    AccountError,
    AccountLocked,
    BlockedAction,
    ClaimMismatch,
    LoginRejected,
    MfaFailed,
    PortalDrift,
    PortalError,
    RetryableError,
    SessionExpired,
)
from portals.base import registry
from store import accounts as acct_repo
from store import repo, runs
from store.models import Claim, Organization, Payer, PortalAccount

log = structlog.get_logger("portal_agent.sweep")

FAILED_LOGIN_ERRORS = (LoginRejected, MfaFailed, AccountLocked)


def _now() -> datetime:
    return datetime.now(UTC)


def _warm_key(acct: PortalAccount) -> tuple[int, str]:
    return acct.id, acct.base_url


@dataclass
class SweepSummary:
    run_id: int
    counts: Counter = field(default_factory=Counter)
    denial_carcs: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    accounts_needing_attention: list[str] = field(default_factory=list)
    seconds: float = 0.0
    durations: dict[int, float] = field(default_factory=dict)  # claim id -> s from lookup start to stored
    stored_at: dict[int, float] = field(default_factory=dict)  # claim id -> time.monotonic() its result was stored
    canaries: dict[int, str] = field(default_factory=dict)  # account id -> ok | mismatch | failed | candidate
    timings: Counter = field(default_factory=Counter)  # seconds spent per step (profiling), summed


@dataclass
class _Job:
    claim_id: int
    query: ClaimQuery


@dataclass
class _Account:
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


class SweepRunner:
    def __init__(self, settings: Settings, Session, pool: BrowserPool,
                 evidence: EvidenceStore, vault, clock: Callable[[], datetime] = _now,
                 adapters: dict[str, type] | None = None) -> None:
        self.settings = settings
        self.Session = Session
        self.pool = pool
        self.evidence = evidence
        self.vault = vault
        self.clock = clock
        self.adapters = adapters if adapters is not None else registry()
        self.guard = LockoutGuard(window=timedelta(minutes=settings.lockout_window_minutes), clock=clock)
        self._live: dict[int, _Account] = {}  # account id -> its run in progress (for on-demand checks)

    def checked_live(self, account_id: int) -> int | None:
        """Claims the run in progress of this account has checked so far; None when it has none."""
        run = self._live.get(account_id)
        return None if run is None else run.checked

    # ------------------------------------------------------------------ planning
    def plan(self, s, portal_key: str | None, claim_ids: list[int] | None
             ) -> list[tuple[PortalAccount, list[_Job]]]:
        """Which account reads which claims: the due claims (or `claim_ids`), of `portal_key` or every portal."""
        now = self.clock()
        if claim_ids is not None:
            claims = repo.claims_by_ids(s, claim_ids)
        else:
            claims = repo.claims_due(s, now=now, limit=self.settings.sweep_max_claims)
        payers = repo.payers_by_id(s)
        orgs = repo.orgs_by_id(s)
        accounts: dict[tuple[int, str], list[PortalAccount]] = {}
        for a in repo.portal_accounts(s):
            if a.status != "disabled":
                accounts.setdefault((a.org_id, a.portal_key), []).append(a)
        plan: dict[int, tuple[PortalAccount, list[_Job]]] = {}
        rr: Counter = Counter()
        for c in claims:
            payer = payers[c.payer_id]
            if portal_key and payer.portal_key != portal_key:
                continue
            candidates = accounts.get((c.org_id, payer.portal_key))
            if not candidates:
                continue
            acct = candidates[rr[(c.org_id, payer.portal_key)] % len(candidates)]
            rr[(c.org_id, payer.portal_key)] += 1
            plan.setdefault(acct.id, (acct, []))[1].append(_Job(c.id, _query(c, payer, orgs[c.org_id])))
        return list(plan.values())

    # ------------------------------------------------------------------ the sweep
    async def sweep(self, *, portal_key: str | None = None, claim_ids: list[int] | None = None,
                    trigger: str = "cli", progress: Callable[[int], None] | None = None,
                    on_plan: Callable[[int], None] | None = None, urgent: bool = False) -> SweepSummary:
        """Check the due claims (or `claim_ids`) of every account. `urgent`: someone waits for the result
        (an on-demand check): its requests pass other runs' in the accounts' pacers."""
        started = self.clock()
        with self.Session() as s:
            run = runs.start_run(s, portal_key=portal_key, trigger=trigger, at=started)
            s.commit()
            plan = self.plan(s, portal_key, claim_ids)
            s.expunge_all()
        summary = SweepSummary(run_id=run.id)
        if on_plan:
            on_plan(sum(len(jobs) for _, jobs in plan))
        breakers: dict[str, CircuitBreaker] = {}
        total = asyncio.Semaphore(self.settings.concurrency_total)
        await asyncio.gather(*(self._run_account(run.id, a, jobs, breakers, total, summary, progress,
                                                 canary=claim_ids is None, urgent=urgent)
                               for a, jobs in plan))
        finished = self.clock()
        summary.seconds = (finished - started).total_seconds()
        counts = {**summary.counts, "errors": dict(summary.errors)}
        counts.update({f"circuit_open.{pk}": b.trips for pk, b in breakers.items() if b.trips})
        with self.Session() as s:
            run = runs.finish_run(s, run.id, at=finished, counts=counts, status=(
                "failed" if summary.counts["failed"] and not summary.counts["checked"] else "completed"))
            if plan:
                org_id = plan[0][0].org_id
                repo.emit(s, org_id, "sweep.completed", f"sweep:{run.id}", {"run_id": run.id, "counts": run.counts})
            purged = self.evidence.purge(s, self.settings.evidence_retention_days, now=finished)
            s.commit()
        if purged:
            log.info("evidence.purged", count=purged, retention_days=self.settings.evidence_retention_days)
        log.info("sweep.completed", run_id=run.id, **{k: v for k, v in summary.counts.items()})
        return summary

    async def check_now(self, claim_id: int, *, trigger: str = "on_demand") -> SweepSummary:
        """Check one claim now. If a sweep of the claim's account is running in this process, the check
        joins that logged-in session (its own page, the account's pacing) instead of waiting for the sweep."""
        with self.Session() as s:
            plan = self.plan(s, None, [claim_id])
            s.expunge_all()
        live = self._live.get(plan[0][0].id) if plan else None
        if live is None or live.session is None or live.stop:
            return await self.sweep(claim_ids=[claim_id], trigger=trigger, urgent=True)
        summary = SweepSummary(run_id=0)
        job = plan[0][1][0]
        with self.Session() as s:
            run = runs.start_run(s, portal_key=live.acct.portal_key, trigger=trigger, at=self.clock())
            s.commit()
        summary.run_id = run.id
        t0 = time.monotonic()
        await self._check(run.id, live, job, summary, None, urgent=True)
        summary.seconds = time.monotonic() - t0
        with self.Session() as s:
            runs.finish_run(s, run.id, at=self.clock(), status="completed" if summary.counts["checked"] else "failed",
                            counts={**summary.counts, "errors": dict(summary.errors), "joined_live_session": 1})
            s.commit()
        return summary

    def _rate_limit(self, adapter, portal_key: str) -> int | None:
        """The portal's limit as the adapter declares it, lowered by settings (never raised)."""
        declared = getattr(adapter, "rate_limit_per_minute", None)
        override = self.settings.rate_limits.get(portal_key)
        if declared and override:
            return min(declared, override)
        return declared or override

    async def _run_account(self, run_id: int, acct: PortalAccount, jobs: list[_Job],
                           breakers: dict[str, CircuitBreaker], total: asyncio.Semaphore,
                           summary: SweepSummary, progress, canary: bool = True, urgent: bool = False) -> None:
        adapter_cls = self.adapters.get(acct.portal_key)
        if adapter_cls is None:
            for job in jobs:
                self._fail(run_id, acct, job, "NoAdapter", f"no adapter registered for {acct.portal_key}",
                           False, None, summary, progress)
            return
        run = _Account(acct, adapter_cls())
        run.breaker = breakers.setdefault(acct.portal_key, CircuitBreaker(
            threshold=self.settings.breaker_threshold, clock=self.clock))
        self._live[acct.id] = run
        try:
            t0 = time.monotonic()
            reason = await self._open_session(run, summary)
            summary.timings[f"sign_in_s.{acct.portal_key}"] += time.monotonic() - t0
            if reason:
                run.stop.append(reason)
            if canary and not run.stop:
                jobs = await self._canary(run_id, run, jobs, summary, progress)
            slots = max(1, min(self.settings.concurrency_per_account, getattr(run.adapter, "max_in_flight", 1)))
            queue = _JobQueue(jobs, lambda j: _affinity(run.adapter, j.query))

            async def worker() -> None:  # one lookup in flight; takes next the job its page is set up for
                last = None
                while (job := queue.take(last)) is not None:
                    last = _affinity(run.adapter, job.query)
                    if run.stop and not urgent:  # a sign-in given up on a flaky portal: once more, later
                        await self._revive(run, summary)  # (not while someone waits for an on-demand check)
                    async with total:
                        if run.stop:
                            self._fail(run_id, acct, job, "AccountStopped", run.stop[0], True, None, summary,
                                       progress)
                            continue
                        if not run.breaker.allow():
                            self._fail(run_id, acct, job, "CircuitOpen", f"circuit open for {acct.portal_key}",
                                       True, None, summary, progress)
                            continue
                        await self._check(run_id, run, job, summary, progress, urgent=urgent)

            await asyncio.gather(*(worker() for _ in range(min(slots, len(jobs)))))
            if run.session is not None and not run.stop:
                await self._save_state(run, success=True)
        finally:
            self._live.pop(acct.id, None)
            self._write_health(run)
            if run.session is not None:
                summary.counts["requests"] += run.session.requests - run.requests_at_open[0]
                summary.counts["counted_requests"] += run.session.counted - run.requests_at_open[1]
                if run.session.pacer is not None:  # shared by the account's sessions: the total held so far
                    summary.timings[f"pacer_held_s.{acct.portal_key}"] = max(
                        summary.timings[f"pacer_held_s.{acct.portal_key}"], run.session.pacer.waited_s)
                if run.session.blocked:
                    summary.counts["blocked_actions"] += len(run.session.blocked)
                if run.stop:
                    await run.session.close()
                else:  # kept logged in for the next check of this account (keep_warm_s; 0 closes it)
                    await self.pool.park(_warm_key(acct), run.session, self.settings.keep_warm_s)

    async def _save_state(self, run: _Account, success: bool = False) -> None:
        state = await run.session.storage_state()
        with self.Session() as s:
            acct_repo.session_saved(s, self.vault, run.acct.id, state, succeeded_at=self.clock() if success else None)
            s.commit()

    def _write_health(self, run: _Account) -> None:
        b = run.breaker
        with self.Session() as s:
            acct_repo.record_run_health(s, run.acct.id, at=self.clock(), checked=run.checked, failed=run.failed,
                                        consecutive_failures=run.consecutive_failures,
                                        circuit_known=b is not None, circuit_open_since=b.opened_at if b else None,
                                        drift=run.drift)
            s.commit()

    async def _open_session(self, run: _Account, summary) -> str:
        acct, adapter = run.acct, run.adapter
        if self.settings.keep_warm_s > 0:
            warm = await self.pool.take_warm(_warm_key(acct), self.settings.keep_warm_s)
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

    async def _relogin(self, run: _Account, epoch_seen: int, summary) -> bool:
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

    async def _revive(self, run: _Account, summary) -> None:
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

    async def _login(self, run: _Account, summary, relogin: bool = False) -> tuple[bool, str]:
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
            repo.emit(s, acct.org_id, "portal.account_failed", f"account:{acct.id}", {
                "account_id": acct.id, "portal": acct.portal_key, "error": type(e).__name__,
                "evidence_ref": ev.ref if ev else None})
            s.commit()
        acct.status = "needs_attention"
        acct.last_failed_login_at = self.clock()
        summary.accounts_needing_attention.append(acct.username)
        summary.errors[f"account.{type(e).__name__}"] += 1
        log.warning("account.needs_attention", account_id=acct.id, portal=acct.portal_key, error=type(e).__name__)

    # ------------------------------------------------------------------ the canary
    async def _canary(self, run_id: int, run: _Account, jobs: list[_Job], summary, progress) -> list[_Job]:
        """Read the account's canary first. A confirmed canary that reads differently stops the account as
        drift before any other result is stored. A candidate becomes the canary once it has read the same
        way `canary_reads` times in a row; one that moves is dropped for another."""
        acct = run.acct
        with self.Session() as s:
            claim, expected = acct_repo.canary_to_read(s, acct.id)
            if claim is None:
                return jobs
            s.commit()
            job = _Job(claim.id, _query(claim, s.get(Payer, claim.payer_id), s.get(Organization, claim.org_id)))
        outcome = await self._check(run_id, run, job, summary, progress, canary_fp=expected)
        result = {"checked": "ok" if expected else "candidate"}.get(outcome, outcome)
        with self.Session() as s:
            acct_repo.record_canary_read(s, acct.id, claim.id, at=self.clock(), result=result, settle_after=(
                self.settings.canary_reads if outcome == "checked" and expected is None else None))
            s.commit()
        summary.canaries[acct.id] = result
        if outcome == "mismatch":
            run.stop.append("canary claim read differently: drift")
        elif outcome == "failed" and expected is not None:
            run.stop.append("canary claim could not be read")
        return [j for j in jobs if j.claim_id != claim.id]

    # ------------------------------------------------------------------ one claim
    async def _check(self, run_id, run: _Account, job: _Job, summary, progress,
                     canary_fp: str | None = None, urgent: bool = False) -> str:
        """Check one claim: 'checked', 'failed', or 'mismatch' (a canary read differently). `urgent`: an
        on-demand check (joined to a running sweep or on its own session): its requests pass any others in the
        account's pacer, and while it runs the others leave it a reserve (agent/pacing.py)."""
        acct, adapter, session, breaker = run.acct, run.adapter, run.session, run.breaker
        attempts = 0
        delay = self.settings.retry_backoff_s
        started = time.monotonic()
        while True:
            attempts += 1
            epoch = run.login_epoch
            async with session.lease(_affinity(adapter, job.query), urgent=urgent) as lease:
                error: PortalError | None = None
                result: ClaimStatusResult | None = None
                t_lookup = time.monotonic()
                try:
                    result = await adapter.claim_status(session, job.query)
                except PortalError as e:
                    error = e
                except Exception as e:  # noqa: BLE001 - an adapter bug fails its claim, never the sweep
                    log.error("adapter.crashed", claim_id=job.claim_id, portal=acct.portal_key, error=type(e).__name__)
                    error = AdapterCrashed(f"the adapter raised {type(e).__name__}")
                took = time.monotonic() - t_lookup
                summary.timings["lookup_s"] += took
                summary.timings[f"lookup_s.{acct.portal_key}"] += took
                if lease.blocked:  # the guard stopped a state-changing request: never trust this lookup
                    await self._blocked_action(run_id, run, job, lease.blocked, summary, progress)
                    return "failed"
                if result is not None:
                    why = unproven(job.query, result, getattr(adapter, "claim_number_key", None) or claim_number_key)
                    if why:
                        error, result = ClaimMismatch(f"{job.query.claim_ref}: {why}"), None
                if result is not None:
                    breaker.success()
                    if canary_fp is not None and repo.fingerprint(result) != canary_fp:
                        cap = await session.capture(reason="canary read differently")
                        self._fail(run_id, acct, job, "CanaryMismatch", "the canary claim read differently "
                                   "from its known status", False, cap, summary, progress, run=run, drift=True)
                        return "mismatch"
                    try:
                        await self._record(run_id, run, job, result, summary)
                    except EvidenceUnavailable as e:  # nothing stored: looked up again, or failed with reason
                        error = e
                    else:
                        summary.stored_at[job.claim_id] = time.monotonic()
                        summary.durations[job.claim_id] = summary.stored_at[job.claim_id] - started
                        if progress:
                            progress(1)
                        return "checked"
                action = "fail"
                if isinstance(error, SessionExpired):
                    summary.counts["session_expired"] += 1
                    if attempts < self.settings.max_attempts:
                        action = "relogin"
                elif isinstance(error, AccountError):
                    action = "account"
                else:
                    if isinstance(error, PortalDrift) or error.retryable:
                        self._breaker_failure(breaker, acct, error)
                    if error.retryable and attempts < self.settings.max_attempts and breaker.allow():
                        action = "retry"
                if action in ("fail", "account"):
                    cap = await session.capture(reason=type(error).__name__)
                    if action == "account" and not run.stop:
                        run.stop.append(f"{type(error).__name__}: {error}")
                        await self._account_failed(acct, error, cap, summary)
                    self._fail(run_id, acct, job, type(error).__name__, str(error), error.retryable, cap,
                               summary, progress, run=run, drift=isinstance(error, PortalDrift))
                    return "failed"
            if action == "relogin":
                if await self._relogin(run, epoch, summary):
                    continue
                self._fail(run_id, acct, job, type(error).__name__, f"{error}; logging in again failed",
                           True, None, summary, progress, run=run)
                return "failed"
            summary.counts["retries"] += 1
            await asyncio.sleep(delay)
            delay *= 2

    async def _blocked_action(self, run_id, run: _Account, job: _Job, blocked: list[dict], summary,
                              progress) -> None:
        acct = run.acct
        what = ", ".join(f"{b['method']} {b['path']}" for b in blocked)
        cap = await run.session.capture(reason="blocked_action")
        log.error("claim.blocked_action", claim_id=job.claim_id, portal=acct.portal_key,
                  requests=[f"{b['method']} {b['path']}" for b in blocked])
        ref = self._fail(run_id, acct, job, BlockedAction.__name__,
                         f"the read-only guard blocked a state-changing request: {what}", False, cap, summary,
                         progress, run=run)
        with self.Session() as s:
            repo.emit(s, acct.org_id, "portal.blocked_action", f"account:{acct.id}", {
                "account_id": acct.id, "portal": acct.portal_key, "claim_id": job.claim_id,
                "requests": [{"method": b["method"], "path": b["path"]} for b in blocked], "evidence_ref": ref})
            s.commit()

    def _breaker_failure(self, breaker: CircuitBreaker, acct: PortalAccount, e: PortalError) -> None:
        if breaker.failure():
            log.error("circuit.opened", portal=acct.portal_key, error=type(e).__name__)
            with self.Session() as s:
                repo.emit(s, acct.org_id, "portal.circuit_open", f"portal:{acct.portal_key}",
                          {"portal": acct.portal_key, "error": type(e).__name__})
                s.commit()

    async def _record(self, run_id, run: _Account, job: _Job, result: ClaimStatusResult,
                      summary: SweepSummary) -> None:
        """Store a proven result; when it changes what we know, keep the page it was read from first. A
        change whose page cannot be captured (asked twice) is not stored: EvidenceUnavailable (retryable:
        the claim is looked up again), never a status change without the page that shows it."""
        acct = run.acct
        with self.Session() as s:
            changed = repo.last_fingerprint(s, job.claim_id) != repo.fingerprint(result)
        t0 = time.monotonic()
        cap = None
        if changed:
            cap = await run.session.capture(reason="status change") or \
                await run.session.capture(reason="status change")
        summary.timings["evidence_capture_s"] += time.monotonic() - t0
        if changed and cap is None:
            summary.counts["evidence_unavailable"] += 1
            raise EvidenceUnavailable(f"claim {job.query.claim_ref}: the page the status was read from could "
                                      "not be captured")
        t0 = time.monotonic()
        with self.Session() as s:
            claim = s.get(Claim, job.claim_id)
            if cap is not None:
                ev = self.evidence.save(s, cap, portal_key=acct.portal_key, kind="status_change",
                                        org_id=acct.org_id, claim_id=claim.id, account_id=acct.id)
                result.evidence_ref = ev.ref
                summary.counts["evidence_kept"] += 1
            repo.record_result(s, claim, result, account_id=acct.id, sweep_run_id=run_id,
                               recheck_hours=self.settings.recheck_hours)
            s.commit()
        summary.timings["store_s"] += time.monotonic() - t0
        run.checked += 1
        run.consecutive_failures = 0
        summary.counts["checked"] += 1
        cat = result.status_category
        bucket = ("rejected" if result.is_rejection else "denied" if cat == "F2"
                  else "paid" if cat in ("F1", "F3", "F4") else "pending")
        summary.counts[bucket] += 1
        for k in repo.denial_keys(result):
            if k[1] == "denial":
                summary.denial_carcs[k[3]] += 1

    def _fail(self, run_id, acct, job: _Job, error_type: str, message: str, retryable: bool, cap, summary,
              progress, run: _Account | None = None, drift: bool = False) -> str | None:
        with self.Session() as s:
            claim = s.get(Claim, job.claim_id)
            ev = self.evidence.save(s, cap, portal_key=acct.portal_key, kind="failure", org_id=acct.org_id,
                                    claim_id=claim.id, account_id=acct.id) if cap else None
            ref = ev.ref if ev else None
            repo.record_check_failure(s, claim, sweep_run_id=run_id, at=self.clock(), error_type=error_type,
                                      message=message, retryable=retryable, evidence_ref=ref)
            s.commit()
        if run is not None:
            run.failed += 1
            run.consecutive_failures += 1
            if drift and run.drift is None:
                run.drift = (f"{error_type}: {message}", ref)
        summary.counts["failed"] += 1
        summary.errors[error_type] += 1
        log.info("claim.check_failed", claim_id=job.claim_id, portal=acct.portal_key, error=error_type,
                 evidence_ref=ref)
        if progress:
            progress(1)
        return ref


class AdapterCrashed(PortalError):
    """The adapter raised something outside the contract's errors (a bug): the claim fails, with evidence."""


class EvidenceUnavailable(RetryableError):
    """A status change was read but its page could not be captured: nothing is stored (DESIGN §4: every
    status change keeps its evidence); the claim is looked up again, or fails with this reason."""

    scope = "claim"


def _affinity(adapter, q: ClaimQuery) -> Hashable | None:
    """What a page must be set up for to look this claim up without reloading (the adapter's
    `affinity(query)`, e.g. organization and payer); None when the adapter does not care."""
    fn = getattr(adapter, "affinity", None)
    return fn(q) if fn is not None else None


class _JobQueue:
    """An account's jobs, in plan order within each affinity group. A worker takes next a job of the
    group its page was last set up for; otherwise the first job of the group with the most jobs left, so
    the workers spread over the groups and each page reloads as rarely as possible."""

    def __init__(self, jobs: list[_Job], key: Callable[[_Job], Hashable | None]) -> None:
        self._groups: dict[Hashable | None, deque[_Job]] = {}
        for j in jobs:
            self._groups.setdefault(key(j), deque()).append(j)
        self._taken: Counter = Counter()  # workers currently set up for each group (spread them out)

    def take(self, last: Hashable | None = None) -> _Job | None:
        if last in self._groups and self._groups[last]:
            return self._next(last)
        if last is not None:
            self._taken[last] -= 1
        left = [k for k, q in self._groups.items() if q]
        if not left:
            return None
        # the group with the most jobs per worker already on it
        k = max(left, key=lambda k: len(self._groups[k]) / (1 + self._taken[k]))
        self._taken[k] += 1
        return self._next(k)

    def _next(self, k: Hashable | None) -> _Job:
        job = self._groups[k].popleft()
        if not self._groups[k]:
            del self._groups[k]
        return job


def _query(c: Claim, payer: Payer, org: Organization) -> ClaimQuery:
    return ClaimQuery(claim_ref=c.external_id, payer_key=payer.key, payer_claim_number=c.payer_claim_number,
                      member_id=c.member_id, patient_dob=c.patient_dob,
                      patient_first_name=c.patient_first_name, patient_last_name=c.patient_last_name,
                      dos_from=c.dos_from, dos_to=c.dos_to, billing_npi=c.billing_npi,
                      billed=Decimal(c.billed_cents) / 100, org_external_id=org.external_id)
