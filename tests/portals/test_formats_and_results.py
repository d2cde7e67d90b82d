"""The portals' pure parts, without a browser: money and date formats (portals/formats.py), the DOM grid
reader's shape checks (portals/dom.py), and the clearinghouse's and commercial portal's proof and result
building (portals/*/results.py) on pages as printed. The browser suites check the same rules end to end."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.claims import ClaimQuery, ClaimStatusResult, id_key
from core.credentials import Credentials
from core.errors import ClaimMismatch, NeedsAttention, PortalDrift
from portals import formats
from portals.clearinghouse import results as ch
from portals.commercial import results as co
from portals.dom import grid_rows


# ---------------------------------------------------------------------- formats, ids, grids, TOTP
@pytest.mark.parametrize(("text", "value"), [("$1,234.56", "1234.56"), ("$0.00", "0.00"), (" -$12.50 ", "-12.50"),
                                             ("$1234.56", "1234.56")])
def test_money_reads_the_portals_format_exactly(text, value):
    assert formats.money(text, what="billed") == Decimal(value)


@pytest.mark.parametrize("text", ["1,234.56", "$1,234.5", "$12,34.00", "N/A", "", None, 12.5, "$1.234,56"])
def test_money_refuses_anything_else_naming_the_field(text):
    with pytest.raises(PortalDrift, match="paid amount"):
        formats.money(text, what="paid amount")
    assert formats.money_or_none(None, what="paid") is None


def test_dates_read_and_print_mm_dd_yyyy():
    assert formats.mdy(" 07/09/2026 ", what="dos") == date(2026, 7, 9)
    assert formats.fmt_mdy(date(2026, 1, 2)) == "01/02/2026"
    for bad in ("2026-07-09", "13/01/2026", "", None):
        with pytest.raises(PortalDrift, match="service from"):
            formats.mdy(bad, what="service from")
    assert formats.optional(" - ") is None and formats.optional("N/A", blanks=("N/A",)) is None
    assert formats.optional(" 123 ") == "123"


def test_member_ids_compare_whatever_the_spacing_or_case():
    assert id_key(" ab 123 45 ") == id_key("AB12345") and id_key("AB12345") != id_key("AB12346")


def test_grid_rows_check_the_columns_and_the_row_shape():
    data = {"headers": ["A", "B"], "rows": [{"cells": ["1", "2"], "href": None, "nested": []}]}
    assert grid_rows(data, ("A", "B"), "t")[0].cells == {"A": "1", "B": "2"}
    with pytest.raises(PortalDrift, match="columns changed"):
        grid_rows(data, ("A", "C"), "t")
    data["rows"].append({"cells": ["1"], "href": None, "nested": []})
    with pytest.raises(PortalDrift, match="row shape changed"):
        grid_rows(data, ("A", "B"), "t")


def test_an_unusable_authenticator_secret_needs_a_person():
    assert Credentials(username="u", password="p").authenticator() is None
    assert Credentials(username="u", password="p", totp_secret="JBSWY3DPEHPK3PXPJBSWY3DP").authenticator().now().isdigit()
    with pytest.raises(NeedsAttention):
        Credentials(username="u", password="p", totp_secret="not base32 !").authenticator()


# ---------------------------------------------------------------------- clearinghouse
def _query(**kw) -> ClaimQuery:
    base = dict(claim_ref="PCN-1", payer_key="P1", member_id="MBR001", dos_from=date(2026, 7, 9),
                dos_to=date(2026, 7, 9), billing_npi="1234567893", billed=Decimal("150.00"))
    return ClaimQuery(**{**base, **kw})


def _detail(**kw) -> ch.ClaimDetail:
    summary = {"Payer claim number": "BMH-0001", "Patient account number": "PCN-1", "Member ID": "MBR 001",
               "Service from": "07/09/2026", "Service to": "07/09/2026", "Billing provider NPI": "1234567893",
               "Status category": "F1 - Finalized/Payment", "Status code": "1 - For more detailed information"}
    payment = {"Billed amount": "$150.00", "Allowed amount": "$100.00", "Paid amount": "$80.00",
               "Patient responsibility": "$20.00", "Payment method": "EFT", "Check/EFT number": "EFT1",
               "Check/EFT date": "08/01/2026"}
    line = ch.LinePanel(title="Line 1: 99213", fields={"Procedure": "99213", "Modifiers": "", "Billed": "$150.00",
                                                        "Allowed": "$100.00", "Paid": "$80.00"},
                        adjustments=[{"Group": "CO", "Reason code": "45", "Amount": "$50.00"},
                                     {"Group": "PR", "Reason code": "2", "Amount": "$20.00"}], remarks="None")
    codes = [{"Type": "Reason", "Code": "45", "Description": "Charge exceeds fee schedule"},
             {"Type": "Reason", "Code": "2", "Description": "Coinsurance amount"}]
    base = dict(badge="Finalized - Payment", rejection=None, summary=summary, payment=payment, no_payment=False,
                lines=[line], codes=codes, remit_link=False)
    return ch.ClaimDetail(**{**base, **kw})


def test_clearinghouse_result_is_built_from_the_detail_and_adds_up():
    r = ch.result("clearinghouse", _query(), _detail(), None)
    assert (r.status_category, r.status_code, r.paid, r.patient_responsibility) == ("F1", "1", Decimal("80.00"),
                                                                                    Decimal("20.00"))
    assert r.payer_claim_number == "BMH0001" and r.shown_claim_number == "BMH-0001"
    assert [(a.group, a.carc, a.amount) for a in r.lines[0].adjustments] == [("CO", "45", Decimal("50.00")),
                                                                             ("PR", "2", Decimal("20.00"))]
    assert "Member ID" not in r.raw["summary"]  # the id travels as shown_member_id only


def test_clearinghouse_result_refuses_contradictions():
    d = _detail()
    d.payment["Paid amount"] = "$81.00"
    with pytest.raises(PortalDrift, match="do not add up"):
        ch.result("clearinghouse", _query(), d, None)
    with pytest.raises(PortalDrift, match="disagree"):
        ch.result("clearinghouse", _query(), _detail(badge="Finalized - Denial"), None)
    with pytest.raises(PortalDrift, match="unknown claim status badge"):
        ch.result("clearinghouse", _query(), _detail(badge="Paid!"), None)


def test_clearinghouse_proof_needs_every_identifier():
    assert ch.proves(_detail(), _query())
    assert ch.proves(_detail(), _query(payer_claim_number="bmh 0001"))
    assert not ch.proves(_detail(), _query(member_id="MBR002"))
    assert not ch.proves(_detail(), _query(billed=Decimal("150.01")))
    assert not ch.proves(_detail(), _query(payer_claim_number="BMH-0002"))
    row = ch.ResultRow(0, {"Claim Number": "BMH-0002", "Patient Account": "PCN-1"})
    with pytest.raises(ClaimMismatch, match="another claim than the result opened"):
        ch.same_as_row(_detail(), row, _query())


def test_clearinghouse_candidates_by_number_or_dates_and_amount():
    rows = [ch.ResultRow(0, {"Claim Number": "BMH-0001", "Patient Account": "PCN-1", "Service Dates": "07/09/2026",
                             "Billed": "$150.00"}),
            ch.ResultRow(1, {"Claim Number": "BMH-0009", "Patient Account": "PCN-9", "Service Dates": "07/09/2026",
                             "Billed": "$99.00"})]
    assert [r.index for r in ch.candidates(rows, _query())] == [0]
    assert [r.index for r in ch.candidates(rows, _query(payer_claim_number="0000BMH0009"))] == [1]
    with pytest.raises(ClaimMismatch):
        ch.candidates(rows, _query(billed=Decimal("1.00")))


# ---------------------------------------------------------------------- commercial
def test_commercial_answers_and_proof():
    with pytest.raises(PortalDrift, match="field 'memberId' missing"):
        co.need_field({}, "memberId", "claim overview")
    ov = {"claimNumber": "ABC234DEF5", "memberId": "MBR001", "firstServiceDate": "07/09/2026",
          "lastServiceDate": "07/09/2026", "billed": "$150.00"}
    shown = co.printed(ov)
    assert shown["Claim number"] == "ABC234DEF5"
    q = _query(payer_claim_number="NSH-ABC2-34DE-F5")
    r = ClaimStatusResult(claim_ref="PCN-1", portal_key="commercial", observed_at="2026-08-01T00:00:00Z",
                          status_category="F1", payer_claim_number="ABC234DEF5", billed=Decimal("150.00"),
                          raw_label="Paid")
    proven = co.prove(q, "ABC234DEF5", r, shown)
    assert (proven.shown_member_id, proven.shown_billed) == ("MBR001", Decimal("150.00"))
    with pytest.raises(ClaimMismatch):
        co.prove(_query(member_id="MBR002"), "", r, shown)
