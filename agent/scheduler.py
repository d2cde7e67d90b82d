"""APScheduler 3.x wiring. Schedules are data (settings today; rows later) registered at start with
replace_existing, coalesce and an explicit misfire grace (DESIGN §9); the job store is persistent, in the
same database. Exactly one scheduler process may use a job store."""

from __future__ import annotations

import asyncio

import structlog
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = structlog.get_logger("portal_agent.scheduler")
# the sweep job, by textual reference so the job store can persist it; it lives in the entry package,
# which alone wires a runtime (agent, store): portal_agent/jobs.py
JOB_REF = "portal_agent.jobs:scheduled_sweep"
# the denial escalation job (store/escalations.py), every few minutes: each escalation happens once
ESCALATE_REF = "portal_agent.jobs:escalate"
ESCALATE_ID = "escalate:denials"
# the daily priority refresh of open denial cases (deadlines come closer each day: store/queue.py)
RESCORE_REF = "portal_agent.jobs:rescore"
RESCORE_ID = "rescore:denials"
RESCORE_CRON = "30 5 * * *"  # 05:30 UTC: after midnight in every US zone
FIXED_JOBS = (ESCALATE_ID, RESCORE_ID)


def build_scheduler(database_url: str, schedules: dict[str, str], misfire_grace_s: int = 3600, *,
                    job_ref: str = JOB_REF, escalate_every_minutes: int | None = None) -> AsyncIOScheduler:
    """schedules: job id -> crontab ('0 2 * * *'); job id 'sweep:<portal or all>:<name>'; `job_ref` the
    sweep job ('module:function' taking `portal_key`)."""
    sched = AsyncIOScheduler(jobstores={"default": SQLAlchemyJobStore(url=database_url,
                                                                      tablename="apscheduler_jobs")},
                             job_defaults={"coalesce": True, "max_instances": 1,
                                           "misfire_grace_time": misfire_grace_s},
                             timezone="UTC")
    for job_id, cron in schedules.items():
        portal = job_id.split(":")[1]
        sched.add_job(job_ref, CronTrigger.from_crontab(cron, timezone="UTC"),
                      id=job_id, kwargs={"portal_key": None if portal == "all" else portal},
                      replace_existing=True)
    if escalate_every_minutes:
        sched.add_job(ESCALATE_REF, IntervalTrigger(minutes=escalate_every_minutes, timezone="UTC"),
                      id=ESCALATE_ID, replace_existing=True)
        sched.add_job(RESCORE_REF, CronTrigger.from_crontab(RESCORE_CRON, timezone="UTC"), id=RESCORE_ID,
                      replace_existing=True)
    return sched


def drop_unlisted(sched: AsyncIOScheduler, schedules: dict[str, str]) -> list[str]:
    """After start: remove persisted jobs whose schedule was taken out of the settings."""
    gone = [j.id for j in sched.get_jobs() if j.id not in schedules and j.id not in FIXED_JOBS]
    for job_id in gone:
        sched.remove_job(job_id)
    return gone


async def serve_forever(database_url: str, schedules: dict[str, str], escalate_every_minutes: int = 15) -> None:
    sched = build_scheduler(database_url, schedules, escalate_every_minutes=escalate_every_minutes)
    sched.start()
    drop_unlisted(sched, schedules)
    log.info("scheduler.started", jobs=[j.id for j in sched.get_jobs()])
    try:
        await asyncio.Event().wait()
    finally:
        sched.shutdown(wait=False)
