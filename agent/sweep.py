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

This module is the orchestration (the run, each account's workers, the canary, one claim's lookups); the
rest sits beside it: agent/plan.py (which account reads which claims; each account's job queue),
agent/signin.py (the sign-in lifecycle), agent/retry.py (what a failed lookup does next: a pure decision),
agent/outcomes.py (what is written to the store).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from agent.browser import BrowserPool
from agent.evidence import EvidenceStore
from agent.guards import CircuitBreaker, LockoutGuard
from agent.outcomes import EvidenceUnavailable, Outcomes
from agent.plan import Job, JobQueue, affinity, claim_query
from agent.plan import plan as plan_jobs
from agent.proof import claim_number_key, unproven
from agent.retry import counts_against_breaker, decide
from agent.signin import AccountRun, SignIn, warm_key
from core.claims import ClaimStatusResult
from core.config import Settings
from core.errors import ClaimMismatch, PortalDrift, PortalError, SessionExpired
from portals.base import registry
from store import accounts as acct_repo
from store import events, repo, runs
from store.models import Organization, Payer, PortalAccount

log = structlog.get_logger("portal_agent.sweep")

# The names this module had before the split (tests/agent/test_job_queue.py imports _JobQueue from here).
_Job, _JobQueue, _Account, _affinity, _query = Job, JobQueue, AccountRun, affinity, claim_query


def _now() -> datetime:
    return datetime.now(UTC)


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
    retries_by_reason: Counter = field(default_factory=Counter)  # error type -> lookups retried after it


class SweepRunner(SignIn, Outcomes):
    """One sweep run's orchestration: plan, then per account open the session (agent/signin.py), read the
    canary, and run the lookups (`_check`: retries decided by agent/retry.py, outcomes written by
    agent/outcomes.py)."""

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
        self._live: dict[int, AccountRun] = {}  # account id -> its run in progress (for on-demand checks)

    def checked_live(self, account_id: int) -> int | None:
        """Claims the run in progress of this account has checked so far; None when it has none."""
        run = self._live.get(account_id)
        return None if run is None else run.checked

    # ------------------------------------------------------------------ planning
    def plan(self, s, portal_key: str | None, claim_ids: list[int] | None
             ) -> list[tuple[PortalAccount, list[Job]]]:
        """Which account reads which claims: the due claims (or `claim_ids`), of `portal_key` or every portal."""
        return plan_jobs(s, now=self.clock(), limit=self.settings.sweep_max_claims, portal_key=portal_key,
                         claim_ids=claim_ids)

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
        counts = {**summary.counts, "errors": dict(summary.errors),
                  "retries_by_reason": dict(summary.retries_by_reason)}
        counts.update({f"circuit_open.{pk}": b.trips for pk, b in breakers.items() if b.trips})
        with self.Session() as s:
            run = runs.finish_run(s, run.id, at=finished, counts=counts, status=(
                "failed" if summary.counts["failed"] and not summary.counts["checked"] else "completed"))
            for org_id in sorted({acct.org_id for acct, _ in plan}):  # each event belongs to one organization
                events.emit(s, org_id, events.SweepCompleted(run_id=run.id, counts=run.counts))
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
                            counts={**summary.counts, "errors": dict(summary.errors),
                                    "retries_by_reason": dict(summary.retries_by_reason), "joined_live_session": 1})
            s.commit()
        return summary

    async def _run_account(self, run_id: int, acct: PortalAccount, jobs: list[Job],
                           breakers: dict[str, CircuitBreaker], total: asyncio.Semaphore,
                           summary: SweepSummary, progress, canary: bool = True, urgent: bool = False) -> None:
        adapter_cls = self.adapters.get(acct.portal_key)
        if adapter_cls is None:
            for job in jobs:
                self._fail(run_id, acct, job, "NoAdapter", f"no adapter registered for {acct.portal_key}",
                           False, None, summary, progress)
            return
        run = AccountRun(acct, adapter_cls())
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
            queue = JobQueue(jobs, lambda j: affinity(run.adapter, j.query))

            async def worker() -> None:  # one lookup in flight; takes next the job its page is set up for
                last = None
                while (job := queue.take(last)) is not None:
                    last = affinity(run.adapter, job.query)
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
                    await self.pool.park(warm_key(acct), run.session, self.settings.keep_warm_s)

    # ------------------------------------------------------------------ the canary
    async def _canary(self, run_id: int, run: AccountRun, jobs: list[Job], summary, progress) -> list[Job]:
        """Read the account's canary first. A confirmed canary that reads differently stops the account as
        drift before any other result is stored. A candidate becomes the canary once it has read the same
        way `canary_reads` times in a row; one that moves is dropped for another."""
        acct = run.acct
        with self.Session() as s:
            claim, expected = acct_repo.canary_to_read(s, acct.id)
            if claim is None:
                return jobs
            s.commit()
            job = Job(claim.id, claim_query(claim, s.get(Payer, claim.payer_id), s.get(Organization, claim.org_id)))
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
    async def _check(self, run_id, run: AccountRun, job: Job, summary, progress,
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
            async with session.lease(affinity(adapter, job.query), urgent=urgent) as lease:
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
                if isinstance(error, SessionExpired):
                    summary.counts["session_expired"] += 1
                if counts_against_breaker(error):
                    self._breaker_failure(breaker, acct, error)
                decision = decide(error, attempts, self.settings.max_attempts, breaker.allow())
                if decision.action in ("fail", "account"):
                    cap = await session.capture(reason=type(error).__name__)
                    if decision.action == "account" and not run.stop:
                        run.stop.append(f"{type(error).__name__}: {error}")
                        await self._account_failed(acct, error, cap, summary)
                    self._fail(run_id, acct, job, type(error).__name__, str(error), error.retryable, cap,
                               summary, progress, run=run, drift=isinstance(error, PortalDrift))
                    return "failed"
            if decision.action == "relogin":
                if await self._relogin(run, epoch, summary):
                    continue
                self._fail(run_id, acct, job, type(error).__name__, f"{error}; logging in again failed",
                           True, None, summary, progress, run=run)
                return "failed"
            summary.counts["retries"] += 1
            summary.retries_by_reason[decision.reason] += 1
            await asyncio.sleep(delay)
            delay *= 2


class AdapterCrashed(PortalError):
    """The adapter raised something outside the contract's errors (a bug): the claim fails, with evidence."""

