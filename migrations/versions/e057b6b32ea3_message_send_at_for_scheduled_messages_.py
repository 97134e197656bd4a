"""issue 20: message.send_at for messages scheduled for later, and the scheduler's due query's index
(status, send_at)

Revision ID: e057b6b32ea3
Revises: 041fec395d93
Create Date: 2026-12-06 05:55:04.636773

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e057b6b32ea3'
down_revision = '041fec395d93'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_message_status_send_at', ['status', 'send_at'], unique=False)


def downgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_status_send_at')
        batch_op.drop_column('send_at')
