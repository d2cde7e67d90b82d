"""the denial workflow: denial cases (category, owner, clocks, history), people, appeals, escalations;
payers' playbooks (windows in days or months, anchors, presumption, roll-forward); organizations' time
zone and routing

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('people',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_people_org_id'), 'people', ['org_id'], unique=False)
    op.create_table('category_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('payer_key', sa.String(length=32), nullable=False),
    sa.Column('carc', sa.String(length=8), nullable=False),
    sa.Column('group_code', sa.String(length=2), nullable=False),
    sa.Column('rarc', sa.String(length=8), nullable=False),
    sa.Column('bucket', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('nature', sa.String(length=16), nullable=False),
    sa.Column('preventable', sa.Boolean(), nullable=False),
    sa.Column('normal', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'payer_key', 'carc', 'group_code', 'rarc')
    )
    op.create_index(op.f('ix_category_overrides_org_id'), 'category_overrides', ['org_id'], unique=False)
    op.create_table('denial_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('line_key', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('bucket', sa.String(length=32), nullable=False),
    sa.Column('hard', sa.Boolean(), nullable=False),
    sa.Column('clinical', sa.Boolean(), nullable=False),
    sa.Column('preventable', sa.Boolean(), nullable=False),
    sa.Column('category_source', sa.String(length=64), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detected_on', sa.Date(), nullable=False),
    sa.Column('denial_date', sa.Date(), nullable=False),
    sa.Column('work_by', sa.Date(), nullable=True),
    sa.Column('appeal_by', sa.Date(), nullable=True),
    sa.Column('peer_to_peer_by', sa.Date(), nullable=True),
    sa.Column('escalations', sa.JSON(), nullable=False),
    sa.Column('urgent_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('appeal_deadline', sa.Date(), nullable=True),
    sa.Column('timely_filing_deadline', sa.Date(), nullable=True),
    sa.Column('deadline_source', sa.Text(), nullable=True),
    sa.Column('owner_role', sa.String(length=32), nullable=False),
    sa.Column('owner_person_id', sa.Integer(), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.String(length=32), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.ForeignKeyConstraint(['owner_person_id'], ['people.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('claim_id', 'kind', 'line_key')
    )
    op.create_index(op.f('ix_denial_cases_claim_id'), 'denial_cases', ['claim_id'], unique=False)
    op.create_index('ix_denial_cases_work', 'denial_cases', ['org_id', 'state', 'owner_role'], unique=False)
    op.create_table('appeals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('follow_up_on', sa.Date(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('recovered_cents', sa.BigInteger(), nullable=True),
    sa.Column('filed_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['denial_cases.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'level')
    )
    op.create_index(op.f('ix_appeals_case_id'), 'appeals', ['case_id'], unique=False)
    op.create_table('denial_case_escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.String(length=64), nullable=False),
    sa.Column('to_role', sa.String(length=32), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['denial_cases.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'step')
    )
    op.create_index(op.f('ix_denial_case_escalations_case_id'), 'denial_case_escalations', ['case_id'], unique=False)
    op.create_table('denial_case_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('from_value', sa.String(length=64), nullable=True),
    sa.Column('to_value', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['denial_cases.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_denial_case_history_case_id'), 'denial_case_history', ['case_id'], unique=False)
    with op.batch_alter_table('denials') as batch:
        batch.add_column(sa.Column('case_id', sa.Integer(), nullable=True))
        batch.create_index(batch.f('ix_denials_case_id'), ['case_id'], unique=False)
        batch.create_foreign_key('fk_denials_case_id', 'denial_cases', ['case_id'], ['id'])
    with op.batch_alter_table('payers') as batch:
        batch.add_column(sa.Column('appeal_window_months', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('appeal_anchor', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('timely_filing_months', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('tf_anchor', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('receipt_presumption_days', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('rolls_to_business_day', sa.Boolean(), server_default='0', nullable=False))
        batch.add_column(sa.Column('appeal_address', sa.Text(), nullable=True))
        batch.add_column(sa.Column('appeal_levels', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('playbook_row', sa.String(length=200), nullable=True))
    with op.batch_alter_table('organizations') as batch:
        batch.add_column(sa.Column('time_zone', sa.String(length=64), server_default='America/New_York',
                                   nullable=False))
        batch.add_column(sa.Column('routing', sa.JSON(), server_default='{}', nullable=False))
        batch.add_column(sa.Column('routing_strategy', sa.String(length=32), server_default='least_open',
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('payers') as batch:
        for column in ('playbook_row', 'appeal_levels', 'appeal_address', 'rolls_to_business_day',
                       'receipt_presumption_days', 'tf_anchor', 'timely_filing_months', 'appeal_anchor',
                       'appeal_window_months'):
            batch.drop_column(column)
    with op.batch_alter_table('organizations') as batch:
        batch.drop_column('routing_strategy')
        batch.drop_column('routing')
        batch.drop_column('time_zone')
    with op.batch_alter_table('denials') as batch:
        batch.drop_constraint('fk_denials_case_id', type_='foreignkey')
        batch.drop_index('ix_denials_case_id')
        batch.drop_column('case_id')
    for table in ('denial_case_history', 'denial_case_escalations', 'appeals'):
        op.drop_index(f'ix_{table}_case_id', table_name=table)
        op.drop_table(table)
    op.drop_index('ix_denial_cases_work', table_name='denial_cases')
    op.drop_index('ix_denial_cases_claim_id', table_name='denial_cases')
    op.drop_table('denial_cases')
    op.drop_index('ix_category_overrides_org_id', table_name='category_overrides')
    op.drop_table('category_overrides')
    op.drop_index('ix_people_org_id', table_name='people')
    op.drop_table('people')
