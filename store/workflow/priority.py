"""A denial case's priority: the case worth working next first (shared/DESIGN.md §5 "Priority"). Pure.

    priority = dollars at risk x odds of winning x urgency

- dollars at risk: what the case's reasons denied (its amount), in dollars;
- odds of winning: the overturn rate for the payer x root-cause bucket, a stated prior per bucket (PRIORS:
  what the bucket's fix usually recovers) worth PRIOR_WEIGHT decided cases, updated by the organization's
  recorded outcomes (won = 1, partially won = 0.5, lost = 0):
      odds = (prior x PRIOR_WEIGHT + points won) / (PRIOR_WEIGHT + cases decided)
- urgency: 1 + URGENCY_DAYS / days left to the earliest hard deadline of the payer (appeal or timely
  filing), at least 1 day; no deadline on file counts as NO_DEADLINE_DAYS away. A deadline already passed
  leaves the case worth PAST_DEADLINE_FACTOR of the rest (it can rarely still be won: a person decides).

Worked example (tests/store/test_priority.py): a $1,200.00 medical-necessity denial at BMH, prior 0.45, two
decided BMH medical-necessity cases (one won, one lost): odds = (0.45 x 10 + 1) / (10 + 2) = 0.4583; its
appeal deadline is 20 days away: urgency = 1 + 30 / 20 = 2.5; priority = 1200 x 0.4583 x 2.5 = 1375.0.
A $150.00 coding denial (prior 0.85, no outcomes) due in 3 days: 150 x 0.85 x (1 + 30 / 3) = 1402.5: the
small correction due now goes first by a hair; with 10 days left it would be 150 x 0.85 x 4 = 510.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from store.workflow.categorize import Bucket

PRIORS: dict[str, float] = {
    Bucket.DEMOGRAPHIC: 0.90,  # corrected and resubmitted
    Bucket.CODING: 0.85,
    Bucket.COORDINATION_OF_BENEFITS: 0.75,
    Bucket.ELIGIBILITY: 0.65,
    Bucket.DOCUMENTATION: 0.60,
    Bucket.CREDENTIALING: 0.50,
    Bucket.MEDICAL_NECESSITY: 0.45,  # appeals with clinical notes, peer-to-peer
    Bucket.AUTHORIZATION: 0.40,  # retro authorization rarely granted
    Bucket.DUPLICATE: 0.30,  # mostly a reconciliation, little to recover
    Bucket.NON_COVERED: 0.20,
    Bucket.TIMELY_FILING: 0.10,  # won only with proof of timely filing
    Bucket.OTHER: 0.40,
}
PRIOR_WEIGHT = 10.0
URGENCY_DAYS = 30.0
NO_DEADLINE_DAYS = 365
PAST_DEADLINE_FACTOR = 0.05


@dataclass(frozen=True)
class Record:
    """Decided cases of one payer x bucket: how many, and the points won (won 1, partially won 0.5)."""

    decided: int = 0
    won: float = 0.0


def odds(bucket: str, record: Record = Record()) -> float:
    prior = PRIORS.get(bucket, PRIORS[Bucket.OTHER])
    return (prior * PRIOR_WEIGHT + record.won) / (PRIOR_WEIGHT + record.decided)


def days_left(today: date, deadlines: tuple[date | None, ...]) -> int | None:
    due = [d for d in deadlines if d is not None]
    return (min(due) - today).days if due else None


def priority(amount_cents: int, bucket: str, left: int | None, record: Record = Record()) -> float:
    """The case's priority (higher first), rounded to cents of the dollar figure."""
    dollars = amount_cents / 100
    p = odds(bucket, record)
    if left is not None and left < 0:
        return round(dollars * p * PAST_DEADLINE_FACTOR, 2)
    urgency = 1 + URGENCY_DAYS / max(left if left is not None else NO_DEADLINE_DAYS, 1)
    return round(dollars * p * urgency, 2)
