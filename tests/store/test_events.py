"""The event catalog (store/events.py): one module names every event; payloads carry no PHI and no field the
catalog does not name; each event is written in its change's transaction and belongs to one organization."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from store import events, repo, work
from store.db import make_engine, session_factory
from store.models import DenialCase, OutboxEvent, Payer

ROOT = Path(__file__).resolve().parents[2]


def test_no_event_is_named_outside_the_catalog():
    """Every outbox write goes through events.emit with a catalog class (no ad hoc type strings)."""
    offenders = []
    for path in [*ROOT.glob("store/**/*.py"), *ROOT.glob("agent/**/*.py"), *ROOT.glob("api/**/*.py"),
                 *ROOT.glob("portal_agent/**/*.py")]:
        if path.name == "events.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "emit":
                arg = node.args[-1] if node.args else None
                if not (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute)
                        and arg.func.attr in {c.__name__ for c in events.CATALOG.values()}) and not (
                        isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name)):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "OutboxEvent":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} builds OutboxEvent")
    assert offenders == []


def test_payloads_refuse_fields_the_catalog_does_not_name():
    with pytest.raises(ValidationError):
        events.PortalCircuitOpen(portal="commercial", error="X", member_id="M123")


@pytest.fixture
def Session(tmp_path, fresh_sqlite):
    return session_factory(make_engine(f"sqlite:///{fresh_sqlite(tmp_path / 'ev.db')}"))


def test_a_denial_writes_its_events_in_its_transaction_without_phi(Session):
    at = datetime(2026, 12, 7, 15, tzinfo=UTC)
    with Session() as s:
        org = repo.get_or_create_org(s, "ORG1", "Riverbend", "America/Chicago")
        payer = Payer(org_id=org.id, key="NSH", name="Northstar", portal_key="commercial")
        s.add(payer)
        s.commit()
        c = repo.add_claim(s, org=org, payer=payer, external_id="PCN-9", member_id="SECRETMEMBER1",
                           billing_npi="1234567893", dos_from=date(2026, 11, 2), dos_to=date(2026, 11, 2),
                           submitted_on=date(2026, 11, 3), patient_first_name="Zelda", patient_last_name="Quartz",
                           patient_dob=date(1970, 1, 2), lines=[{"line_no": 1, "cpt": "99213", "billed_cents": 15000}])
        line = LineResult(line_no=1, cpt="99213", billed=Decimal("150"), allowed=Decimal(0), paid=Decimal(0),
                          adjustments=[LineAdjustment(group="CO", carc="27", amount=Decimal("150"))], rarcs=["N30"])
        repo.record_result(s, c, ClaimStatusResult(
            claim_ref="PCN-9", portal_key="commercial", observed_at=at, status_category="F2", billed=Decimal("150"),
            paid=Decimal(0), lines=[line], raw_label="Denied", shown_member_id="SECRETMEMBER1"))
        s.rollback()  # the change did not happen: neither did its events
        assert s.scalars(select(OutboxEvent)).all() == []
        c = repo.add_claim(s, org=org, payer=payer, external_id="PCN-9", member_id="SECRETMEMBER1",
                           billing_npi="1234567893", dos_from=date(2026, 11, 2), dos_to=date(2026, 11, 2),
                           submitted_on=date(2026, 11, 3), patient_first_name="Zelda", patient_last_name="Quartz",
                           patient_dob=date(1970, 1, 2), lines=[{"line_no": 1, "cpt": "99213", "billed_cents": 15000}])
        repo.record_result(s, c, ClaimStatusResult(
            claim_ref="PCN-9", portal_key="commercial", observed_at=at, status_category="F2", billed=Decimal("150"),
            paid=Decimal(0), lines=[line], raw_label="Denied", shown_member_id="SECRETMEMBER1"))
        case = s.scalars(select(DenialCase)).one()
        work.move(s, case, "written_off", at=at, actor="person:1", reason="below_threshold")
        s.commit()
        rows = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        assert [e.event_type for e in rows] == ["claim.status_changed", "denial.created", "denial.routed",
                                                "denial.resolved"]
        assert {e.org_id for e in rows} == {org.id} and {e.aggregate_key for e in rows} == {f"claim:{c.id}"}
        created = rows[1].payload
        assert (created["bucket"], created["owner_role"], created["claim"]) == ("eligibility", "front_desk", "PCN-9")
        text = " ".join(str(e.payload) for e in rows)
        for phi in ("SECRETMEMBER1", "Zelda", "Quartz", "1970-01-02"):
            assert phi not in text
        for e in rows:  # each payload is its catalog class's, exactly
            events.CATALOG[e.event_type].model_validate(e.payload)
