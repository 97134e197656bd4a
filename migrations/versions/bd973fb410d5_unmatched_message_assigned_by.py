"""issue 17: an unmatched inbound message assigned to a conversation keeps who assigned it and when (the
thread says "from +44 7700 900555, assigned by Ada"; its from_addr was kept already)

Revision ID: bd973fb410d5
Revises: d044e03ab801
Create Date: 2026-12-04 20:47:51.238338

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bd973fb410d5'
down_revision = 'd044e03ab801'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assigned_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('assigned_at', sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_message_assigned_by_id_user'), 'user', ['assigned_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_message_assigned_by_id_user'), type_='foreignkey')
        batch_op.drop_column('assigned_at')
        batch_op.drop_column('assigned_by_id')
