"""How the portals print money and dates, read back exactly: '$1,234.56', '-$12.00', '07/09/2026'.
Anything else is PortalDrift naming the field (never a guess: DESIGN.md §4). Pure, no browser.

Each portal's mapping adds what is its own (Medicaid's 'N/A', the clearinghouse's service date ranges);
claim number keys stay per portal, because each payer prints its numbers its own way."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

from core.errors import PortalDrift

_MONEY = re.compile(r"^(-)?\$([0-9]{1,3}(?:,[0-9]{3})*|[0-9]+)\.([0-9]{2})$")


def money(text: object, *, what: str) -> Decimal:
    """'$1,234.56' -> Decimal('1234.56'), '-$5.00' -> Decimal('-5.00'); anything else (a number, None,
    'N/A', a missing cent) -> PortalDrift."""
    m = _MONEY.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise PortalDrift(f"unreadable amount in {what}")
    value = Decimal(f"{m.group(2).replace(',', '')}.{m.group(3)}")
    return -value if m.group(1) else value


def mdy(text: object, *, what: str) -> date:
    """'MM/DD/YYYY' -> date; anything else -> PortalDrift."""
    try:
        if isinstance(text, str):
            return datetime.strptime(text.strip(), "%m/%d/%Y").date()
    except ValueError:
        pass
    raise PortalDrift(f"unreadable date in {what}")


def fmt_mdy(d: date) -> str:
    """A date as the portals' search forms take it (MM/DD/YYYY)."""
    return d.strftime("%m/%d/%Y")


def optional(text: str | None, *, blanks: tuple[str, ...] = ("", "-")) -> str | None:
    """A cell that may be empty: None for no text or one of the page's blanks ('-', 'N/A', an em dash)."""
    if text is None:
        return None
    t = text.strip()
    return None if t in blanks else t


def money_or_none(text: object, *, what: str) -> Decimal | None:
    """Like money(), but a null (JSON null: nothing adjudicated yet) is None."""
    return None if text is None else money(text, what=what)
