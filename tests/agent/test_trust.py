"""Trust (DESIGN §4): read-only by construction, proof of what was read, evidence for every status change,
portal health and the canary. Real Chromium against the sandbox portals, real SQLite."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rich.console import Console
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from agent.pacing import TokenBucket
from agent.proof import claim_number_key, unproven
from core.claims import ClaimQuery, ClaimStatusResult
from core.clock import ManualClock
from portal_agent.cli import app
from portals.base import registry
from store import repo
from store.models import (
    AuditEntry,
    CheckFailure,
    Claim,
    Evidence,
    OutboxEvent,
    Payer,
    PortalAccount,
    StatusObservation,
)
from tests.waiting import until


def _ids(rt, portal: str | None = None, **where) -> list[int]:
    with rt.Session() as s:
        q = select(Claim.id).join(Payer, Payer.id == Claim.payer_id)
        if portal:
            q = q.where(Payer.portal_key == portal)
        for k, v in where.items():
            q = q.where(getattr(Claim, k) == v)
        return list(s.scalars(q.order_by(Claim.id)))


def _truth_by_pcn(sandbox) -> dict[str, dict]:
    return {c["pcn"]: c for c in sandbox.ground_truth()["claims"] if c["visible"]}


# ---------------------------------------------------------------- read-only by construction
def _faulty(base: type) -> type:
    """An adapter with the bug browser agents have shipped: after reading, it 'helps' by submitting an
    appeal and voiding the claim (medicaid's "Submit for Review" and "Void Claim" beside the data)."""

    class Faulty(base):
        async def claim_status(self, session, q):
            result = await super().claim_status(session, q)
            page = await session.page()
            page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
            claim_url = page.url
            for button in ("Submit for Review", "Void Claim"):
                try:
                    await page.goto(claim_url)  # (again: the blocked POST leaves an error page)
                    await page.locator(f"input[type=submit][value='{button}']").first.click(timeout=5_000)
                    await page.wait_for_url(lambda url: url != claim_url, timeout=5_000)
                except Exception:  # noqa: BLE001 - the guard aborts the POST: the navigation fails
                    pass
            return result

    return Faulty


@pytest.mark.timeout(600)
async def test_faulty_adapter_is_blocked_and_nothing_reaches_the_portal(sandbox, onboarded):
    rt = onboarded
    truth = _truth_by_pcn(sandbox)
    with rt.Session() as s:
        denied = [c.id for c in s.scalars(select(Claim).join(Payer, Payer.id == Claim.payer_id).where(
            Payer.portal_key == "medicaid")) if truth[c.external_id]["status_category"] == "F2"][:2]
    assert denied
    before = sandbox.control.get("/control/writes").json()
    adapters = {**registry(), "medicaid": _faulty(registry()["medicaid"])}
    summary = await rt.runner(adapters=adapters).sweep(claim_ids=denied, trigger="test")
    await rt.aclose()
    after = sandbox.control.get("/control/writes").json()
    assert after == before  # the sandbox received no state-changing request
    assert summary.counts["checked"] == 0
    assert summary.errors["BlockedAction"] == len(denied)
    assert summary.counts["blocked_actions"] == 2 * len(denied)  # both buttons, every claim
    with rt.Session() as s:
        failures = list(s.scalars(select(CheckFailure).where(CheckFailure.claim_id.in_(denied))))
        assert {f.error_type for f in failures} == {"BlockedAction"}
        assert all("POST /Claims/SubmitForReview.aspx" in f.message and "POST /Claims/VoidClaim.aspx" in f.message
                   for f in failures)
        assert all(f.evidence_ref for f in failures)  # the page is kept
        # the result the faulty adapter returned was discarded
        assert s.scalar(select(func.count()).select_from(StatusObservation)
                        .where(StatusObservation.claim_id.in_(denied))) == 0
        events = [e for e in s.scalars(select(OutboxEvent)) if e.event_type == "portal.blocked_action"]
        assert len(events) == len(denied)


@pytest.mark.timeout(900)
async def test_a_full_sweep_sends_nothing_but_login_mfa_and_search(sandbox, onboarded):
    rt = onboarded
    sandbox.control.post("/control/counters/reset")
    summary = await rt.runner().sweep(claim_ids=_ids(rt), trigger="test")
    await rt.aclose()
    assert summary.counts["failed"] == 0, dict(summary.errors)
    assert summary.counts["blocked_actions"] == 0
    assert sandbox.control.get("/control/writes").json() == []
    counters = sandbox.counters()
    assert not any(k.endswith("state_changing_requests") and v for k, v in counters.items())


# ---------------------------------------------------------------- proof of what was read
def _q(**kw) -> ClaimQuery:
    base = dict(claim_ref="PCN1", payer_key="p", payer_claim_number="NS-0012-345", member_id="M123",
                dos_from=datetime(2026, 9, 1).date(), dos_to=datetime(2026, 9, 1).date(), billing_npi="1",
                billed=Decimal("120.00"))
    return ClaimQuery(**{**base, **kw})


def _r(**kw) -> ClaimStatusResult:
    base = dict(claim_ref="PCN1", portal_key="p", observed_at=datetime.now(UTC), status_category="F1",
                status_code="1", payer_claim_number="NS0012345", billed=Decimal("120.00"), raw_label="Paid",
                shown_member_id="m123", shown_dos_from=datetime(2026, 9, 1).date(),
                shown_dos_to=datetime(2026, 9, 1).date(), shown_claim_number="NS-0012-345",
                shown_billed=Decimal("120.00"))
    return ClaimStatusResult(**{**base, **kw})


def test_the_runner_refuses_a_result_that_does_not_prove_its_claim():
    assert unproven(_q(), _r()) is None
    assert claim_number_key("ns-0012 345") == claim_number_key("NS0012345")
    assert "member" in unproven(_q(), _r(shown_member_id="M124"))
    assert "dates" in unproven(_q(), _r(shown_dos_from=datetime(2026, 9, 2).date(),
                                        shown_dos_to=datetime(2026, 9, 2).date()))
    assert "billed" in unproven(_q(), _r(shown_billed=Decimal("121.00")))
    assert "claim number" in unproven(_q(), _r(payer_claim_number="NS0012346"))
    assert "another claim reference" in unproven(_q(), _r(claim_ref="PCN2"))
    assert "claim number shown" in unproven(_q(), _r(shown_claim_number="NS-0012-346"))
    assert "neither" in unproven(_q(), _r(shown_member_id=None, shown_claim_number=None, payer_claim_number=None))
    # the normalized claim number alone proves nothing: it is the adapter's word, not what the page showed
    assert "neither" in unproven(_q(), _r(shown_member_id=None, shown_claim_number=None))
    # a rejection has no payer claim number: the member id and dates still prove it
    assert unproven(_q(payer_claim_number=None), _r(payer_claim_number=None, shown_claim_number=None)) is None


def _most_in_a_window(stamps: list[float], window: float) -> int:
    return max(sum(1 for t in stamps if a <= t < a + window) for a in stamps)


# The pacer's tests run on a ManualClock: virtual time that moves only from timer to timer, so a window of a
# second (or a minute) takes no wall time and every figure below is exact, whatever the machine is doing.
async def _sweep_send_times(bucket: TokenBucket, clock: ManualClock, requests: int) -> list[float]:
    """A sweep's requests one after another through the bucket: when each was let go (clock seconds)."""
    t0 = clock.monotonic()
    stamps: list[float] = []

    async def sweep() -> None:
        for _ in range(requests):
            await bucket.acquire()
            stamps.append(clock.monotonic() - t0)

    await clock.run(sweep())
    return stamps


async def test_token_bucket_stays_under_the_limit():
    clock = ManualClock()
    bucket = TokenBucket(600, burst=4, margin=4, clock=clock)  # 596 a minute: ~9.9 a second
    stamps = await _sweep_send_times(bucket, clock, 24)
    # the first `burst` go at once, then one every 1/rate seconds
    assert stamps[:4] == [0.0] * 4
    gaps = [b - a for a, b in zip(stamps[3:], stamps[4:], strict=False)]
    assert gaps == pytest.approx([1 / bucket.rate_per_s] * 20, abs=1e-6)
    # in any one-second window, at most burst + rate
    assert _most_in_a_window(stamps, 1.0) <= 4 + bucket.rate_per_s


async def test_token_bucket_serves_an_urgent_request_before_the_queued_ones():
    """An on-demand check joining a sweep at the limit: its request waits for the next token, not for
    every request the sweep has queued; the budget (sent per second) stays the same."""
    clock = ManualClock()
    bucket = TokenBucket(120 + 4, burst=4, margin=4, clock=clock)  # 2 a second
    order: list[str] = []

    async def one(name: str, urgent: bool = False) -> None:
        await bucket.acquire(urgent=urgent)
        order.append(name)

    t0 = clock.monotonic()
    sweep = [asyncio.create_task(one(f"sweep{i}")) for i in range(10)]  # 4 at once, 6 queued
    await clock.advance(0.05)
    await clock.run(one("check", urgent=True))
    waited = clock.monotonic() - t0 - 0.05
    await clock.run(asyncio.gather(*sweep))
    assert order[:4] == ["sweep0", "sweep1", "sweep2", "sweep3"]
    assert order[4] == "check" and order[5:] == [f"sweep{i}" for i in range(4, 10)]
    assert waited == pytest.approx(0.5 - 0.05)  # the next token (one every 0.5 s), not the six queued (3 s)
    assert bucket.sent == 11 and clock.monotonic() - t0 == pytest.approx((11 - 4) / bucket.rate_per_s)


async def test_token_bucket_never_sends_more_than_the_limit_in_one_window():
    """The portal counts a sliding window: a burst spent at the start is paid for by the end of the window
    (the bucket alone would let burst + rate x window through). A 1-second window stands in for the minute."""
    clock = ManualClock()
    bucket = TokenBucket(24 + 2, burst=6, margin=2, window_s=1.0, clock=clock)  # at most 24 a second, 6 at once
    stamps = await _sweep_send_times(bucket, clock, 50)
    assert stamps[:6] == [0.0] * 6  # the burst: at once
    assert _most_in_a_window(stamps, 1.0) == 24
    # the bucket alone would send the 25th at (25 - 6) / 24 = 0.79 s: the window holds it to 1 s
    assert stamps[23] < 0.79 and stamps[24] == pytest.approx(1.0) and stamps[48] == pytest.approx(2.0)


async def test_token_bucket_debit_delays_the_next_requests():
    """A request the portal counted without a token (a redirect's next page) is paid for by the requests
    after it: the bucket goes into debt."""
    clock = ManualClock()
    bucket = TokenBucket(60 * 4 + 4, burst=2, margin=4, clock=clock)  # 4 a second
    await bucket.acquire()
    await bucket.acquire()  # the burst is spent
    for _ in range(3):
        bucket.debit()  # three redirects followed
    t0 = clock.monotonic()
    await clock.run(bucket.acquire())
    # the three debited and this one: 4 tokens at 4 a second (without the debt: one token, 0.25 s)
    assert clock.monotonic() - t0 == pytest.approx(1.0)
    assert bucket.sent == 6


async def _check_joined_to_a_sweep(reserve: int) -> tuple[list[float], float, int]:
    """A sweep keeps the bucket empty; an on-demand check's requests come one after another (each after
    the previous response): (the check's waits, when the sweep finished, requests sent)."""
    clock = ManualClock()
    bucket = TokenBucket(60 * 10 + 4, burst=4, margin=4, reserve=reserve, clock=clock)  # 10 a second
    t0 = clock.monotonic()
    sweep = [asyncio.create_task(bucket.acquire()) for _ in range(30)]
    await clock.advance(0.3)  # the sweep at full speed: the bucket is empty
    waits = []
    with bucket.urgent_lookup():
        await clock.advance(0.35)  # the check's first page loads; the sweep leaves the reserve meanwhile
        for _ in range(2):
            t1 = clock.monotonic()
            await clock.run(bucket.acquire(urgent=True))
            waits.append(clock.monotonic() - t1)
    await clock.run(asyncio.gather(*sweep))  # the sweep goes on at the same rate
    return waits, clock.monotonic() - t0, bucket.sent


async def test_token_bucket_keeps_a_reserve_for_an_urgent_lookup_under_way():
    """While a check is under way the sweep leaves it two tokens: its requests go at once."""
    waits, _, _ = await _check_joined_to_a_sweep(reserve=0)
    assert max(waits) > 0.05, waits  # without the reserve: up to a token's wait (0.1 s) each
    waits, took, sent = await _check_joined_to_a_sweep(reserve=2)
    assert waits == [0.0, 0.0]
    # same budget: 32 requests at 10 a second after the burst of 4
    assert sent == 32 and took == pytest.approx((32 - 4) / 10, abs=0.11)


async def _check_during_long_sweep(standing: int) -> tuple[list[float], list[float]]:
    """A sweep that has run longer than the window (1 s here, the portal's minute in life), then a check's
    two requests: (the check's waits, the sweep's send times)."""
    clock = ManualClock()
    bucket = TokenBucket(20 + 2, burst=4, margin=2, window_s=1.0, standing=standing, clock=clock)  # cap 20/s
    stamps: list[float] = []
    t0 = clock.monotonic()

    async def sweep_request() -> None:
        await bucket.acquire()
        stamps.append(clock.monotonic() - t0)

    sweep = [asyncio.create_task(sweep_request()) for _ in range(60)]
    await clock.advance(1.6)  # past the window: the window is what binds now, not the bucket
    waits = []
    with bucket.urgent_lookup():
        for _ in range(2):
            t1 = clock.monotonic()
            await clock.run(bucket.acquire(urgent=True))
            waits.append(clock.monotonic() - t1)
    await clock.advance(3.0)  # the sweep goes on past another window
    for task in sweep:
        task.cancel()
    await asyncio.gather(*sweep, return_exceptions=True)
    return waits, stamps


async def test_token_bucket_standing_reserve_keeps_a_checks_budget_free_in_a_long_sweep():
    """on_demand_reserve: a sweep past the portal's window has filled the window (the urgent reserve alone
    cannot help: the places are gone), so a check waits for the oldest sends to leave it; with a standing
    reserve the sweep always leaves that many places and tokens: the check's requests go at once, and the
    sweep sends that many fewer a window."""
    waits, stamps = await _check_during_long_sweep(standing=0)
    assert sum(waits) >= 0.03, waits  # a place in the full window: ~1/20 s
    assert _most_in_a_window(stamps, 1.0) == 20
    waits, stamps = await _check_during_long_sweep(standing=2)
    assert waits == [0.0, 0.0]
    assert _most_in_a_window(stamps, 1.0) == 20 - 2


async def test_token_bucket_skips_a_request_cancelled_while_waiting():
    clock = ManualClock()
    bucket = TokenBucket(68, burst=1, margin=4, clock=clock)  # 64 a minute
    await bucket.acquire()
    gone = asyncio.create_task(bucket.acquire())
    await clock.advance(0.05)
    gone.cancel()
    t0 = clock.monotonic()
    await clock.run(bucket.acquire())
    # the next token, 60/64 s after the first: the cancelled request took none
    assert clock.monotonic() - t0 == pytest.approx(60 / 64 - 0.05) and bucket.sent == 2


# ---------------------------------------------------------------- evidence for every status change
@pytest.mark.timeout(900)
async def test_every_status_change_keeps_the_page_it_was_read_from(sandbox, onboarded, tmp_path, monkeypatch):
    rt = onboarded
    ids = _ids(rt)[:24]
    summary = await rt.runner().sweep(claim_ids=ids, trigger="test")
    assert summary.counts["failed"] == 0, dict(summary.errors)
    with rt.Session() as s:
        obs = list(s.scalars(select(StatusObservation).where(StatusObservation.claim_id.in_(ids))))
        assert len(obs) == len(ids) and all(o.changed and o.evidence_ref for o in obs)
        rows = {e.ref: e for e in s.scalars(select(Evidence).where(Evidence.kind == "status_change"))}
        assert set(rows) == {o.evidence_ref for o in obs}
        for o in obs:
            ev = rows[o.evidence_ref]
            assert ev.claim_id == o.claim_id and ev.account_id == o.account_id and ev.portal_key == o.source
            assert rt.evidence.verify(ev)
            html, shot, frames = rt.evidence.load_all(ev)
            assert shot[:3] == b"\xff\xd8\xff" and ev.screenshot_type == "jpeg"  # a JPEG image
            # the page shows the claim it proves: its claim number (or, for a rejection, its billed amount)
            c = s.get(Claim, o.claim_id)
            page_text = html + "".join(f["html"] for f in frames)
            if c.payer_claim_number:
                assert any(v in page_text for v in (c.payer_claim_number, claim_number_key(c.payer_claim_number)))
    # an unchanged re-read keeps no new evidence
    before = len(rows)
    await rt.runner().sweep(claim_ids=ids, trigger="test")
    await rt.aclose()
    with rt.Session() as s:
        assert s.scalar(select(func.count()).select_from(Evidence).where(Evidence.kind == "status_change")) == before
        claim = s.get(Claim, obs[0].claim_id)
        pcn, ref = claim.external_id, obs[0].evidence_ref
        stored = s.scalar(select(Evidence).where(Evidence.ref == ref))
    # `portal-agent evidence CLAIM` lists it and exports it as files; the export's hashes verify
    monkeypatch.setenv("PORTAL_AGENT_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setattr("portal_agent.cli.console", Console(width=250))
    from core.config import get_settings

    get_settings.cache_clear()
    try:
        cli = CliRunner()
        listed = cli.invoke(app, ["evidence", pcn])
        assert listed.exit_code == 0, listed.output
        assert ref in listed.output and "ok" in listed.output
        out = tmp_path / "export"
        exported = cli.invoke(app, ["evidence", pcn, "--export", ref, "--out", str(out)])
        assert exported.exit_code == 0, exported.output
        bad = cli.invoke(app, ["evidence", pcn, "--export", "ev_nope"])
        assert bad.exit_code != 0 and "--export" in bad.output
    finally:
        get_settings.cache_clear()
    manifest = json.loads(next(out.glob("*.manifest.json")).read_text())
    shot = (out / manifest["files"][0]).read_bytes()
    html_bytes = (out / manifest["files"][1]).read_text(encoding="utf-8").encode()
    h = hashlib.sha256(html_bytes)
    for f in manifest["frames"]:
        h.update(b"\x00" + (out / f["file"]).read_text(encoding="utf-8").encode())
    assert hashlib.sha256(shot).hexdigest() == manifest["screenshot_sha256"] == stored.screenshot_sha256
    assert h.hexdigest() == manifest["html_sha256"] == stored.html_sha256
    with rt.Session() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry))]
        assert "evidence.list" in actions and "evidence.export" in actions
    # retention: evidence older than the setting goes (file and row)
    with rt.Session() as s:
        gone = rt.evidence.purge(s, 30, now=datetime.now(UTC) + timedelta(days=31))
        s.commit()
        assert gone >= before and s.scalar(select(func.count()).select_from(Evidence)) == 0
    assert not list((rt.settings.data_dir / "evidence").rglob("*.bin"))


@pytest.mark.timeout(600)
async def test_a_status_change_whose_page_cannot_be_captured_is_never_stored_without_it(onboarded, monkeypatch):
    from agent.browser import BrowserSession

    rt = onboarded
    ids = _ids(rt, "commercial")[:4]
    real = BrowserSession.capture
    calls: Counter = Counter()

    async def flaky(self, page=None, reason=""):
        calls[reason] += 1
        if reason == "status change" and calls[reason] % 2 == 1:  # every first try fails (page mid-render)
            return None
        return await real(self, page, reason)

    monkeypatch.setattr(BrowserSession, "capture", flaky)
    summary = await rt.runner().sweep(claim_ids=ids[:2], trigger="test")
    assert summary.counts["checked"] == 2 and summary.counts["failed"] == 0, dict(summary.errors)
    with rt.Session() as s:  # asked again, and kept
        obs = list(s.scalars(select(StatusObservation).where(StatusObservation.claim_id.in_(ids[:2]))))
        assert len(obs) == 2 and all(o.evidence_ref for o in obs)

    async def broken(self, page=None, reason=""):
        return None if reason == "status change" else await real(self, page, reason)

    monkeypatch.setattr(BrowserSession, "capture", broken)
    summary = await rt.runner().sweep(claim_ids=ids[2:], trigger="test")
    await rt.aclose()
    assert summary.counts["checked"] == 0 and summary.errors["EvidenceUnavailable"] == 2, dict(summary.errors)
    assert summary.counts["retries"] >= 2  # looked up again before failing with the reason
    assert summary.retries_by_reason == {"EvidenceUnavailable": summary.counts["retries"]}  # counted per reason
    with rt.Session() as s:  # nothing stored as a status without its page; each claim failed with the reason
        assert not list(s.scalars(select(StatusObservation).where(StatusObservation.claim_id.in_(ids[2:]))))
        failures = list(s.scalars(select(CheckFailure).where(CheckFailure.claim_id.in_(ids[2:]))))
        assert {f.error_type for f in failures} == {"EvidenceUnavailable"} and len(failures) == 2
        assert all(f.retryable for f in failures)


# ---------------------------------------------------------------- canary, drift, health
@pytest.mark.timeout(900)
async def test_canary_catches_a_layout_change_before_any_result_is_stored(sandbox, onboarded, monkeypatch):
    rt = onboarded
    rt.settings.canary_reads = 2
    portal = "commercial"
    ids = _ids(rt, portal)
    summary = await rt.runner().sweep(portal_key=portal, claim_ids=ids, trigger="test")
    assert summary.counts["failed"] == 0, dict(summary.errors)
    # the agent picks a settled claim per account, and trusts it after it reads the same way twice
    for _ in range(2):
        with rt.Session() as s:  # a few claims due: the canary is read first in each account's sweep
            s.execute(update(Claim).values(next_check_at=None))
            one_per_org = list(s.scalars(select(func.min(Claim.id)).where(Claim.id.in_(ids)).group_by(Claim.org_id)))
            s.execute(update(Claim).where(Claim.id.in_(one_per_org)).values(
                next_check_at=datetime.now(UTC) - timedelta(hours=1)))
            s.commit()
        summary = await rt.runner().sweep(portal_key=portal, trigger="test")
        assert set(summary.canaries.values()) <= {"candidate", "ok"} and summary.canaries
    with rt.Session() as s:
        accts = list(s.scalars(select(PortalAccount).where(PortalAccount.portal_key == portal)))
        assert all(a.canary_claim_id and a.canary_fingerprint for a in accts)
        # everything due again, then the portal ships its new layout
        s.execute(update(Claim).values(next_check_at=datetime.now(UTC) - timedelta(hours=1)))
        s.commit()
        n_obs = s.scalar(select(func.count()).select_from(StatusObservation))
    # 1. the canary itself: an account whose canary reads differently from its known status stops
    with rt.Session() as s:
        victim = s.get(PortalAccount, accts[0].id)
        victim.canary_fingerprint = "0" * 64  # what we "knew" is not what the portal shows
        s.commit()
    summary = await rt.runner().sweep(portal_key=portal, trigger="test")
    assert summary.canaries[accts[0].id] == "mismatch"
    assert all(v == "ok" for k, v in summary.canaries.items() if k != accts[0].id)
    with rt.Session() as s:
        stored = s.scalars(select(StatusObservation.account_id).where(StatusObservation.id > 0)
                           .where(StatusObservation.observed_at >= datetime.now(UTC) - timedelta(minutes=30))
                           .where(StatusObservation.sweep_run_id == summary.run_id))
        assert accts[0].id not in set(stored)  # nothing stored for the stopped account
        fails = {f.error_type for f in s.scalars(select(CheckFailure).where(
            CheckFailure.sweep_run_id == summary.run_id))}
        assert "CanaryMismatch" in fails
        repo.pin_canary(s, s.get(PortalAccount, accts[0].id), s.get(Claim, accts[0].canary_claim_id))
        s.execute(update(Claim).values(next_check_at=datetime.now(UTC) - timedelta(hours=1)))
        s.commit()
        n_obs = s.scalar(select(func.count()).select_from(StatusObservation))
    # 2. the portal ships its new layout: every account stops (at sign-in or at its canary) before
    #    any result is stored, as drift, with evidence
    sandbox.faults(layout="v2")
    summary = await rt.runner().sweep(portal_key=portal, trigger="test")
    assert summary.counts["checked"] == 0
    assert set(summary.canaries.values()) <= {"mismatch", "failed"}
    with rt.Session() as s:
        assert s.scalar(select(func.count()).select_from(StatusObservation)) == n_obs  # nothing stored
        errors = {f.error_type for f in s.scalars(select(CheckFailure).where(CheckFailure.sweep_run_id
                                                                             == summary.run_id))}
        assert errors <= {"PortalDrift", "CanaryMismatch", "AccountStopped", "CircuitOpen"}
        assert "AccountStopped" in errors
        health = repo.account_health(s, now=datetime.now(UTC), stale_after=timedelta(hours=40))
    mine = [h for h in health if h["portal"] == portal]
    assert all(h["drift"] and h["drift_evidence_ref"] and h["needs_attention"] for h in mine)
    with rt.Session() as s:
        assert all(s.scalar(select(Evidence).where(Evidence.ref == h["drift_evidence_ref"])) for h in mine)
        assert "portal.drift_detected" in {e.event_type for e in s.scalars(select(OutboxEvent))}
    await rt.aclose()
    # `portal-agent health` shows it in one table
    monkeypatch.setenv("PORTAL_AGENT_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setattr("portal_agent.cli.console", Console(width=250))
    from core.config import get_settings

    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["health"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    assert "drift" in out.output and f"{len(health)} accounts" in out.output
    # the count the CLI prints is every account needing attention by its own rule (stale = 2 x recheck), and
    # it includes each of this portal's stopped accounts
    with rt.Session() as s:
        cli_rule = repo.account_health(s, now=datetime.now(UTC),
                                       stale_after=timedelta(hours=rt.settings.recheck_hours * 2))
    attention = sum(1 for h in cli_rule if h["needs_attention"])
    assert attention >= len(mine) > 0
    assert f"{len(health)} accounts, {attention} need attention" in out.output


@pytest.mark.timeout(900)
@pytest.mark.parametrize("onboarded", [120], indirect=True)  # every medicaid claim of a 120-claim world
async def test_layout_switch_mid_sweep_every_later_read_is_drift(sandbox, onboarded):
    rt = onboarded
    rt.settings.breaker_threshold = 1000  # let every claim try: each must fail as drift, none get a status
    ids = _ids(rt, "medicaid")
    assert len(ids) >= 20
    switched_at: list[float] = []

    def some_read() -> bool:
        with rt.Session() as s:
            return s.scalar(select(func.count()).select_from(StatusObservation)) >= 6

    async def switch_when_some_are_read() -> None:
        await until(some_read, within_s=300, what="six results stored before the layout switch")
        await asyncio.to_thread(sandbox.faults, layout="v2")
        switched_at.append(time.time())

    watcher = asyncio.create_task(switch_when_some_are_read())
    summary = await rt.runner().sweep(portal_key="medicaid", claim_ids=ids, trigger="test")
    await watcher
    await rt.aclose()
    cut = datetime.fromtimestamp(switched_at[0], UTC)
    truth = _truth_by_pcn(sandbox)
    with rt.Session() as s:
        obs = list(s.scalars(select(StatusObservation)))
        # a lookup in flight when the layout changed may finish on pages it had already read; nothing read
        # after that carries a status
        late = [o for o in obs if repo.as_utc(o.observed_at) > cut + timedelta(seconds=5)]
        assert late == []
        for o in obs:  # and what was stored before the switch is right
            c = s.get(Claim, o.claim_id)
            assert (o.status_category, o.status_code) == (truth[c.external_id]["status_category"],
                                                          truth[c.external_id]["status_code_shown"])
        failures = list(s.scalars(select(CheckFailure)))
    assert summary.counts["checked"] + summary.counts["failed"] == len(ids)
    assert summary.counts["failed"] > 0
    assert {f.error_type for f in failures} == {"PortalDrift"}
    assert all(f.evidence_ref for f in failures)


def test_blocked_request_paths_are_logged_without_identifiers():
    from agent.browser import redact_path

    assert redact_path("/Claims/VoidClaim.aspx") == "/Claims/VoidClaim.aspx"
    assert redact_path("/Claims/SubmitForReview.aspx") == "/Claims/SubmitForReview.aspx"
    assert redact_path("/api/claims/eyJtIjoiTTEyMyJ9/void") == "/api/claims/{id}/void"
    assert redact_path("/apps/claim-status/claims/CH123456/dispute") == "/apps/claim-status/claims/{id}/dispute"


WRONG_THING_SWITCHES = {
    "clearinghouse": ("near_matches", "duplicate_claims", "stale_detail", "claim_number_format"),
    "commercial": ("near_matches", "resubmitted_twins", "stale_cards", "stale_detail", "formatted_claim_numbers"),
    "medicaid": ("near_matches", "duplicate_claims", "stale_detail", "icn_format"),
}


@pytest.mark.timeout(1500)
async def test_with_every_wrong_thing_on_no_status_goes_to_the_wrong_claim(sandbox, runtime):
    from agent.pacing import reset_pacers
    from portal_agent.demo import onboard

    sandbox.reset(size=150)
    switches = {f"{p}.{name}": True for p, names in WRONG_THING_SWITCHES.items() for name in names}
    sandbox.faults(None, switches=switches)
    reset_pacers()
    rt = runtime()
    onboard(rt.Session, rt.vault, sandbox.control, sandbox.urls)
    summary = await rt.runner().sweep(claim_ids=_ids(rt), trigger="test")
    await rt.aclose()
    truth = _truth_by_pcn(sandbox)
    with rt.Session() as s:
        wrong = []
        for o in s.scalars(select(StatusObservation)):
            c = s.get(Claim, o.claim_id)
            t = truth[c.external_id]
            if (o.status_category, o.status_code) != (t["status_category"], t["status_code_shown"]):
                wrong.append(c.id)
        failures = list(s.scalars(select(CheckFailure)))
    assert wrong == []  # 0 results attribute a status to the wrong claim
    # what could not be told apart is an error, never a guess
    assert {f.error_type for f in failures} <= {"AmbiguousClaim", "ClaimMismatch", "ClaimNotFound"}, \
        Counter(f.error_type for f in failures)
    assert summary.counts["checked"] > 0.6 * len(truth)
    assert summary.counts["checked"] + summary.counts["failed"] == len(truth)
