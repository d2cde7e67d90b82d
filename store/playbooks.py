"""Payer playbooks: each payer's appeal window and timely filing limit (days or months, from their anchors),
receipt presumption and roll-forward, seeded from public facts (shared/data/payers/payer_deadlines.csv, one
row per payer and plan type, each with its source) and overridden by an administrator per organization
(a Payer row is the organization's own). The appeal channel, address and levels are an administrator's to
fill: the public table has none. The case intake turns a playbook into dates (store/cases.py).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from store.models import Payer
from store.workflow.clocks import Anchor, Window

COLUMNS = ("payer", "plan_type", "appeal_window_days", "appeal_from", "timely_filing_days", "tf_from", "source",
           "notes", "appeal_window_months", "timely_filing_months", "receipt_presumption_days",
           "rolls_to_business_day", "appeal_anchor", "tf_anchor")


class PlaybookError(ValueError):
    """A playbook row or override that cannot be used (names the row and the field)."""


@dataclass(frozen=True)
class PlaybookRow:
    payer: str
    plan_type: str
    appeal_days: int | None
    appeal_months: int | None
    appeal_anchor: Anchor | None
    tf_days: int | None
    tf_months: int | None
    tf_anchor: Anchor | None
    receipt_presumption_days: int
    rolls_to_business_day: bool
    source: str
    notes: str

    @property
    def key(self) -> tuple[str, str]:
        return self.payer, self.plan_type


def _int(raw: dict[str, str], name: str, where: str) -> int | None:
    value = (raw.get(name) or "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise PlaybookError(f"{where}: '{name}' is not a whole number: {value!r}") from None
    if n < 0:
        raise PlaybookError(f"{where}: '{name}' is negative")
    return n


def _anchor(raw: dict[str, str], name: str, where: str, needed: bool) -> Anchor | None:
    value = (raw.get(name) or "").strip()
    if not value:
        if needed:
            raise PlaybookError(f"{where}: '{name}' is empty but the row has a window")
        return None
    try:
        return Anchor(value)
    except ValueError:
        raise PlaybookError(f"{where}: '{name}' must be one of {', '.join(a.value for a in Anchor)}") from None


def parse_row(raw: dict[str, str], where: str) -> PlaybookRow:
    a_days, a_months = _int(raw, "appeal_window_days", where), _int(raw, "appeal_window_months", where)
    t_days, t_months = _int(raw, "timely_filing_days", where), _int(raw, "timely_filing_months", where)
    if a_days is not None and a_months is not None:
        raise PlaybookError(f"{where}: 'appeal_window_days' and 'appeal_window_months' are both set")
    if t_days is not None and t_months is not None:
        raise PlaybookError(f"{where}: 'timely_filing_days' and 'timely_filing_months' are both set")
    rolls = (raw.get("rolls_to_business_day") or "").strip()
    if rolls not in ("", "yes", "no"):
        raise PlaybookError(f"{where}: 'rolls_to_business_day' must be yes, no or empty")
    return PlaybookRow(
        payer=(raw.get("payer") or "").strip(), plan_type=(raw.get("plan_type") or "").strip(),
        appeal_days=a_days, appeal_months=a_months,
        appeal_anchor=_anchor(raw, "appeal_anchor", where, a_days is not None or a_months is not None),
        tf_days=t_days, tf_months=t_months,
        tf_anchor=_anchor(raw, "tf_anchor", where, t_days is not None or t_months is not None),
        receipt_presumption_days=_int(raw, "receipt_presumption_days", where) or 0,
        rolls_to_business_day=rolls == "yes", source=(raw.get("source") or "").strip(),
        notes=(raw.get("notes") or "").strip())


def load_rows(path: Path) -> dict[tuple[str, str], PlaybookRow]:
    """The public table, by (payer, plan_type). A missing file or a bad row is a PlaybookError naming it."""
    if not path.is_file():
        raise PlaybookError(f"payer deadlines not found at {path} (setting PORTAL_AGENT_PAYER_DEADLINES_CSV)")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise PlaybookError(f"{path.name}: columns must be {', '.join(COLUMNS)}")
        rows = [parse_row(r, f"{path.name} line {i}") for i, r in enumerate(reader, start=2)]
    return {r.key: r for r in rows}


def apply(payer: Payer, row: PlaybookRow) -> None:
    """Seed an organization's payer from a public row (an administrator may change any figure after)."""
    payer.appeal_window_days, payer.appeal_window_months = row.appeal_days, row.appeal_months
    payer.appeal_anchor = row.appeal_anchor.value if row.appeal_anchor else None
    payer.timely_filing_days, payer.timely_filing_months = row.tf_days, row.tf_months
    payer.tf_anchor = row.tf_anchor.value if row.tf_anchor else None
    payer.receipt_presumption_days = row.receipt_presumption_days
    payer.rolls_to_business_day = row.rolls_to_business_day
    payer.playbook_row = f"{row.payer} | {row.plan_type}"[:200]
    payer.playbook_source = row.source
    payer.notes = row.notes or payer.notes


def appeal_window(payer: Payer) -> Window | None:
    if payer.appeal_window_days is None and payer.appeal_window_months is None:
        return None
    return Window(anchor=Anchor(payer.appeal_anchor or Anchor.NOTICE_DATE.value), days=payer.appeal_window_days,
                  months=payer.appeal_window_months, receipt_presumption_days=payer.receipt_presumption_days or 0,
                  rolls_to_business_day=bool(payer.rolls_to_business_day))


def timely_filing_window(payer: Payer) -> Window | None:
    if payer.timely_filing_days is None and payer.timely_filing_months is None:
        return None
    anchor = Anchor(payer.tf_anchor or Anchor.DATE_OF_SERVICE.value)
    return Window(anchor=anchor, days=payer.timely_filing_days, months=payer.timely_filing_months,
                  receipt_presumption_days=payer.receipt_presumption_days if anchor is Anchor.NOTICE_DATE else 0,
                  rolls_to_business_day=bool(payer.rolls_to_business_day))


def describe(window: Window | None, what: str) -> str | None:
    if window is None:
        return None
    size = f"{window.days} days" if window.days is not None else f"{window.months} months"
    frm = {Anchor.NOTICE_DATE: "the notice" + (f" (+{window.receipt_presumption_days} days presumed receipt)"
                                                if window.receipt_presumption_days else ""),
           Anchor.DATE_OF_SERVICE: "the date of service",
           Anchor.END_OF_MONTH_OF_SERVICE: "the end of the month of service"}[window.anchor]
    return f"{what} {size} from {frm}" + (", rolls to a business day" if window.rolls_to_business_day else "")
