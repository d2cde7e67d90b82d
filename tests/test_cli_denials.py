"""`portal-agent denials`: open cases of a role or person, earliest due first; a bad role is a CLI error
naming the option. Runs on a real SQLite store, without a browser."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from core.claims import ClaimStatusResult, LineAdjustment, LineResult
from core.config import get_settings
from portal_agent.cli import app
from store import repo, work
from store.db import make_engine, migrate, session_factory
from store.models import Payer


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_AGENT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_AGENT_DATABASE_URL", "")
    get_settings.cache_clear()
    engine = make_engine(f"sqlite:///{tmp_path / 'portal_agent.db'}")
    migrate(engine)
    Session = session_factory(engine)
    with Session() as s:
        repo.load_code_tables(s)
        org = repo.get_or_create_org(s, "ORG1", "Riverbend", "America/Chicago")
        payer = Payer(org_id=org.id, key="NSH", name="Northstar", portal_key="commercial", timely_filing_days=90)
        s.add(payer)
        s.flush()
        work.add_person(s, org, "Casey Coder", ["coder"], at=datetime(2026, 12, 1, tzinfo=UTC))
        for n, carc in enumerate(("97", "27"), start=1):
            c = repo.add_claim(s, org=org, payer=payer, external_id=f"PCN-{n}", member_id="M1",
                               billing_npi="1234567893", dos_from=date(2026, 11, 2), dos_to=date(2026, 11, 2),
                               submitted_on=date(2026, 11, 3), lines=[{"line_no": 1, "cpt": "99213", "billed_cents": 15000}])
            line = LineResult(line_no=1, cpt="99213", billed=Decimal("150"), allowed=Decimal(0), paid=Decimal(0),
                              adjustments=[LineAdjustment(group="CO", carc=carc, amount=Decimal("150"))])
            repo.record_result(s, c, ClaimStatusResult(
                claim_ref=c.external_id, portal_key="commercial", observed_at=datetime(2026, 12, 7, 15, tzinfo=UTC),
                status_category="F2", billed=Decimal("150"), paid=Decimal(0), lines=[line], raw_label="Denied"))
        s.commit()
    yield
    engine.dispose()
    get_settings.cache_clear()


def test_open_cases_by_role(store, monkeypatch):
    from portal_agent import cli as entry

    monkeypatch.setattr(entry.console, "width", 200)
    cli = CliRunner()
    everyone = cli.invoke(app, ["denials"])
    assert everyone.exit_code == 0, everyone.output
    assert "PCN-1" in everyone.output and "PCN-2" in everyone.output and "2 open cases" in everyone.output
    coder = cli.invoke(app, ["denials", "--role", "coder"])
    assert coder.exit_code == 0, coder.output
    assert "PCN-1" in coder.output and "PCN-2" not in coder.output and "Casey Coder" in coder.output
    assert "work 2026-12-14" in coder.output  # worked within 5 business days of 12-07
    assert "filing 2027-01-31" in coder.output  # 90 days from the date of service
    bad = cli.invoke(app, ["denials", "--role", "janitor"])
    assert bad.exit_code != 0 and "--role" in bad.output
    bad = cli.invoke(app, ["denials", "--bucket", "misc"])
    assert bad.exit_code != 0 and "--bucket" in bad.output
    assert "no organization" in cli.invoke(app, ["denials", "--org", "ORG9"]).output
    # PCN-1 (coding, soft) is worth more than PCN-2 (eligibility): 150 x 0.85 vs 150 x 0.65, same deadline
    ordered = cli.invoke(app, ["denials"]).output
    assert ordered.index("PCN-1") < ordered.index("PCN-2")
    assert "0 open cases" in cli.invoke(app, ["denials", "--min-amount", "151"]).output
