"""Denial clocks against hand-checked dates (shared/DESIGN.md §5 "Counting"), without a browser."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from store.workflow.clocks import (
    US_FEDERAL,
    Anchor,
    BusinessCalendar,
    SlaPolicy,
    Window,
    add_months,
    day_zero,
    work_clocks,
)


def test_day_zero_is_the_date_in_the_practices_zone():
    at = datetime(2026, 12, 24, 3, 30, tzinfo=UTC)
    assert day_zero(at, "America/Los_Angeles") == date(2026, 12, 23)
    assert day_zero(at, "America/New_York") == date(2026, 12, 23)
    assert day_zero(at, "Europe/Berlin") == date(2026, 12, 24)
    with pytest.raises(ValueError):
        day_zero(datetime(2026, 12, 24, 3, 30), "UTC")


@pytest.mark.parametrize(("day0", "n", "due"), [
    # Wed 12-23: Thu 24 (1), Fri 25 Christmas, weekend, Mon 28 (2), Tue 29 (3), Wed 30 (4), Thu 31 (5)
    (date(2026, 12, 23), 5, date(2026, 12, 31)),
    # Sat 2026-07-04 (Independence Day; observed Fri 07-03): Mon 07-06 is day 1
    (date(2026, 7, 4), 1, date(2026, 7, 6)),
    (date(2026, 7, 2), 1, date(2026, 7, 6)),  # Thu; Fri 07-03 is the observed holiday
    # Thu 2027-12-30: Fri 12-31 is New Year's Day 2028 observed; Mon 2028-01-03 is day 1
    (date(2027, 12, 30), 1, date(2028, 1, 3)),
    # Fri 2026-11-20: Mon 23, Tue 24, Wed 25, Thu 26 Thanksgiving, Fri 27 -> the 4th is 11-27
    (date(2026, 11, 20), 4, date(2026, 11, 27)),
    # Juneteenth 2027 falls on Saturday, observed Friday 06-18
    (date(2027, 6, 17), 1, date(2027, 6, 21)),
])
def test_business_days_skip_weekends_and_observed_federal_holidays(day0, n, due):
    assert US_FEDERAL.add_business_days(day0, n) == due


def test_an_organization_can_close_more_days():
    cal = BusinessCalendar(closed=[date(2026, 12, 24)])
    assert cal.add_business_days(date(2026, 12, 23), 1) == date(2026, 12, 28)
    with pytest.raises(ValueError):
        cal.add_business_days(date(2026, 12, 23), 0)


def test_medicare_redetermination_counts_120_days_from_presumed_receipt():
    redetermination = Window(anchor=Anchor.NOTICE_DATE, days=120, receipt_presumption_days=5)
    # notice Mon 2026-03-02, presumed received 03-07; +120 days: Mar 24 left, Apr 30, May 31, Jun 30, Jul 5
    assert redetermination.last_day(notice_date=date(2026, 3, 2)) == date(2026, 7, 5)  # a Sunday: stays
    rolling = Window(anchor=Anchor.NOTICE_DATE, days=120, receipt_presumption_days=5, rolls_to_business_day=True)
    assert rolling.last_day(notice_date=date(2026, 3, 2)) == date(2026, 7, 6)
    with pytest.raises(ValueError, match="notice date"):
        redetermination.last_day(service_date=date(2026, 3, 2))


def test_windows_in_months_across_a_february_29():
    timely_filing = Window(anchor=Anchor.DATE_OF_SERVICE, months=12)
    assert timely_filing.last_day(service_date=date(2028, 2, 29)) == date(2029, 2, 28)
    assert timely_filing.last_day(service_date=date(2026, 3, 1)) == date(2027, 3, 1)
    end_of_month = Window(anchor=Anchor.END_OF_MONTH_OF_SERVICE, months=6)
    assert end_of_month.last_day(service_date=date(2028, 2, 10)) == date(2028, 8, 31)
    assert end_of_month.last_day(service_date=date(2027, 8, 31)) == date(2028, 2, 29)
    assert add_months(date(2027, 2, 28), 12, from_month_end=True) == date(2028, 2, 29)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    with pytest.raises(ValueError):
        Window(anchor=Anchor.DATE_OF_SERVICE, days=90, months=3)


def test_work_clocks_of_a_soft_and_of_a_hard_clinical_denial():
    soft = work_clocks(detected=date(2026, 12, 23), denial_date=None, hard=False, clinical=False,
                       billed=Decimal("150"))
    assert (soft.work_by, soft.appeal_by, soft.peer_to_peer_by) == (date(2026, 12, 31), None, None)
    assert soft.escalations == (date(2027, 1, 6), date(2027, 1, 22))
    hard = work_clocks(detected=date(2026, 12, 23), denial_date=date(2026, 12, 18), hard=True, clinical=True,
                       billed=Decimal("1000.00"))
    assert (hard.work_by, hard.appeal_by, hard.peer_to_peer_by) == (None, date(2027, 1, 17), date(2026, 12, 25))
    below = work_clocks(detected=date(2026, 12, 23), denial_date=None, hard=True, clinical=True,
                        billed=Decimal("999.99"), policy=SlaPolicy())
    assert below.peer_to_peer_by is None and below.appeal_by == date(2027, 1, 22)
