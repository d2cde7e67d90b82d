"""The categorization table (store/workflow/data/carc_categories.csv) and its rules, without a browser:
every CARC of the shared code list has a row, normal adjudication is data, RARCs refine CO-16, overrides
per payer and per organization win in that order, and disagreements with the real facility's categories
carry a reason."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from core.config import get_settings
from store import repo
from store.workflow import categorize
from store.workflow.categorize import Bucket, Categorizer, TableError

TABLE = Path(categorize.__file__).parent / "data" / "carc_categories.csv"


def _shared(name: str) -> Path:
    path = get_settings().shared_dir / "data" / "codes" / name
    if not path.exists():
        pytest.skip(f"no shared folder at {path}")
    return path


def _table() -> list[dict[str, str]]:
    return list(csv.DictReader(TABLE.read_text(encoding="utf-8").splitlines()))


def test_no_carc_of_the_shared_code_list_is_unmapped():
    shared = {r["code"]: r["status"] for r in csv.DictReader(_shared("carc.csv").open(encoding="utf-8"))}
    defaults = {r["carc"]: r for r in _table() if not r["group"] and not r["rarc"]}
    assert set(shared) - set(defaults) == set()
    assert set(defaults) - set(shared) == set()
    for code, status in shared.items():  # deactivated ones included, and marked
        assert defaults[code]["deactivated"] == ("yes" if status == "deactivated" else "no"), code
        assert categorize.default_categorizer().categorize("CO", code).bucket in Bucket


def test_normal_adjudication_is_data():
    c = categorize.default_categorizer()
    for group, carc in [("CO", "45"), ("PR", "1"), ("PR", "2"), ("PR", "3"), ("OA", "23"), ("CO", "A2"),
                        ("CR", "45"), ("OA", "94"), ("CO", "42"), ("CO", "253")]:
        assert c.is_normal(group, carc), f"{group}-{carc}"
    for group, carc in [("CO", "16"), ("CO", "18"), ("OA", "18"), ("CO", "29"), ("CO", "50"), ("CO", "97"),
                        ("CO", "197"), ("CO", "B7"), ("PR", "96"), ("OA", "22")]:
        assert not c.is_normal(group, carc), f"{group}-{carc}"
    # a zero-pay line on a real remittance (shared/data/remits/835/ks_emedny_sample.835: CO-251 + N206)
    assert not c.is_normal("CO", "251")
    assert c.categorize("CO", "251", ["N206"]).bucket == Bucket.DOCUMENTATION


@pytest.mark.parametrize(("group", "carc", "rarcs", "bucket", "hard"), [
    ("CO", "16", [], Bucket.CODING, False),
    ("CO", "16", ["M51"], Bucket.CODING, False),  # procedure code
    ("CO", "16", ["N382"], Bucket.DEMOGRAPHIC, False),  # patient identifier
    ("CO", "16", ["N706"], Bucket.DOCUMENTATION, False),  # missing documentation
    ("CO", "16", ["N290"], Bucket.CREDENTIALING, True),  # rendering provider identifier
    ("CO", "16", ["MA04", "N382"], Bucket.DEMOGRAPHIC, False),  # the first RARC with a row decides
    ("CO", "27", ["N30"], Bucket.ELIGIBILITY, False),
    ("OA", "22", ["MA04"], Bucket.COORDINATION_OF_BENEFITS, False),
    ("CO", "197", ["N54"], Bucket.AUTHORIZATION, True),
    ("CO", "50", ["N115"], Bucket.MEDICAL_NECESSITY, True),
    ("CO", "29", ["N211"], Bucket.TIMELY_FILING, True),
    ("OA", "18", [], Bucket.DUPLICATE, False),
    ("CO", "B7", ["N570"], Bucket.CREDENTIALING, True),
    ("CO", "96", ["N130"], Bucket.NON_COVERED, True),
    ("CO", "97", ["M15"], Bucket.CODING, False),
    ("CO", "109", ["N418"], Bucket.ELIGIBILITY, False),
])
def test_buckets_of_the_denials_billers_see_most(group, carc, rarcs, bucket, hard):
    cat = categorize.default_categorizer().categorize(group, carc, rarcs)
    assert (cat.bucket, cat.hard, cat.normal) == (bucket, hard, False)


def test_medical_necessity_is_clinical_and_not_preventable_coding_is_administrative():
    c = categorize.default_categorizer()
    mn, coding = c.categorize("CO", "50"), c.categorize("CO", "4")
    assert (mn.clinical, mn.preventable, mn.severity) == (True, False, "hard")
    assert (coding.clinical, coding.preventable, coding.severity) == (False, True, "soft")


def test_disagreements_with_the_reference_table_say_why():
    buckets = {"Past Timely Filing Limits": "timely_filing", "Duplicate Claim": "duplicate",
               "Medical Necessity": "medical_necessity", "Non-Covered Service": "non_covered",
               "Billing Error: Invalid Code": "coding", "Additional Information Requested": "documentation",
               "Invalid/Missing Authorization": "authorization", "Bundling": "coding", "Eligibility": "eligibility",
               "Level of Care": "medical_necessity", "Patient Liability": "non_covered", "Informational": "other"}
    defaults = {r["carc"]: r for r in _table() if not r["group"] and not r["rarc"]}
    reasons = 0
    for ref in csv.DictReader(_shared("reference_carc_denial_category.csv").open(encoding="utf-8")):
        ours = defaults[ref["carc"]]
        if buckets.get(ref["denial_category"]) != ours["bucket"] and not (
                ref["carc"] == "96" and ours["bucket"] == "non_covered"):
            assert ours["note"].startswith("reference: "), ref["carc"]
            assert len(ours["note"]) > 40, ref["carc"]  # a reason, not just the reference's words
            reasons += 1
    assert reasons >= 5


def test_overrides_per_payer_then_per_organization():
    row = {"carc": "97", "group": "", "rarc": "", "bucket": "documentation", "severity": "hard",
           "nature": "clinical", "preventable": "no", "normal": "no", "deactivated": "", "note": "policy"}
    c = Categorizer([{**row, "scope": "payer:BMH"}, {**row, "scope": "org:7", "bucket": "coding"}])
    assert c.categorize("CO", "97").bucket == Bucket.CODING and c.categorize("CO", "97").source == "default:97"
    assert c.categorize("CO", "97", payer="BMH").bucket == Bucket.DOCUMENTATION
    assert c.categorize("CO", "97", payer="BMH").source == "payer:BMH:97"
    assert c.categorize("CO", "97", payer="BMH", org="7").bucket == Bucket.CODING
    assert c.categorize("CO", "97", payer="XYZ", org="8").bucket == Bucket.CODING  # default
    normal = Categorizer([{**row, "scope": "payer:BMH", "carc": "59", "group": "CO", "normal": "no",
                           "bucket": "coding"}])
    assert categorize.default_categorizer().is_normal("CO", "59") and not normal.is_normal("CO", "59", payer="BMH")


@pytest.mark.parametrize(("change", "field"), [({"scope": "everyone"}, "scope"), ({"carc": "999"}, "carc"),
                                               ({"bucket": "misc"}, "bucket"), ({"severity": "medium"}, "severity"),
                                               ({"preventable": ""}, "preventable")])
def test_a_bad_override_names_its_field(change, field):
    row = {"scope": "org:1", "carc": "97", "group": "", "rarc": "", "bucket": "coding", "severity": "soft",
           "nature": "administrative", "preventable": "yes", "normal": "no", "deactivated": "", "note": ""}
    with pytest.raises(TableError, match=f"'{field}'"):
        Categorizer([{**row, **change}])


def test_rejections_are_their_own_workflow():
    c = categorize.default_categorizer()
    assert c.rejection("33").bucket == Bucket.DEMOGRAPHIC and not c.rejection("33").hard
    assert c.rejection(None).bucket == Bucket.OTHER


def test_denial_keys_skip_normal_adjudication_from_the_table():
    line = LineResult(line_no=1, cpt="99213", billed=Decimal("200"), allowed=Decimal("120"), paid=Decimal("0"),
                      adjustments=[LineAdjustment(group="CO", carc="45", amount=Decimal("80")),
                                   LineAdjustment(group="OA", carc="23", amount=Decimal("20")),
                                   LineAdjustment(group="CO", carc="50", amount=Decimal("100"))],
                      rarcs=["N115"])
    r = ClaimStatusResult(claim_ref="C1", portal_key="clearinghouse", observed_at="2026-12-01T00:00:00Z",
                          status_category="F2", billed=Decimal("200"), raw_label="Denied", lines=[line])
    assert list(repo.denial_keys(r)) == [(1, "denial", "CO", "50")]
