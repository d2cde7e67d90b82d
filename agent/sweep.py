"""One sweep: for each portal account, one guarded browser context and one login reused for all its due
claims; bounded concurrency per account and overall; retries with backoff for retryable errors; re-login
on session expiry; the lockout guard; a circuit breaker per portal; evidence on every failure.

The runner does not care who calls it (CLI, APScheduler, an API on-demand check, a distributed worker):
`SweepRunner.sweep(...)` is the whole job. Logs carry ids and error types, never PHI or secrets.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import structlog

from agent.browser import BrowserPool, BrowserSession
from agent.evidence import EvidenceStore
from agent.guards import CircuitBreaker, LockoutGuard
from core.config import Settings
from portals.base import (
    AccountError,
    AccountLocked,
    ClaimQuery,
    LoginRejected,
    MfaFailed,
    PortalDrift,
    PortalError,
    SessionExpired,
    registry,
)
from store import accounts as acct_repo
from store import repo
from store.models import CheckFailure, Claim, PortalAccount, SweepRun

log = structlog.get_logger("portal_agent.sweep")

FAILED_LOGIN_ERRORS = (LoginRejected, MfaFailed, AccountLocked)


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


@dataclass
class _Job:
    claim_id: int
    query: ClaimQuery


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
        self.guard = LockoutGuard(window=_minutes(settings.lockout_window_minutes), clock=clock)

    # ------------------------------------------------------------------ planning
    def _plan(self, s, portal_key: str | None, claim_ids: list[int] | None
              ) -> list[tuple[PortalAccount, list[_Job]]]:
        now = self.clock()
        if claim_ids is not None:
            claims = repo.claims_by_ids(s, claim_ids)
        else:
            claims = repo.claims_due(s, now=now)
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
            q = ClaimQuery(claim_ref=c.external_id, payer_key=payer.key, payer_claim_number=c.payer_claim_number,
                           member_id=c.member_id, patient_dob=c.patient_dob,
                           patient_first_name=c.patient_first_name, patient_last_name=c.patient_last_name,
                           dos_from=c.dos_from, dos_to=c.dos_to, billing_npi=c.billing_npi,
                           billed=Decimal(c.billed_cents) / 100, org_external_id=orgs[c.org_id].external_id)
            plan.setdefault(acct.id, (acct, []))[1].append(_Job(c.id, q))
        return list(plan.values())

    # ------------------------------------------------------------------ the sweep
    async def sweep(self, *, portal_key: str | None = None, claim_ids: list[int] | None = None,
                    trigger: str = "cli", progress: Callable[[int], None] | None = None,
                    on_plan: Callable[[int], None] | None = None) -> SweepSummary:
        started = self.clock()
        with self.Session() as s:
            run = SweepRun(portal_key=portal_key, trigger=trigger, started_at=started, status="running", counts={})
            s.add(run)
            s.commit()
            plan = self._plan(s, portal_key, claim_ids)
            s.expunge_all()
        summary = SweepSummary(run_id=run.id)
        if on_plan:
            on_plan(sum(len(jobs) for _, jobs in plan))
        breakers: dict[str, CircuitBreaker] = {}
        total = asyncio.Semaphore(self.settings.concurrency_total)
        await asyncio.gather(*(self._run_account(run.id, a, jobs, breakers, total, summary, progress)
                               for a, jobs in plan))
        finished = self.clock()
        summary.seconds = (finished - started).total_seconds()
        with self.Session() as s:
            run = s.get(SweepRun, run.id)
            run.finished_at = finished
            run.status = "failed" if summary.counts["failed"] and not summary.counts["checked"] else "completed"
            run.counts = {**summary.counts, "errors": dict(summary.errors)}
            for pk, b in breakers.items():
                if b.trips:
                    run.counts[f"circuit_open.{pk}"] = b.trips
            if plan:
                org_id = plan[0][0].org_id
                repo.emit(s, org_id, "sweep.completed", f"sweep:{run.id}", {"run_id": run.id, "counts": run.counts})
            s.commit()
        log.info("sweep.completed", run_id=run.id, **{k: v for k, v in summary.counts.items()})
        return summary

    async def _run_account(self, run_id: int, acct: PortalAccount, jobs: list[_Job],
                           breakers: dict[str, CircuitBreaker], total: asyncio.Semaphore,
                           summary: SweepSummary, progress) -> None:
        adapter_cls = self.adapters.get(acct.portal_key)
        if adapter_cls is None:
            for job in jobs:
                self._fail(run_id, acct, job, "NoAdapter", f"no adapter registered for {acct.portal_key}",
                           False, None, summary, progress)
            return
        adapter = adapter_cls()
        breaker = breakers.setdefault(acct.portal_key, CircuitBreaker(
            threshold=self.settings.breaker_threshold, clock=self.clock))
        session: BrowserSession | None = None
        login_lock = asyncio.Lock()
        account_stop: list[str] = []  # set once the account must stop (reason)
        try:
            session, reason = await self._open_session(adapter, acct, summary, breaker)
            if reason:
                account_stop.append(reason)
            per_account = asyncio.Semaphore(max(1, min(self.settings.concurrency_per_account,
                                                       getattr(adapter, "max_in_flight", 1))))

            async def relogin() -> bool:
                async with login_lock:
                    if account_stop:
                        return False
                    ok, why = await self._login(adapter, session, acct, summary, relogin=True, breaker=breaker)
                    if not ok:
                        account_stop.append(why)
                    return ok

            async def one(job: _Job) -> None:
                async with per_account, total:
                    if account_stop:
                        self._fail(run_id, acct, job, "AccountStopped", account_stop[0], True, None, summary,
                                   progress)
                        return
                    if not breaker.allow():
                        self._fail(run_id, acct, job, "CircuitOpen", f"circuit open for {acct.portal_key}",
                                   True, None, summary, progress)
                        return
                    await self._check(run_id, adapter, session, acct, job, breaker, relogin, account_stop,
                                      summary, progress)

            await asyncio.gather(*(one(j) for j in jobs))
            if session is not None and not account_stop:
                state = await session.storage_state()
                with self.Session() as s:
                    a = s.get(PortalAccount, acct.id)
                    acct_repo.save_state(self.vault, a, state)
                    a.last_success_at = self.clock()
                    s.commit()
        finally:
            if session is not None:
                summary.counts["requests"] += session.requests
                if session.blocked:
                    summary.counts["blocked_actions"] += len(session.blocked)
                await session.close()

    async def _open_session(self, adapter, acct: PortalAccount, summary, breaker: CircuitBreaker
                            ) -> tuple[BrowserSession | None, str]:
        state = acct_repo.saved_state(self.vault, acct)
        session = await self.pool.new_session(acct.base_url, adapter.allowed_writes, storage_state=state)
        if state is not None:
            try:
                if await adapter.verify(session):
                    summary.counts["sessions_restored"] += 1
                    return session, ""
            except PortalError:
                pass
            summary.counts["sessions_stale"] += 1
        ok, why = await self._login(adapter, session, acct, summary, breaker=breaker)
        return session, "" if ok else why

    async def _login(self, adapter, session: BrowserSession, acct: PortalAccount, summary,
                     relogin: bool = False, breaker: CircuitBreaker | None = None) -> tuple[bool, str]:
        if breaker is not None and not breaker.allow():
            return False, f"circuit open for {acct.portal_key}"
        allowed, why = self.guard.password_allowed(acct.status, acct.last_failed_login_at)
        if not allowed:
            summary.accounts_needing_attention.append(acct.username)
            return False, f"needs attention: {why}"
        creds = acct_repo.credentials(self.vault, acct)
        try:
            await adapter.login(session, creds)
        except AccountError as e:
            await self._account_failed(acct, e, session, summary)
            return False, f"{type(e).__name__}: {e}"
        except PortalError as e:
            summary.errors[f"login.{type(e).__name__}"] += 1
            if breaker is not None and (isinstance(e, PortalDrift) or e.retryable):
                self._breaker_failure(breaker, acct, e)
            cap = await session.capture(reason=f"login {type(e).__name__}")
            if cap:
                with self.Session() as s:
                    self.evidence.save(s, cap, portal_key=acct.portal_key, kind="failure", org_id=acct.org_id,
                                       account_id=acct.id)
                    s.commit()
            return False, f"login failed: {type(e).__name__}"
        summary.counts["relogins" if relogin else "logins"] += 1
        with self.Session() as s:
            a = s.get(PortalAccount, acct.id)
            a.last_login_at = self.clock()
            if a.status == "needs_attention":
                acct_repo.clear_attention(a)
            s.commit()
        acct.status = "active"
        return True, ""

    async def _account_failed(self, acct: PortalAccount, e: AccountError, session: BrowserSession,
                              summary) -> None:
        cap = await session.capture(reason=type(e).__name__)
        with self.Session() as s:
            a = s.get(PortalAccount, acct.id)
            acct_repo.needs_attention(a, f"{type(e).__name__}: {e}", self.clock(),
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

    async def _check(self, run_id, adapter, session, acct, job: _Job, breaker, relogin, account_stop,
                     summary, progress) -> None:
        attempts = 0
        delay = self.settings.retry_backoff_s
        while True:
            attempts += 1
            try:
                result = await adapter.claim_status(session, job.query)
            except SessionExpired as e:
                summary.counts["session_expired"] += 1
                if attempts < self.settings.max_attempts and await relogin():
                    continue
                await self._fail_with_evidence(run_id, acct, job, e, session, summary, progress)
                return
            except AccountError as e:
                if not account_stop:
                    account_stop.append(f"{type(e).__name__}: {e}")
                    await self._account_failed(acct, e, session, summary)
                await self._fail_with_evidence(run_id, acct, job, e, session, summary, progress)
                return
            except PortalError as e:
                if isinstance(e, PortalDrift) or e.retryable:
                    self._breaker_failure(breaker, acct, e)
                if e.retryable and attempts < self.settings.max_attempts and breaker.allow():
                    summary.counts["retries"] += 1
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                await self._fail_with_evidence(run_id, acct, job, e, session, summary, progress)
                return
            breaker.success()
            self._record(run_id, acct, job, result, summary)
            if progress:
                progress(1)
            return

    def _breaker_failure(self, breaker: CircuitBreaker, acct: PortalAccount, e: PortalError) -> None:
        if breaker.failure():
            log.error("circuit.opened", portal=acct.portal_key, error=type(e).__name__)
            with self.Session() as s:
                repo.emit(s, acct.org_id, "portal.circuit_open", f"portal:{acct.portal_key}",
                          {"portal": acct.portal_key, "error": type(e).__name__})
                s.commit()

    def _record(self, run_id, acct, job: _Job, result, summary: SweepSummary) -> None:
        with self.Session() as s:
            claim = s.get(Claim, job.claim_id)
            repo.record_result(s, claim, result, account_id=acct.id, sweep_run_id=run_id,
                               recheck_hours=self.settings.recheck_hours)
            claim.last_error = None
            s.commit()
        summary.counts["checked"] += 1
        cat = result.status_category
        bucket = ("rejected" if result.is_rejection else "denied" if cat == "F2"
                  else "paid" if cat in ("F1", "F3", "F4") else "pending")
        summary.counts[bucket] += 1
        for k in repo.denial_keys(result):
            if k[1] == "denial":
                summary.denial_carcs[k[3]] += 1

    async def _fail_with_evidence(self, run_id, acct, job, e: PortalError, session, summary, progress) -> None:
        cap = await session.capture(reason=type(e).__name__) if session else None
        self._fail(run_id, acct, job, type(e).__name__, str(e), e.retryable, cap, summary, progress)

    def _fail(self, run_id, acct, job: _Job, error_type: str, message: str, retryable: bool, cap, summary,
              progress) -> None:
        with self.Session() as s:
            claim = s.get(Claim, job.claim_id)
            ev = self.evidence.save(s, cap, portal_key=acct.portal_key, kind="failure", org_id=acct.org_id,
                                    claim_id=claim.id, account_id=acct.id) if cap else None
            s.add(CheckFailure(org_id=claim.org_id, claim_id=claim.id, sweep_run_id=run_id, at=self.clock(),
                               error_type=error_type, message=message[:2000], retryable=retryable,
                               evidence_ref=ev.ref if ev else None))
            claim.last_error = error_type
            s.commit()
        summary.counts["failed"] += 1
        summary.errors[error_type] += 1
        log.info("claim.check_failed", claim_id=job.claim_id, portal=acct.portal_key, error=error_type)
        if progress:
            progress(1)


def _minutes(n: int):
    from datetime import timedelta

    return timedelta(minutes=n)
