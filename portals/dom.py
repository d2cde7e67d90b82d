"""Generic DOM readers every portal's page objects use: an element the loaded page must have, tables and
label/value lists read in one round trip each (header and cell text), drift when their shape changed.

Elements are checked with `count()` once the document is loaded: a missing one is PortalDrift at once,
never a 20-second wait that would look like an outage. The readers return strings; what they mean is the
portal's mapping's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Locator

from core.errors import PortalDrift

# A table -> {headers, rows: [{cells, href, nested}]}: the header row is the <thead>'s first row, or the
# table's first row when it has no <thead> (WebForms grids); each body row's own cells' text (table.rows
# and row.cells never descend into nested tables), its first link and its nested tables' rows. A JS
# function expression, so that other readers can call it on tables they find (see `js`).
GRID_FN = """(t) => {
  const head = t.tHead ? t.tHead.rows[0] : (t.rows[0] || null);
  const body = t.tHead ? Array.from(t.tBodies).flatMap(b => Array.from(b.rows)) : Array.from(t.rows).slice(1);
  const texts = (r) => Array.from(r.cells).map(c => c.innerText.trim());
  return {headers: head ? texts(head) : [], rows: body.map(r => {
    const a = r.querySelector('a[href]');
    return {cells: texts(r), href: a ? a.getAttribute('href') : null,
            nested: Array.from(r.querySelectorAll('table tr')).map(texts)};
  })};
}"""

TEXT_JS = "(e) => e.innerText.trim()"


def pairs_js(label: str, value: str) -> str:
    """A label/value list -> {label: value}: every `label` element with the `value` element right after
    it (<dt>/<dd> lists, <th>/<td> header tables)."""
    return f"""(root) => {{
  const out = {{}};
  for (const l of root.querySelectorAll('{label}')) {{
    const v = l.nextElementSibling;
    if (v && v.tagName === '{value.upper()}') out[l.innerText.trim()] = v.innerText.trim();
  }}
  return out;
}}"""


@dataclass
class GridRow:
    """One body row of a table as printed: {column header: cell text}, its first link, nested rows."""

    cells: dict[str, str]
    href: str | None = None
    nested: list[list[str]] = field(default_factory=list)


async def require(loc: Locator, what: str) -> Locator:
    """The one element `loc` must match on the loaded document, else PortalDrift (no auto-wait)."""
    if await loc.count() != 1:
        raise PortalDrift(f"{what} not found on the page")
    return loc


async def each(loc: Locator, js: str) -> list[Any]:
    """`js` applied to every element `loc` matches now, in one round trip (no auto-wait; [] when none)."""
    return await loc.evaluate_all(f"els => els.map({js})")


async def one(loc: Locator, js: str, what: str) -> Any:
    """`require` and read in one round trip: `js` of the one element `loc` must match, else PortalDrift."""
    vals = await each(loc, js)
    if len(vals) != 1:
        raise PortalDrift(f"{what} not found on the page")
    return vals[0]


async def read_grid(table: Locator, columns: tuple[str, ...], what: str) -> list[GridRow]:
    """Body rows of the one table `table` matches; drift when it or its columns are not the expected ones."""
    return grid_rows(await one(table, GRID_FN, what), columns, what)


def grid_rows(data: dict, columns: tuple[str, ...], what: str) -> list[GridRow]:
    """A table read by GRID_FN as rows of {header: text}; drift when the columns are not the expected ones."""
    if tuple(data["headers"]) != columns:
        raise PortalDrift(f"{what}: columns changed")
    rows = []
    for r in data["rows"]:
        if len(r["cells"]) != len(columns):
            raise PortalDrift(f"{what}: row shape changed")
        rows.append(GridRow(dict(zip(columns, r["cells"], strict=True)), r["href"], r["nested"]))
    return rows
