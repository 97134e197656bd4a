"""issue 20: message.hours_override, the writer's reason to send outside the organisation's hours

Revision ID: 1a42b31a5975
Revises: e057b6b32ea3
Create Date: 2026-12-06 06:44:38.675356

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '1a42b31a5975'
down_revision = 'e057b6b32ea3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hours_override', sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('hours_override')
