"""denial groups: similar denials (payer + CARC + CPT within a window), worked as one

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('denial_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('payer_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('cpt', sa.String(length=16), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ),
    sa.ForeignKeyConstraint(['payer_id'], ['payers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_denial_groups_key', 'denial_groups', ['org_id', 'payer_id', 'code', 'cpt', 'opened_on'],
                    unique=False)
    with op.batch_alter_table('denial_cases') as batch:
        batch.add_column(sa.Column('group_id', sa.Integer(), nullable=True))
        batch.create_index(batch.f('ix_denial_cases_group_id'), ['group_id'], unique=False)
        batch.create_foreign_key('fk_denial_cases_group_id', 'denial_groups', ['group_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('denial_cases') as batch:
        batch.drop_constraint('fk_denial_cases_group_id', type_='foreignkey')
        batch.drop_index('ix_denial_cases_group_id')
        batch.drop_column('group_id')
    op.drop_index('ix_denial_groups_key', table_name='denial_groups')
    op.drop_table('denial_groups')
