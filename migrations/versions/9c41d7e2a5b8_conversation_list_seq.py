"""issue 19: conversation.list_seq, the change marker of what the inbox's list row shows

Revision ID: 9c41d7e2a5b8
Revises: 247651187641
Create Date: 2026-12-06 03:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9c41d7e2a5b8'
down_revision = '247651187641'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('list_seq', sa.BigInteger(), server_default='0', nullable=False))
    # Every change so far counts as one the list shows: an open page learns nothing twice, misses nothing.
    op.execute('UPDATE conversation SET list_seq = change_seq')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_org_change')
        batch_op.create_index('ix_conversation_org_listed', ['organization_id', 'list_seq'], unique=False)


def downgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_org_listed')
        batch_op.create_index('ix_conversation_org_change', ['organization_id', 'change_seq'], unique=False)
        batch_op.drop_column('list_seq')
