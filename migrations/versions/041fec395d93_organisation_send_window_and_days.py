"""issue 20: organization.send_from, send_until, send_days, the organisation's own hours for texts

Revision ID: 041fec395d93
Revises: 9c41d7e2a5b8
Create Date: 2026-12-06 05:57:29.428403

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '041fec395d93'
down_revision = '9c41d7e2a5b8'
branch_labels = None
depends_on = None


def upgrade():
    # Every organisation starts with the default: 08:00–20:00 on the recipient's clock, Monday to Friday.
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_from', sa.Time(), server_default='08:00:00', nullable=False))
        batch_op.add_column(sa.Column('send_until', sa.Time(), server_default='20:00:00', nullable=False))
        batch_op.add_column(sa.Column('send_days', sa.String(length=7), server_default='12345', nullable=False))


def downgrade():
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('send_days')
        batch_op.drop_column('send_until')
        batch_op.drop_column('send_from')
