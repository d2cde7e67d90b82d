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
