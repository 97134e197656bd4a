"""issue 20: message.follow_up_of_id, follow-ups that stop on a reply

The partial index holds only the pending follow-ups: the inbound path probes it on every reply.

Revision ID: 97e6f2bc6480
Revises: 1a42b31a5975
Create Date: 2026-12-06 07:05:16.268580

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '97e6f2bc6480'
down_revision = '1a42b31a5975'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follow_up_of_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_message_follow_up_pending', ['conversation_id'], unique=False, postgresql_where=sa.text("status = 'scheduled' AND follow_up_of_id IS NOT NULL"), sqlite_where=sa.text("status = 'scheduled' AND follow_up_of_id IS NOT NULL"))
        batch_op.create_foreign_key(batch_op.f('fk_message_follow_up_of_id_message'), 'message', ['follow_up_of_id'], ['id'])


def downgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_message_follow_up_of_id_message'), type_='foreignkey')
        batch_op.drop_index('ix_message_follow_up_pending', postgresql_where=sa.text("status = 'scheduled' AND follow_up_of_id IS NOT NULL"), sqlite_where=sa.text("status = 'scheduled' AND follow_up_of_id IS NOT NULL"))
        batch_op.drop_column('follow_up_of_id')
