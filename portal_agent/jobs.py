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


async def rescore() -> None:
    """Recompute the open denial cases' priorities (a day closer to their deadlines: store/queue.py)."""
    from datetime import UTC, datetime

    from store import queue
    from store.db import make_engine, migrate, session_factory

    engine = make_engine(get_settings().resolved_database_url())
    migrate(engine)
    with session_factory(engine)() as s:
        changed = queue.refresh(s, now=datetime.now(UTC))
        s.commit()
    log.info("priorities.refreshed", changed=changed)
    engine.dispose()


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
