"""Schedules are registered from settings at start, persisted in the same database, never duplicated."""

from __future__ import annotations

import sqlite3

from agent.scheduler import build_scheduler, drop_unlisted


async def test_jobs_persist_in_the_database_and_restart_replaces_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'pa.db'}"
    schedules = {"sweep:all:nightly": "0 2 * * *", "sweep:medicaid:midday": "30 13 * * 1-5"}
    s1 = build_scheduler(url, schedules)
    s1.start(paused=True)
    jobs = {j.id: j for j in s1.get_jobs()}
    assert set(jobs) == set(schedules)
    assert jobs["sweep:medicaid:midday"].kwargs == {"portal_key": "medicaid"}
    assert jobs["sweep:all:nightly"].kwargs == {"portal_key": None}
    assert jobs["sweep:all:nightly"].coalesce and jobs["sweep:all:nightly"].misfire_grace_time == 3600
    s1.shutdown(wait=False)
    # a restart with a changed schedule replaces, never duplicates
    s2 = build_scheduler(url, {"sweep:all:nightly": "0 3 * * *", "sweep:medicaid:midday": "30 13 * * 1-5"})
    s2.start(paused=True)
    assert len(s2.get_jobs()) == 2
    assert "hour='3'" in str(s2.get_job("sweep:all:nightly").trigger)
    s2.shutdown(wait=False)
    rows = sqlite3.connect(tmp_path / "pa.db").execute("select id from apscheduler_jobs").fetchall()
    assert sorted(r[0] for r in rows) == sorted(schedules)


async def test_a_schedule_taken_out_of_settings_is_removed(tmp_path):
    url = f"sqlite:///{tmp_path / 'pa.db'}"
    s1 = build_scheduler(url, {"sweep:all:nightly": "0 2 * * *", "sweep:all:midday": "0 13 * * *"})
    s1.start(paused=True)
    s1.shutdown(wait=False)
    keep = {"sweep:all:nightly": "0 2 * * *"}
    s2 = build_scheduler(url, keep)
    s2.start(paused=True)
    assert drop_unlisted(s2, keep) == ["sweep:all:midday"]
    assert [j.id for j in s2.get_jobs()] == ["sweep:all:nightly"]
    s2.shutdown(wait=False)


async def test_the_escalation_job_is_registered_once_and_kept(tmp_path):
    from agent.scheduler import ESCALATE_ID, ESCALATE_REF

    url = f"sqlite:///{tmp_path / 'pa.db'}"
    keep = {"sweep:all:nightly": "0 2 * * *"}
    for minutes in (15, 5):  # a restart with another interval replaces the job
        sched = build_scheduler(url, keep, escalate_every_minutes=minutes)
        sched.start(paused=True)
        assert drop_unlisted(sched, keep) == []
        job = sched.get_job(ESCALATE_ID)
        assert job.func_ref == ESCALATE_REF and job.trigger.interval.total_seconds() == minutes * 60
        assert sorted(j.id for j in sched.get_jobs()) == [ESCALATE_ID, "rescore:denials", "sweep:all:nightly"]
        sched.shutdown(wait=False)


async def test_the_escalation_job_records_due_escalations(tmp_path, monkeypatch):
    """portal_agent.jobs.escalate on the configured store (a real SQLite file, nothing due: it runs clean)."""
    from core.config import get_settings
    from portal_agent import jobs

    monkeypatch.setenv("PORTAL_AGENT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_AGENT_DATABASE_URL", "")
    get_settings.cache_clear()
    try:
        await jobs.escalate()
        await jobs.rescore()
        assert (tmp_path / "portal_agent.db").exists()
    finally:
        get_settings.cache_clear()
