"""Code tables shipped with the product: CARC, RARC, 277 claim status categories and codes, group codes."""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from importlib.resources import files

_USAGE = re.compile(r"\s*(Usage|Note):.*$", re.DOTALL)


def _rows(name: str) -> list[dict[str, str]]:
    text = files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@lru_cache
def carc() -> dict[str, dict[str, str]]:
    return {r["code"]: r for r in _rows("carc.csv")}


@lru_cache
def rarc() -> dict[str, dict[str, str]]:
    return {r["code"]: r for r in _rows("rarc.csv")}


@lru_cache
def status_categories() -> dict[str, str]:
    return {r["code"]: r["description"] for r in _rows("claim_status_category.csv")}


@lru_cache
def status_codes() -> dict[str, str]:
    return {r["code"]: r["description"] for r in _rows("claim_status.csv")}


@lru_cache
def group_codes() -> dict[str, str]:
    return {r["code"]: r["description"] for r in _rows("group_codes.csv")}


def short_description(text: str) -> str:
    """A code description without its 'Usage:'/'Note:' tail (what portals print)."""
    return _USAGE.sub("", text).strip()
