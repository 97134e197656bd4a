"""issue 21: conversation.assignee_id, who answers a conversation

Revision ID: b057bcfee569
Revises: 97e6f2bc6480
Create Date: 2026-12-06 08:36:28.797745

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b057bcfee569'
down_revision = '97e6f2bc6480'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignee_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_conversation_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_conversation_assignee_id_user'), 'user', ['assignee_id'], ['id'])


def downgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_conversation_assignee_id_user'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_conversation_assignee_id'))
        batch_op.drop_column('assignee_id')
