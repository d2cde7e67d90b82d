"""On-demand checks: one claim now, and while a sweep of the same account runs it joins that logged-in
session instead of waiting for the sweep to finish."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from portal_agent.demo import compare_with_truth
from store.models import Claim, Payer, StatusObservation, SweepRun
from tests.waiting import until


def _medicaid_ids(rt) -> list[int]:
    with rt.Session() as s:
        return list(s.scalars(select(Claim.id).join(Payer, Payer.id == Claim.payer_id)
                              .where(Payer.portal_key == "medicaid").order_by(Claim.id)))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("onboarded", [60], indirect=True)
async def test_on_demand_check_joins_a_running_sweep_of_its_account(sandbox, onboarded):
    rt = onboarded
    rt.settings.concurrency_per_account = 1  # a slow sweep: one lookup at a time
    ids = _medicaid_ids(rt)
    target = ids[-1]  # the sweep would reach it last
    runner = rt.runner()
    sweep = asyncio.create_task(runner.sweep(portal_key="medicaid", claim_ids=ids[:-1], trigger="test"))

    def reading() -> bool:
        with rt.Session() as s:
            return s.scalar(select(func.count()).select_from(StatusObservation)) >= 2

    await until(reading, within_s=120, what="the sweep to sign in and store two results")
    summary = await runner.check_now(target)
    assert not sweep.done()  # answered while the sweep was still running
    assert summary.counts["checked"] == 1 and summary.counts.get("logins", 0) == 0
    with rt.Session() as s:
        run = s.get(SweepRun, summary.run_id)
        assert run.trigger == "on_demand" and run.counts.get("joined_live_session") == 1
        assert s.get(Claim, target).status_category is not None
    sweep_summary = await sweep
    await rt.aclose()
    assert sweep_summary.counts["failed"] == 0, dict(sweep_summary.errors)
    cmp = compare_with_truth(rt.Session, sandbox.control)
    assert cmp["status_matches"] == cmp["checked"] == len(ids)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("onboarded", [30], indirect=True)
async def test_on_demand_check_without_a_sweep_logs_in_once_then_reuses_the_session(sandbox, onboarded):
    rt = onboarded
    target = _medicaid_ids(rt)[0]
    first = await rt.runner().check_now(target)
    assert first.counts["checked"] == 1 and first.counts["logins"] == 1
    again = await rt.runner().check_now(target)  # a new runner: the saved session is restored, no login
    await rt.aclose()
    assert again.counts["checked"] == 1 and again.counts.get("logins", 0) == 0
    assert again.counts["sessions_restored"] == 1


@pytest.mark.timeout(600)
@pytest.mark.parametrize("onboarded", [30], indirect=True)
async def test_a_warm_session_serves_the_next_check_and_a_stale_one_is_closed(sandbox, onboarded):
    """keep_warm_s (the API process): the session of the last check stays logged in and open, the next check
    of the account uses it (no login, no restore, no verify page); once older than keep_warm_s it is closed
    and the next check restores the saved session instead."""
    rt = onboarded
    rt.settings.keep_warm_s = 300
    with rt.Session() as s:  # claims of one organization: one portal account
        org = s.get(Claim, _medicaid_ids(rt)[0]).org_id
        ids = [c for c in _medicaid_ids(rt) if s.get(Claim, c).org_id == org]
    logins = sandbox.control.get("/control/counters").json().get("medicaid.logins", 0)
    first = await rt.runner().check_now(ids[0])
    assert first.counts["checked"] == 1 and first.counts["logins"] == 1
    warm = await rt.runner().check_now(ids[1])  # another runner, same process: the parked session
    assert warm.counts["checked"] == 1 and warm.counts["sessions_warm"] == 1
    assert warm.counts.get("logins", 0) == 0 and warm.counts.get("sessions_restored", 0) == 0
    assert 0 < warm.counts["counted_requests"] <= 6  # this check's requests only, not the session's total
    assert sandbox.control.get("/control/counters").json()["medicaid.logins"] == logins + 1
    rt.settings.keep_warm_s = 0.001  # parked longer ago than this: closed, not used
    await asyncio.sleep(0.01)
    stale = await rt.runner().check_now(ids[2])
    await rt.aclose()
    assert stale.counts["checked"] == 1 and stale.counts.get("sessions_warm", 0) == 0
    assert stale.counts["sessions_restored"] == 1
    with rt.Session() as s:
        assert all(s.get(Claim, c).status_category is not None for c in ids[:3])
