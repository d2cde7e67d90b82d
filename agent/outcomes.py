"""What a sweep writes down, through the store's functions: a proven result (with the page it was read from
when it changes what we know), a claim's failure (with its failing page), a blocked state-changing
request, a circuit that opened, and each account's health at the end of its run.

`Outcomes` is a mixin of `SweepRunner` (agent/sweep.py): it uses the runner's settings, store sessions,
evidence store and clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from agent.evidence import EvidenceStore
from agent.guards import CircuitBreaker
from agent.plan import Job
from agent.signin import AccountRun
from core.claims import ClaimStatusResult
from core.config import Settings
from core.errors import BlockedAction, PortalError, RetryableError
from store import accounts as acct_repo
from store import events, repo
from store.models import Claim, PortalAccount

if TYPE_CHECKING:
    from agent.sweep import SweepSummary

log = structlog.get_logger("portal_agent.sweep")


class EvidenceUnavailable(RetryableError):
    """A status change was read but its page could not be captured: nothing is stored (DESIGN §4: every
    status change keeps its evidence); the claim is looked up again, or fails with this reason."""

    scope = "claim"


class Outcomes:
    settings: Settings
    Session: Callable
    evidence: EvidenceStore
    clock: Callable[[], datetime]

    async def _record(self, run_id, run: AccountRun, job: Job, result: ClaimStatusResult,
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

    def _fail(self, run_id, acct, job: Job, error_type: str, message: str, retryable: bool, cap, summary,
              progress, run: AccountRun | None = None, drift: bool = False,
              event: Callable[[str | None], events.Event] | None = None) -> str | None:
        with self.Session() as s:
            claim = s.get(Claim, job.claim_id)
            ev = self.evidence.save(s, cap, portal_key=acct.portal_key, kind="failure", org_id=acct.org_id,
                                    claim_id=claim.id, account_id=acct.id) if cap else None
            ref = ev.ref if ev else None
            repo.record_check_failure(s, claim, sweep_run_id=run_id, at=self.clock(), error_type=error_type,
                                      message=message, retryable=retryable, evidence_ref=ref)
            if event is not None:
                events.emit(s, acct.org_id, event(ref))
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

    async def _blocked_action(self, run_id, run: AccountRun, job: Job, blocked: list[dict], summary,
                              progress) -> None:
        acct = run.acct
        what = ", ".join(f"{b['method']} {b['path']}" for b in blocked)
        cap = await run.session.capture(reason="blocked_action")
        log.error("claim.blocked_action", claim_id=job.claim_id, portal=acct.portal_key,
                  requests=[f"{b['method']} {b['path']}" for b in blocked])
        def event(ref: str | None) -> events.Event:  # written with the failure, in its transaction
            return events.PortalBlockedAction(
                account_id=acct.id, portal=acct.portal_key, claim_id=job.claim_id, evidence_ref=ref,
                requests=[{"method": b["method"], "path": b["path"]} for b in blocked])

        self._fail(run_id, acct, job, BlockedAction.__name__,
                   f"the read-only guard blocked a state-changing request: {what}", False, cap, summary,
                   progress, run=run, event=event)

    def _breaker_failure(self, breaker: CircuitBreaker, acct: PortalAccount, e: PortalError) -> None:
        if breaker.failure():
            log.error("circuit.opened", portal=acct.portal_key, error=type(e).__name__)
            with self.Session() as s:
                events.emit(s, acct.org_id, events.PortalCircuitOpen(portal=acct.portal_key, error=type(e).__name__))
                s.commit()

    def _write_health(self, run: AccountRun) -> None:
        b = run.breaker
        with self.Session() as s:
            acct_repo.record_run_health(s, run.acct.id, at=self.clock(), checked=run.checked, failed=run.failed,
                                        consecutive_failures=run.consecutive_failures,
                                        circuit_known=b is not None, circuit_open_since=b.opened_at if b else None,
                                        drift=run.drift)
            s.commit()
