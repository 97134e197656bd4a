"""issue 21: conversation events (notes, assignment lines) and note mentions

Revision ID: 4aab9f5f8dc7
Revises: b057bcfee569
Create Date: 2026-12-06 08:40:11.669616

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4aab9f5f8dc7'
down_revision = 'b057bcfee569'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('conversation_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('note', 'assigned', 'unassigned')", name=op.f('ck_conversation_event_kind_known')),
    sa.ForeignKeyConstraint(['assignee_id'], ['user.id'], name=op.f('fk_conversation_event_assignee_id_user')),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_conversation_event_author_id_user')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_conversation_event_conversation_id_conversation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_event'))
    )
    with op.batch_alter_table('conversation_event', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_event_conversation_time', ['conversation_id', 'created_at', 'id'], unique=False)

    op.create_table('note_mention',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('emailed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['conversation_event.id'], name=op.f('fk_note_mention_event_id_conversation_event'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_note_mention_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_note_mention')),
    sa.UniqueConstraint('event_id', 'user_id', name=op.f('uq_note_mention_event_id_user_id'))
    )
    with op.batch_alter_table('note_mention', schema=None) as batch_op:
        batch_op.create_index('ix_note_mention_unnotified', ['created_at'], unique=False, postgresql_where=sa.text('emailed_at IS NULL'), sqlite_where=sa.text('emailed_at IS NULL'))
        batch_op.create_index(batch_op.f('ix_note_mention_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('note_mention', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_note_mention_user_id'))
        batch_op.drop_index('ix_note_mention_unnotified', postgresql_where=sa.text('emailed_at IS NULL'), sqlite_where=sa.text('emailed_at IS NULL'))

    op.drop_table('note_mention')
    with op.batch_alter_table('conversation_event', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_event_conversation_time')

    op.drop_table('conversation_event')
