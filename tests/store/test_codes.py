"""The shipped code lists are the shared ones (no silent drift)."""

from pathlib import Path

import pytest

from core import codes
from core.config import get_settings

SHIPPED = Path(codes.__file__).parent / "data"


@pytest.mark.parametrize("name", ["carc.csv", "rarc.csv", "claim_status.csv", "claim_status_category.csv",
                                  "group_codes.csv"])
def test_shipped_copy_matches_shared(name):
    shared = get_settings().shared_dir / "data" / "codes" / name
    if not shared.exists():
        pytest.skip(f"no shared folder at {shared}")
    assert (SHIPPED / name).read_bytes() == shared.read_bytes()


def test_tables_load():
    assert codes.carc()["45"]["description"].startswith("Charge exceeds fee schedule")
    assert codes.status_categories()["F2"].startswith("Finalized/Denial")
    assert "N130" in codes.rarc()
    assert codes.short_description(codes.carc()["16"]["description"]).endswith("error(s).")
