"""portal account health (last check, failures, circuit, drift), canary, audit log

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

def _columns() -> list[sa.Column]:
    return [
        sa.Column('last_check_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=64), nullable=True),
        sa.Column('circuit_state', sa.String(length=16), nullable=False, server_default='closed'),
        sa.Column('circuit_opened_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('drift_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('drift_reason', sa.Text(), nullable=True),
        sa.Column('drift_evidence_ref', sa.String(length=64), nullable=True),
        sa.Column('canary_claim_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('canary_fingerprint', sa.String(length=64), nullable=True),
        sa.Column('canary_pinned', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('canary_checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('canary_result', sa.String(length=16), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table('portal_accounts') as batch:
        for col in _columns():
            batch.add_column(col)
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_log_org_at', 'audit_log', ['org_id', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_log_org_at', table_name='audit_log')
    op.drop_table('audit_log')
    with op.batch_alter_table('portal_accounts') as batch:
        for col in reversed(_columns()):
            batch.drop_column(col.name)
