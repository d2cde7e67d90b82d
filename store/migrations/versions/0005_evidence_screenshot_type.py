"""evidence screenshots as JPEG: png_sha256 -> screenshot_sha256, screenshot_type

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('evidence') as batch:
        batch.alter_column('png_sha256', new_column_name='screenshot_sha256', existing_type=sa.String(length=64),
                           existing_nullable=False)
        batch.add_column(sa.Column('screenshot_type', sa.String(length=8), nullable=False, server_default='png'))


def downgrade() -> None:
    with op.batch_alter_table('evidence') as batch:
        batch.drop_column('screenshot_type')
        batch.alter_column('screenshot_sha256', new_column_name='png_sha256', existing_type=sa.String(length=64),
                           existing_nullable=False)
