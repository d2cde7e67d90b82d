"""Claim status sweeps end to end: real Chromium, the three sandbox portals, the SQLite store."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from core.logging import configure
from portal_agent.demo import compare_with_truth, onboard
from portal_agent.runtime import Runtime
from store import kpis, repo
from store.models import CheckFailure, Claim, Denial, OutboxEvent, PortalAccount, StatusObservation, SweepRun
from tests.waiting import until_sync
from tests.worlds import sample_claims

REPO = Path(__file__).resolve().parents[2]


def _all_ids(rt):
    with rt.Session() as s:
        return list(s.scalars(select(Claim.id)))


def _make_all_due(rt):
    with rt.Session() as s:
        s.execute(update(Claim).values(next_check_at=datetime.now(UTC) - timedelta(hours=1)))
        s.commit()


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("onboarded", [120], indirect=True)
async def test_full_sweep_finds_exactly_the_ground_truth(sandbox, onboarded, runtime):
    rt = onboarded
    # the second sweep must find every account's saved session alive: no portal's idle timeout (5 minutes
    # for medicaid, a minute of wall time on the tests' sped-up clock) may pass while other accounts finish
    sandbox.faults(idle_timeout_s=dict.fromkeys(("clearinghouse", "commercial", "medicaid"), 4 * 3600))
    summary = await rt.runner().sweep(claim_ids=_all_ids(rt), trigger="test")
    await rt.aclose()
    assert summary.counts["failed"] == 0, dict(summary.errors)
    assert summary.counts["blocked_actions"] == 0
    cmp = compare_with_truth(rt.Session, sandbox.control)
    gt = [c for c in sandbox.ground_truth()["claims"] if c["visible"]]
    assert cmp["checked"] == cmp["claims"] == len(gt)  # every claim the world has submitted
    assert cmp["status_matches"] == cmp["checked"]
    truth_denied = sum(1 for c in gt if c.get("denial_carcs"))
    assert cmp["carc_sets_match"] and cmp["found_denied_claims"] == cmp["truth_denied_claims"] == truth_denied > 5
    assert cmp["case_claims_match"] and cmp["by_payer_carc_match"]
    # the report (store/kpis.py) agrees with counts computed from the ground truth: denied claims by payer,
    # denial reasons (a line x group x CARC each) and their dollars, the dollars denied
    truth_reasons: Counter = Counter()
    truth_dollars: Counter = Counter()
    truth_by_payer: Counter = Counter(c["payer_id"] for c in gt if c.get("denial_carcs"))
    for c in gt:
        for line in c["lines"] if c.get("denial_carcs") else []:
            for a in line.get("adjustments", []):
                if a["carc"] in c["denial_carcs"]:
                    truth_reasons[f"{a['group']}-{a['carc']}"] += 1
                    truth_dollars[f"{a['group']}-{a['carc']}"] += round(float(a["amount"]) * 100)
    with rt.Session() as s:
        reports = [kpis.report(s, o.id, top=1000) for o in repo.orgs_by_id(s).values()]
    found_reasons: Counter = Counter()
    found_dollars: Counter = Counter()
    found_by_payer: Counter = Counter()
    for r in reports:
        for x in r["top_reasons_by_count"]:
            found_reasons[x["reason"]] += x["count"]
            found_dollars[x["reason"]] += x["dollars_cents"]
        for x in r["denial_rate_by_payer"]:
            found_by_payer[x["key"]] += x["denied"]
    assert found_reasons == truth_reasons and found_dollars == truth_dollars
    assert +found_by_payer == truth_by_payer
    assert sum(r["dollars_denied_cents"] for r in reports) == sum(truth_dollars.values())
    # one login per account, not per claim
    with rt.Session() as s:
        accounts = s.scalar(select(func.count(StatusObservation.account_id.distinct())))
        onboarded_accounts = s.scalar(select(func.count()).select_from(PortalAccount))
        before = s.scalar(select(func.count()).select_from(Denial))
        # the second sweep: every denied claim, and as many others (each account has some)
        denied = set(s.scalars(select(Denial.claim_id)))
        again = sorted(denied) + [i for i in _all_ids(rt) if i not in denied][:len(denied)]
    assert accounts == onboarded_accounts > 3  # every account read claims
    assert summary.counts["logins"] == accounts
    # a second sweep of some of the same claims on the saved sessions: new observations, no duplicate
    # denials, no transitions
    rt2 = runtime(rt.settings)
    summary2 = await rt2.runner().sweep(claim_ids=again, trigger="test")
    await rt2.aclose()
    assert summary2.counts.get("logins", 0) == 0 and summary2.counts.get("relogins", 0) == 0
    assert summary2.counts["sessions_restored"] >= 3  # one per account the claims are on
    with rt.Session() as s:
        assert s.scalar(select(func.count()).select_from(Denial)) == before
        n_obs = s.scalar(select(func.count()).select_from(StatusObservation))
        assert n_obs == cmp["claims"] + len(again)
        changed = s.scalar(select(func.count()).select_from(StatusObservation)
                           .where(StatusObservation.changed.is_(True)))
        assert changed == cmp["claims"]


@pytest.mark.timeout(900)
async def test_realistic_faults_every_claim_checked_or_failed_with_reason(sandbox, onboarded):
    rt = onboarded
    sandbox.faults("realistic", latency_ms=[20, 80], error_rate=0.03, drop_rate=0.01, partial_rate=0.01,
                   session_expiry_rate=0.01)
    ids = _all_ids(rt)
    summary = await rt.runner().sweep(claim_ids=ids, trigger="test")
    with rt.Session() as s:
        claims = list(s.scalars(select(Claim)))
        checked = [c for c in claims if c.last_checked_at and not c.last_error]
        failed = [c for c in claims if c.last_error]
        assert len(checked) + len(failed) == len(claims)  # nothing silently skipped
        reasons = {f.claim_id: f.error_type for f in s.scalars(select(CheckFailure))}
        assert all(c.id in reasons for c in failed)
    assert summary.counts["checked"] == len(checked)
    assert summary.counts["retries"] > 0
    assert sum(summary.retries_by_reason.values()) == summary.counts["retries"]  # each retry under its reason
    with rt.Session() as s:  # kept with the run's counts
        run = s.get(SweepRun, summary.run_id)
        assert run.counts["retries_by_reason"] == dict(summary.retries_by_reason)
    counters = sandbox.counters()
    for portal in ("clearinghouse", "commercial", "medicaid"):
        assert counters.get(f"{portal}.lockouts", 0) == 0
        assert counters.get(f"{portal}.login_failed", 0) == 0
    # the failed ones are retried by the next sweep (they stayed due)
    sandbox.faults("off")
    summary2 = await rt.runner().sweep(trigger="test")
    await rt.aclose()
    with rt.Session() as s:  # on failure: which claims the clean sweep left, and why (no PHI: ids and error types)
        left = [(c.id, c.last_error) for c in s.scalars(select(Claim)) if c.last_error or not c.status_category]
    assert summary2.counts["checked"] >= len(failed), (dict(summary2.errors), left)
    cmp = compare_with_truth(rt.Session, sandbox.control)
    assert cmp["status_matches"] == cmp["checked"] == cmp["claims"], (dict(summary2.errors), left)


@pytest.mark.timeout(900)
async def test_lockout_guard_never_sends_a_second_bad_password(sandbox, onboarded):
    rt = onboarded
    from core.credentials import Credentials
    from store import accounts as acct_repo

    with rt.Session() as s:
        acct = s.scalars(select(PortalAccount).where(PortalAccount.portal_key == "medicaid")).first()
        acct_repo.upsert_account(s, rt.vault, org_id=acct.org_id, portal_key="medicaid", base_url=acct.base_url,
                                 creds=Credentials(username=acct.username, password="not-the-password"))
        s.commit()
        acct_id = acct.id
        mine = list(s.scalars(select(Claim.id).where(Claim.org_id == acct.org_id)))  # its organization's
    for _ in range(3):
        summary = await rt.runner().sweep(portal_key="medicaid", claim_ids=mine, trigger="test")
    await rt.aclose()
    assert sandbox.counters().get("medicaid.login_failed") == 1
    assert not sandbox.counters().get("medicaid.lockouts")
    with rt.Session() as s:
        acct = s.get(PortalAccount, acct_id)
        assert acct.status == "needs_attention" and "LoginRejected" in acct.attention_reason
        events = [e.event_type for e in s.scalars(select(OutboxEvent))]
        assert "portal.account_failed" in events
    assert summary.errors["AccountStopped"] > 0


def _login_failing(base: type, times: int) -> type:
    """The adapter with its sign-in cut short by a portal 5xx the first `times` logins (of the process)."""
    from core.errors import PortalUnavailable

    class Flaky(base):
        failed = 0

        async def login(self, session, creds):
            if Flaky.failed < times:
                Flaky.failed += 1
                raise PortalUnavailable("the portal answered 503 during sign-in")
            await super().login(session, creds)

    return Flaky


@pytest.mark.timeout(600)
async def test_a_login_cut_short_by_5xx_is_retried_up_to_login_attempts(sandbox, onboarded):
    """Four sign-ins failing with a 5xx in a row (past max_attempts = 3): the fifth logs in and every claim is
    checked. Five (all of login_attempts): the account is signed in again once, account_retry_after_s later,
    and its claims are checked. A portal that keeps failing: that second round fails too, each claim fails
    with the reason, and the account is not marked for attention (a 5xx is not a refusal)."""
    from portals.base import registry
    from store import accounts as acct_repo

    rt = onboarded
    rt.settings.retry_backoff_s = 0.01
    rt.settings.account_retry_after_s = 0.05
    assert rt.settings.login_attempts == 5 > rt.settings.max_attempts and rt.settings.account_revivals == 1
    ids = [i for i in _all_ids(rt) if i in _portal_ids(rt, "commercial")][:3]

    def forget_sessions() -> None:  # no saved session to restore: the next sweep must log in
        with rt.Session() as s:
            for a in s.scalars(select(PortalAccount).where(PortalAccount.portal_key == "commercial")):
                acct_repo.save_state(rt.vault, a, None)
            s.commit()

    async def sweep(failing: int):
        forget_sessions()
        adapters = {**registry(), "commercial": _login_failing(registry()["commercial"], failing)}
        summary = await rt.runner(adapters=adapters).sweep(claim_ids=ids, trigger="test")
        return summary, adapters["commercial"].failed

    summary, failed = await sweep(4)
    assert summary.counts["checked"] == 3 and summary.counts["login_retries"] == 4 and failed == 4
    assert summary.counts["logins"] == 1 and not summary.counts["accounts_revived"]
    summary, failed = await sweep(5)
    assert summary.counts["checked"] == 3 and failed == 5
    assert summary.counts["accounts_revived"] == 1 and summary.counts["relogins"] == 1
    summary, failed = await sweep(99)
    await rt.aclose()
    assert failed == 10  # five attempts, then five more once
    assert summary.counts["checked"] == 0 and summary.errors["AccountStopped"] == 3
    assert summary.errors["login.PortalUnavailable"] == 2 and not summary.counts["accounts_revived"]
    with rt.Session() as s:
        acct = s.scalars(select(PortalAccount).where(PortalAccount.portal_key == "commercial")).first()
        assert acct.status != "needs_attention"
        reasons = {f.message for f in s.scalars(select(CheckFailure).where(CheckFailure.claim_id.in_(ids)))}
    assert reasons == {"login failed: PortalUnavailable"}


def _portal_ids(rt, portal: str) -> set[int]:
    from store.models import Payer

    with rt.Session() as s:
        return set(s.scalars(select(Claim.id).join(Payer, Payer.id == Claim.payer_id)
                             .where(Payer.portal_key == portal)))


async def test_layout_drift_stops_the_portal_with_evidence(sandbox, onboarded):
    rt = onboarded
    rt.settings.breaker_threshold = 2
    sandbox.faults(layout="v2")
    summary = await rt.runner().sweep(portal_key="commercial", claim_ids=_all_ids(rt), trigger="test")
    await rt.aclose()
    assert summary.counts["checked"] == 0 and summary.counts["failed"] > 0
    assert any("PortalDrift" in k for k in summary.errors), dict(summary.errors)
    with rt.Session() as s:
        assert "portal.circuit_open" in [e.event_type for e in s.scalars(select(OutboxEvent))]
        failures = list(s.scalars(select(CheckFailure)))
        assert failures and all(f.message for f in failures)
        from store.models import Evidence

        assert s.scalar(select(func.count()).select_from(Evidence)) >= 1  # the drifted page was kept


@pytest.mark.timeout(900)
async def test_logs_of_a_full_sweep_hold_no_secret_or_phi(sandbox, onboarded):
    rt = onboarded
    buf = io.StringIO()
    configure("DEBUG", stream=buf)
    root = logging.getLogger()
    handler = logging.StreamHandler(buf)
    root.addHandler(handler)
    try:
        await rt.runner().sweep(claim_ids=_all_ids(rt), trigger="test")
    finally:
        root.removeHandler(handler)
        await rt.aclose()
        configure("WARNING")
    text = buf.getvalue()
    assert "sweep.completed" in text
    gt = sandbox.ground_truth()
    secrets = [a["password"] for a in sandbox.control.get("/control/accounts").json()]
    secrets += [a["totp_secret"] for a in sandbox.control.get("/control/accounts").json()]
    phi = [m["member_id"] for m in gt["members"]]
    phi += [f"{m['first_name']} {m['last_name']}" for m in gt["members"]] + [m["last_name"] for m in gt["members"]]
    leaked = [v for v in secrets + phi if v in text]
    assert leaked == []


@pytest.mark.browser  # the sweeps run in subprocesses (the CLI)
@pytest.mark.timeout(900)
def test_sigkill_halfway_then_the_next_sweep_finishes(sandbox, settings, tmp_path):
    sandbox.reset(size=120)
    rt = Runtime.start(settings)
    onboard(rt.Session, rt.vault, sandbox.control, sandbox.urls, only=sample_claims(sandbox.ground_truth(), 3))
    _make_all_due(rt)
    total = len(_all_ids(rt))
    env = {**os.environ, "PORTAL_AGENT_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "portal_agent.cli", "sweep"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stored() -> int:
        with rt.Session() as s:
            return s.scalar(select(func.count()).select_from(StatusObservation))

    try:
        until_sync(lambda: stored() >= total // 2, within_s=240, every_s=0.2,
                   what=f"the first sweep to store {total // 2} of {total} results")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its Chromium children
        proc.wait()
    done = stored()
    assert total // 2 <= done < total
    result = subprocess.run([sys.executable, "-m", "portal_agent.cli", "sweep"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:]
    with rt.Session() as s:
        unchecked = s.execute(select(Claim.id, Claim.last_error).where(Claim.last_checked_at.is_(None))).all()
        assert unchecked == [], f"claims the second sweep left unchecked: {unchecked}; its output: " \
                                f"{result.stdout[-3000:]}"
        per_claim = Counter(s.scalars(select(StatusObservation.claim_id)))
        canaries = set(s.scalars(select(PortalAccount.canary_claim_id)))  # read first on every sweep
        assert max(n for c, n in per_claim.items() if c not in canaries) == 1  # finished claims not due again
        keys = Counter(s.execute(select(Denial.claim_id, Denial.line_key, Denial.kind, Denial.reason_code)).all())
        assert max(keys.values()) == 1
    cmp = compare_with_truth(rt.Session, sandbox.control)
    assert cmp["carc_sets_match"]
