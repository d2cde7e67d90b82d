"""Payer playbooks seeded from the public deadlines table (store/playbooks.py), without a browser: every row
reads, windows in days or months from their anchors, presumed receipt, roll-forward, and the sandbox payers'
rows exist."""

from __future__ import annotations

from datetime import date

import pytest

from core.config import get_settings
from fixtures.world.world import PLAYBOOK_ROWS
from store import playbooks
from store.models import Payer
from store.workflow.clocks import Anchor


@pytest.fixture(scope="module")
def rows():
    path = get_settings().resolved_payer_deadlines_csv()
    if not path.exists():
        pytest.skip(f"no shared folder at {path}")
    return playbooks.load_rows(path)


def _payer(row) -> Payer:
    p = Payer(key="X", name="X", portal_key="commercial")
    playbooks.apply(p, row)
    return p


def test_every_public_row_reads_with_its_source(rows):
    assert len(rows) == 20
    for row in rows.values():
        assert row.source, row.key
        assert (row.appeal_days is None or row.appeal_months is None) and (row.tf_days is None or row.tf_months is None)


def test_medicare_redetermination_from_presumed_receipt_and_12_months_timely_filing(rows):
    p = _payer(rows[("Medicare (Original/FFS, Part A & B)", "Medicare FFS - level 1 redetermination (MAC)")])
    appeal, tf = playbooks.appeal_window(p), playbooks.timely_filing_window(p)
    assert (appeal.days, appeal.receipt_presumption_days, appeal.anchor) == (120, 5, Anchor.NOTICE_DATE)
    assert appeal.last_day(notice_date=date(2026, 3, 2)) == date(2026, 7, 5)  # received 03-07 + 120 days
    assert tf.last_day(service_date=date(2028, 2, 29)) == date(2029, 2, 28)  # 12 months, Feb 29 -> Feb 28
    assert "120 days from the notice (+5 days presumed receipt)" in playbooks.describe(appeal, "appeal")
    assert p.playbook_source.startswith("42 CFR 405.942")


def test_medi_cal_six_months_from_the_end_of_the_month_of_service(rows):
    tf = playbooks.timely_filing_window(_payer(rows[("California Medi-Cal (FFS)", "Medicaid FFS")]))
    assert tf.anchor is Anchor.END_OF_MONTH_OF_SERVICE
    assert tf.last_day(service_date=date(2028, 2, 10)) == date(2028, 8, 31)


def test_texas_medicaid_rolls_a_weekend_deadline_to_the_next_business_day(rows):
    p = _payer(rows[("Texas Medicaid (TMHP, FFS)", "Medicaid FFS")])
    appeal = playbooks.appeal_window(p)
    # notice 2026-03-07 + 120 days = 2026-07-05, a Sunday (07-03 is the observed Independence Day): Monday 07-06
    assert appeal.rolls_to_business_day and appeal.last_day(notice_date=date(2026, 3, 7)) == date(2026, 7, 6)


def test_each_sandbox_payer_stands_for_a_real_row(rows):
    for key, ref in PLAYBOOK_ROWS.items():
        row = rows[(ref["payer"], ref["plan_type"])]
        assert row.appeal_days or row.appeal_months, key
        assert row.tf_days or row.tf_months, key


@pytest.mark.parametrize(("change", "field"), [
    ({"appeal_window_days": "ninety"}, "appeal_window_days"),
    ({"appeal_window_days": "90", "appeal_window_months": "3"}, "appeal_window_months"),
    ({"appeal_anchor": "the day after"}, "appeal_anchor"),
    ({"appeal_anchor": ""}, "appeal_anchor"),
    ({"rolls_to_business_day": "sometimes"}, "rolls_to_business_day"),
    ({"receipt_presumption_days": "-5"}, "receipt_presumption_days"),
])
def test_a_bad_row_names_its_field(change, field):
    base = {"payer": "P", "plan_type": "T", "appeal_window_days": "90", "appeal_anchor": "notice_date",
            "timely_filing_days": "", "tf_anchor": ""}
    with pytest.raises(playbooks.PlaybookError, match=f"'{field}'"):
        playbooks.parse_row({**base, **change}, "row 2")


def test_a_missing_table_names_the_setting(tmp_path):
    with pytest.raises(playbooks.PlaybookError, match="PORTAL_AGENT_PAYER_DEADLINES_CSV"):
        playbooks.load_rows(tmp_path / "nope.csv")
