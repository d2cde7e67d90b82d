"""Jobs the scheduler persists by textual reference (agent.scheduler.JOB_REF): they wire a runtime, which
only the entry package may do."""

from __future__ import annotations

import structlog

from core.config import get_settings
from portal_agent.runtime import Runtime

log = structlog.get_logger("portal_agent.scheduler")


async def scheduled_sweep(portal_key: str | None = None) -> None:
    """One scheduled sweep of a portal (or all), on a runtime of its own."""
    rt = Runtime.start(get_settings())
    try:
        summary = await rt.runner().sweep(portal_key=portal_key, trigger="schedule")
        log.info("scheduled_sweep.done", run_id=summary.run_id, checked=summary.counts["checked"],
                 failed=summary.counts["failed"])
    finally:
        await rt.aclose()


async def escalate() -> None:
    """Record the denial escalations that have fallen due (each once: store/escalations.py)."""
    from datetime import UTC, datetime

    from store import escalations
    from store.db import make_engine, migrate, session_factory

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url())
    migrate(engine)
    done = escalations.run(session_factory(engine), now=datetime.now(UTC),
                           urgent_within_days=settings.urgent_within_days)
    log.info("escalations.done", recorded=len(done))
    engine.dispose()
