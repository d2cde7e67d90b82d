"""The clocks of a denial case, counted as shared/DESIGN.md §5 "Counting" says, so that every date is right to
the day. Pure: dates in, dates out; the store keeps what these return when the denial arrives (a deadline
is stored on intake, never computed late).

- Day 0 is the trigger's calendar date in the practice's time zone; clocks count the days after it.
- Business days: Monday to Friday, less the US federal holidays on their observed dates (the `holidays`
  package's US calendar), plus any days an organization adds. A trigger on a weekend or holiday: the first
  business day after it is day 1. Work SLA dates never roll.
- Payer hard deadlines: calendar days or calendar months from the row's anchor (notice date, date of
  service, end of the month of service); a notice-date window counts from presumed receipt (notice +
  `receipt_presumption_days`). Months from a date keep its day (clamped to the month's last day: a
  2028-02-29 anchor + 12 months is 2029-02-28); months from the end of a month end on the last day of the
  month that many months later. A deadline on a weekend or holiday stays where it falls unless the row
  says it rolls to the next business day. The date returned is the last day on which filing is in time.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import holidays
from dateutil.relativedelta import relativedelta


def day_zero(at: datetime, zone: str | ZoneInfo) -> date:
    """The calendar date of `at` (timezone-aware) in the practice's zone: 2026-12-24T03:30Z for a Los Angeles
    practice is 2026-12-23."""
    if at.tzinfo is None:
        raise ValueError("day_zero needs a timezone-aware time (UTC as stored)")
    return at.astimezone(zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)).date()


class BusinessCalendar:
    """Monday to Friday less US federal holidays (observed dates) and the organization's own closed days."""

    def __init__(self, closed: Iterable[date] = ()) -> None:
        self._federal = holidays.country_holidays("US", observed=True)
        self._closed = frozenset(closed)

    def is_business_day(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self._federal and d not in self._closed

    def add_business_days(self, day0: date, n: int) -> date:
        """The n-th business day after day 0 (n >= 1)."""
        if n < 1:
            raise ValueError("business days are counted from 1")
        d, left = day0, n
        while left:
            d += timedelta(days=1)
            if self.is_business_day(d):
                left -= 1
        return d

    def next_business_day(self, d: date) -> date:
        """`d` itself when it is a business day, else the first business day after it."""
        while not self.is_business_day(d):
            d += timedelta(days=1)
        return d


US_FEDERAL = BusinessCalendar()


def add_months(anchor: date, months: int, *, from_month_end: bool = False) -> date:
    """`months` calendar months after `anchor`: the same day of the month, clamped to the month's last day;
    from the end of the anchor's month, the last day of the month `months` later."""
    if from_month_end:
        return anchor + relativedelta(months=months, day=31)  # relativedelta clamps day=31 to the month's end
    return anchor + relativedelta(months=months)


class Anchor(enum.StrEnum):
    NOTICE_DATE = "notice_date"
    DATE_OF_SERVICE = "date_of_service"
    END_OF_MONTH_OF_SERVICE = "end_of_month_of_service"


@dataclass(frozen=True)
class Window:
    """A payer's hard window as its playbook row states it: days OR months from an anchor."""

    anchor: Anchor
    days: int | None = None
    months: int | None = None
    receipt_presumption_days: int = 0  # a notice-date window counts from presumed receipt
    rolls_to_business_day: bool = False

    def __post_init__(self) -> None:
        if (self.days is None) == (self.months is None):
            raise ValueError("a window is in days or in months (exactly one)")
        if (self.days or 0) < 0 or (self.months or 0) < 0 or self.receipt_presumption_days < 0:
            raise ValueError("a window counts forward")

    def last_day(self, *, notice_date: date | None = None, service_date: date | None = None,
                 calendar: BusinessCalendar = US_FEDERAL) -> date:
        """The last day on which filing is still in time."""
        if self.anchor is Anchor.NOTICE_DATE:
            if notice_date is None:
                raise ValueError("this window counts from the notice date, and there is none")
            start = notice_date + timedelta(days=self.receipt_presumption_days)
        else:
            if service_date is None:
                raise ValueError("this window counts from the date of service, and there is none")
            start = service_date
        if self.days is not None:
            end = start + timedelta(days=self.days)
        else:
            end = add_months(start, self.months or 0,
                             from_month_end=self.anchor is Anchor.END_OF_MONTH_OF_SERVICE)
        return calendar.next_business_day(end) if self.rolls_to_business_day else end


@dataclass(frozen=True)
class SlaPolicy:
    """The practice's work SLAs (DESIGN.md §5 defaults; an organization may change them)."""

    soft_work_business_days: int = 5
    appeal_filed_days: int = 30
    peer_to_peer_days: int = 7
    peer_to_peer_threshold: Decimal = Decimal("1000")
    escalate_unresolved_days: tuple[int, ...] = (14, 30)  # supervisor, then manager


@dataclass(frozen=True)
class WorkClocks:
    """A case's work SLAs (its own work, apart from the payer's hard deadlines). None: not applicable."""

    work_by: date | None  # soft denial: worked within N business days of detection
    appeal_by: date | None  # hard denial: appeal filed within N calendar days of the denial date
    peer_to_peer_by: date | None  # hard clinical denial of a high-dollar claim
    escalations: tuple[date, ...]  # unresolved at 14 and 30 calendar days since detection


def work_clocks(*, detected: date, denial_date: date | None, hard: bool, clinical: bool, billed: Decimal,
                policy: SlaPolicy = SlaPolicy(), calendar: BusinessCalendar = US_FEDERAL) -> WorkClocks:
    """The work SLAs of a denial detected on `detected` (day 0 in the practice's zone); `denial_date` is the
    payer's decision or notice date where the page shows one, else the detection date."""
    decided = denial_date or detected
    return WorkClocks(
        work_by=None if hard else calendar.add_business_days(detected, policy.soft_work_business_days),
        appeal_by=decided + timedelta(days=policy.appeal_filed_days) if hard else None,
        peer_to_peer_by=(decided + timedelta(days=policy.peer_to_peer_days)
                         if hard and clinical and billed >= policy.peer_to_peer_threshold else None),
        escalations=tuple(detected + timedelta(days=n) for n in policy.escalate_unresolved_days),
    )
