"""Sweep runs: one row per sweep or on-demand check, opened when it starts and closed with its counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from store.models import SweepRun


def start_run(s: Session, *, portal_key: str | None, trigger: str, at: datetime) -> SweepRun:
    run = SweepRun(portal_key=portal_key, trigger=trigger, started_at=at, status="running", counts={})
    s.add(run)
    s.flush()
    return run


def finish_run(s: Session, run_id: int, *, at: datetime, status: str, counts: dict) -> SweepRun:
    run = s.get(SweepRun, run_id)
    run.finished_at, run.status, run.counts = at, status, counts
    return run
