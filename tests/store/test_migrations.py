"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store.db import make_engine, migrate
from store.models import Base


def test_models_and_migrations_agree(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_an_upgrade_keeps_the_rows_of_a_store_in_use(tmp_path):
    """SQLite rebuilds a table to alter it; rows elsewhere that reference it must survive (foreign keys are
    off while migrating, checked after). A store at 0008 with a denial case, its reason and history."""
    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0008")
    now = "2026-12-07 15:00:00"
    with engine.begin() as c:
        c.execute(text("INSERT INTO organizations (id, name, external_id, created_at) VALUES (1, 'O', 'ORG1', :t)"),
                  {"t": now})
        c.execute(text("INSERT INTO payers (id, org_id, key, name, portal_key, typical_days_to_pay) "
                       "VALUES (1, 1, 'NSH', 'N', 'commercial', 30)"))
        c.execute(text("INSERT INTO claims (id, org_id, payer_id, external_id, member_id, billing_npi, dos_from, "
                       "dos_to, billed_cents, submitted_on, finalized, appeal_open) VALUES (1, 1, 1, 'PCN-1', 'M', "
                       "'1234567893', '2026-11-02', '2026-11-02', 15000, '2026-11-03', 1, 0)"))
        c.execute(text("INSERT INTO denial_cases (id, org_id, claim_id, kind, line_key, state, bucket, hard, clinical, "
                       "preventable, category_source, reasons, amount_cents, time_zone, detected_at, detected_on, "
                       "denial_date, escalations, owner_role, last_seen_at, priority) VALUES (1, 1, 1, 'denial', 0, "
                       "'new', 'coding', 0, 0, 1, 'default:97', '[]', 15000, 'America/Chicago', :t, '2026-12-07', "
                       "'2026-12-07', '[]', 'coder', :t, 127.5)"), {"t": now})
        c.execute(text("INSERT INTO denials (org_id, claim_id, line_key, kind, group_code, reason_code, rarcs, "
                       "amount_cents, first_seen_at, last_seen_at, open, case_id) VALUES (1, 1, 1, 'denial', 'CO', "
                       "'97', '[]', 15000, :t, :t, 1, 1)"), {"t": now})
        c.execute(text("INSERT INTO denial_case_history (org_id, case_id, at, kind, detail) "
                       "VALUES (1, 1, :t, 'created', '{}')"), {"t": now})
    migrate(engine)  # to head: denial_cases is rebuilt (its group foreign key)
    with engine.connect() as c:
        assert c.execute(text("SELECT id, priority, group_id FROM denial_cases")).all() == [(1, 127.5, None)]
        assert c.execute(text("SELECT case_id FROM denials")).scalar() == 1
        assert c.execute(text("SELECT count(*) FROM denial_case_history WHERE case_id = 1")).scalar() == 1
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # enforced again
