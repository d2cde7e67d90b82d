"""What an adjustment or a rejection IS, on intake: normal adjudication or a denial, and for a denial its
root-cause bucket, soft vs hard, clinical vs administrative, preventable or not (shared/DESIGN.md §5).

The table is data: store/workflow/data/carc_categories.csv, one default row for EVERY CARC of the product's
code list (deactivated ones included and marked), rows for the group + CARC pairs that are normal
adjudication (CO-45, PR-1/2/3, OA-23, CO-253, ...), and RARC refinements (CO-16 with a missing-documentation
RARC is documentation; with a patient-field RARC, demographic). Where it disagrees with the real facility's
categories (shared/data/codes/reference_carc_denial_category.csv) its `note` says why.

Overrides come as rows of the same shape with a scope: `org:<id>:payer:<key>` (an organization's rule for
one payer) over `org:<id>` (its rule for every payer) over `payer:<key>` over the defaults; within a scope
the most specific row wins: group + CARC + RARC, then CARC + RARC, then group + CARC, then CARC. Pure: no I/O beyond reading the packaged table.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from core.codes import carc as carc_codes


class Bucket(enum.StrEnum):
    ELIGIBILITY = "eligibility"
    COORDINATION_OF_BENEFITS = "coordination_of_benefits"
    AUTHORIZATION = "authorization"
    DEMOGRAPHIC = "demographic"
    CODING = "coding"
    DOCUMENTATION = "documentation"
    MEDICAL_NECESSITY = "medical_necessity"
    TIMELY_FILING = "timely_filing"
    DUPLICATE = "duplicate"
    CREDENTIALING = "credentialing"
    NON_COVERED = "non_covered"
    OTHER = "other"


class TableError(ValueError):
    """The categorization table (or an override row) is not usable: names the row and the field."""


@dataclass(frozen=True)
class Category:
    """What a denial (or rejection) is. `normal`: normal adjudication, not a denial at all."""

    bucket: Bucket
    hard: bool
    clinical: bool
    preventable: bool
    normal: bool = False
    deactivated: bool = False  # the CARC is deactivated in the code list (older remittances still carry it)
    source: str = "default"  # which row decided: default | payer:<key> | org:<id>, and its key

    @property
    def severity(self) -> str:
        return "hard" if self.hard else "soft"


# A rejection never entered adjudication: correct and resubmit (DESIGN.md §5 "Rejection vs denial"); what
# to correct is in the edit's words, so it is demographic/eligibility/coding work by the 277 status code.
REJECTION_STATUS_BUCKETS: dict[str, Bucket] = {
    "33": Bucket.DEMOGRAPHIC,  # subscriber and subscriber id not found
    "562": Bucket.CREDENTIALING,  # billing provider NPI invalid
    "187": Bucket.CODING,  # date(s) of service
    "255": Bucket.CODING,  # diagnosis code
    "21": Bucket.CODING,  # missing or invalid information
}

_FIELDS = ("carc", "group", "rarc", "bucket", "severity", "nature", "preventable", "normal", "deactivated", "note")
_YES_NO = {"yes": True, "no": False}


@dataclass(frozen=True)
class _Row:
    scope: str
    carc: str
    group: str
    rarc: str
    category: Category


def _parse(raw: dict[str, str], where: str, scope: str = "default") -> _Row:
    def field(name: str, allowed: Iterable[str] | None = None, blank: bool = False) -> str:
        value = (raw.get(name) or "").strip()
        if not value and not blank:
            raise TableError(f"{where}: '{name}' is empty")
        if value and allowed is not None and value not in allowed:
            raise TableError(f"{where}: '{name}' must be one of {sorted(allowed)}, not {value!r}")
        return value

    code = field("carc")
    if code not in carc_codes():
        raise TableError(f"{where}: 'carc' {code!r} is not in the code list")
    bucket = Bucket(field("bucket", {b.value for b in Bucket}))
    key = "-".join(p for p in (field("group", blank=True), code, field("rarc", blank=True)) if p)
    category = Category(bucket=bucket, hard=field("severity", {"soft", "hard"}) == "hard",
                        clinical=field("nature", {"clinical", "administrative"}) == "clinical",
                        preventable=_YES_NO[field("preventable", _YES_NO)],
                        normal=_YES_NO[field("normal", _YES_NO)],
                        deactivated=carc_codes()[code]["status"] != "current",
                        source=f"{scope}:{key}")
    return _Row(scope, code, field("group", blank=True), field("rarc", blank=True), category)


@lru_cache
def default_rows() -> tuple[_Row, ...]:
    text = files(__package__).joinpath("data", "carc_categories.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(text.splitlines())
    if tuple(reader.fieldnames or ()) != _FIELDS:
        raise TableError(f"carc_categories.csv: columns must be {', '.join(_FIELDS)}")
    rows = tuple(_parse(r, f"carc_categories.csv line {i}") for i, r in enumerate(reader, start=2))
    seen: set[tuple[str, str, str]] = set()
    for r in rows:
        k = (r.carc, r.group, r.rarc)
        if k in seen:
            raise TableError(f"carc_categories.csv: two rows for {'-'.join(p for p in k if p)}")
        seen.add(k)
    return rows


class Categorizer:
    """The default table plus an organization's and its payers' overrides (rows of the table's shape with
    a `scope`: `payer:<key>` or `org:<id>`)."""

    def __init__(self, overrides: Sequence[dict[str, str]] = ()) -> None:
        self._by_key: dict[tuple[str, str, str, str], Category] = {}
        for r in default_rows():
            self._by_key[("default", r.carc, r.group, r.rarc)] = r.category
        for i, raw in enumerate(overrides, start=1):
            scope = (raw.get("scope") or "").strip()
            parts = scope.split(":")
            if not ((len(parts) == 2 and parts[0] in ("payer", "org")) or (
                    len(parts) == 4 and parts[0] == "org" and parts[2] == "payer")) or not all(parts):
                raise TableError(f"override {i}: 'scope' must be payer:<key>, org:<id> or org:<id>:payer:<key>, "
                                 f"not {scope!r}")
            r = _parse(raw, f"override {i}", scope)
            self._by_key[(scope, r.carc, r.group, r.rarc)] = r.category

    def _lookup(self, scopes: Sequence[str], keys: Sequence[tuple[str, str, str]]) -> Category | None:
        for scope in scopes:
            for carc, group, rarc in keys:
                found = self._by_key.get((scope, carc, group, rarc))
                if found is not None:
                    return found
        return None

    def categorize(self, group: str, carc: str, rarcs: Sequence[str] = (), *, payer: str | None = None,
                   org: str | None = None) -> Category:
        """The category of one adjustment (group + CARC, with the line's RARCs). A CARC missing from the code
        list is a TableError (the adapters refuse such codes before they get here)."""
        if carc not in carc_codes():
            raise TableError(f"CARC {carc!r} is not in the code list")
        scopes = [s for s in (f"org:{org}:payer:{payer}" if org and payer else None, f"org:{org}" if org else None,
                              f"payer:{payer}" if payer else None, "default") if s]
        keys = [*((carc, group, r) for r in rarcs), *((carc, "", r) for r in rarcs), (carc, group, ""),
                (carc, "", "")]
        found = self._lookup(scopes, keys)
        if found is None:  # every CARC has a default row (tests/store/test_categorize.py); never a guess
            raise TableError(f"CARC {carc} has no row in carc_categories.csv")
        return found

    def is_normal(self, group: str, carc: str, *, payer: str | None = None, org: str | None = None) -> bool:
        """Normal adjudication (contractual reduction, patient share, prior payer's impact): not a denial."""
        return self.categorize(group, carc, payer=payer, org=org).normal

    def rejection(self, status_code: str | None) -> Category:
        """A front-end rejection: soft, administrative, preventable; bucket by the 277 status code."""
        bucket = REJECTION_STATUS_BUCKETS.get(status_code or "", Bucket.OTHER)
        return Category(bucket=bucket, hard=False, clinical=False, preventable=True,
                        source=f"rejection:{status_code or '-'}")


@lru_cache
def default_categorizer() -> Categorizer:
    return Categorizer()
