"""denial_cases.priority and the work-queue indexes (a role's and a person's open cases by priority)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('denial_cases') as batch:
        batch.add_column(sa.Column('priority', sa.Float(), server_default='0', nullable=False))
    op.create_index('ix_denial_cases_person_queue', 'denial_cases', ['owner_person_id', 'priority', 'id'],
                    unique=False)
    op.create_index('ix_denial_cases_role_queue', 'denial_cases', ['org_id', 'owner_role', 'priority', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_denial_cases_role_queue', table_name='denial_cases')
    op.drop_index('ix_denial_cases_person_queue', table_name='denial_cases')
    with op.batch_alter_table('denial_cases') as batch:
        batch.drop_column('priority')
