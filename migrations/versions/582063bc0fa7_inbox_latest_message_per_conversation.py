"""inbox: the latest message kept on the conversation, per-user state, the activity clock, search indexes

Revision ID: 582063bc0fa7
Revises: de03268f9616
Create Date: 2026-11-23 10:22:53.693701

"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '582063bc0fa7'
down_revision = 'de03268f9616'
branch_labels = None
depends_on = None

PREVIEW_LENGTH = 200  # a frozen copy of webapp.messaging.activity.PREVIEW_LENGTH
TRIGRAM_INDEXES = [
    ('message', 'ix_message_body_trgm', 'body'),
    ('candidate', 'ix_candidate_search_name_trgm', 'search_name'),
    ('candidate', 'ix_candidate_mobile_trgm', 'mobile'),
]


def _preview(body, subject):
    """A frozen copy of webapp.messaging.activity.preview."""
    text = ' '.join((subject or '').split())
    if not text:
        for line in (body or '').splitlines():
            if line.strip():
                text = ' '.join(line.split())
                break
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + '…'


def upgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    op.create_table('activity_clock',
    sa.Column('organization_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_activity_clock_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_activity_clock'))
    )
    op.create_table('conversation_state',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('unread', sa.Integer(), server_default='0', nullable=False),
    sa.Column('wrote', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('unread >= 0', name=op.f('ck_conversation_state_unread_not_negative')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_conversation_state_conversation_id_conversation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_conversation_state_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'conversation_id', name=op.f('pk_conversation_state'))
    )
    with op.batch_alter_table('conversation_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_state_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index('ix_conversation_state_user_changed', ['user_id', 'changed_at'], unique=False)
        batch_op.create_index('ix_conversation_state_user_unread', ['user_id', 'conversation_id'], unique=False, postgresql_where=sa.text('unread > 0'), sqlite_where=sa.text('unread > 0'))

    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_message_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('last_direction', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('last_channel', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('last_author_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('last_preview', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('has_email', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('has_sms', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('has_whatsapp', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('change_seq', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.drop_index(batch_op.f('ix_conversation_org_last'))
        batch_op.create_index('ix_conversation_org_change', ['organization_id', 'change_seq'], unique=False)
        batch_op.create_index('ix_conversation_org_recent', ['organization_id', 'last_message_at', 'id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_conversation_last_author_id_user'), 'user', ['last_author_id'], ['id'])

    if postgresql:
        # Search by message text, name and number: trigram indexes (pg_trgm is a trusted extension, so
        # the database's owner may create it). SQLite searches without them.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        for table, name, column in TRIGRAM_INDEXES:
            op.create_index(name, table, [column], postgresql_using='gin', postgresql_ops={column: 'gin_trgm_ops'})

    _fill()


def _fill():
    """What the inbox keeps, for the conversations already there (activity.record keeps it from now on)."""
    conn = op.get_bind()
    per_channel = {
        f'has_{channel}': sa.text(
            f"EXISTS (SELECT 1 FROM message m WHERE m.conversation_id = conversation.id AND m.channel = '{channel}')"
        )
        for channel in ('email', 'sms', 'whatsapp')
    }
    conn.execute(sa.text(
        'UPDATE conversation SET'
        ' last_message_id = (SELECT max(m.id) FROM message m WHERE m.conversation_id = conversation.id),'
        ' last_message_at = coalesce(last_message_at,'
        '   (SELECT max(m.created_at) FROM message m WHERE m.conversation_id = conversation.id)),'
        + ','.join(f' {column} = {condition.text}' for column, condition in per_channel.items())
    ))
    latest = conn.execute(sa.text(
        'SELECT c.id, m.direction, m.channel, m.author_id, m.body, m.subject'
        ' FROM conversation c JOIN message m ON m.id = c.last_message_id'
    )).all()
    update = sa.text(
        'UPDATE conversation SET last_direction = :direction, last_channel = :channel,'
        ' last_author_id = :author, last_preview = :preview WHERE id = :id'
    )
    for start in range(0, len(latest), 1000):
        conn.execute(update, [
            {'id': id_, 'direction': direction, 'channel': channel, 'author': author,
             'preview': _preview(body, subject)}
            for id_, direction, channel, author, body, subject in latest[start:start + 1000]
        ])

    # Per user who may see a conversation (its team; admins of its organisation or of the parent) or
    # wrote in it: the inbound messages past their read markers, and whether they wrote.
    now = datetime.now(UTC).replace(tzinfo=None)
    conn.execute(
        sa.text(
            'INSERT INTO conversation_state (user_id, conversation_id, unread, wrote, changed_at)'
            ' SELECT v.user_id, v.conversation_id,'
            '  (SELECT count(*) FROM message m WHERE m.conversation_id = v.conversation_id'
            "    AND m.direction = 'inbound' AND m.id > coalesce((SELECT r.last_read_message_id"
            '      FROM conversation_read r WHERE r.user_id = v.user_id'
            '      AND r.conversation_id = v.conversation_id AND r.channel = m.channel), 0)),'
            '  EXISTS (SELECT 1 FROM message m WHERE m.conversation_id = v.conversation_id'
            '    AND m.author_id = v.user_id),'
            '  :now'
            ' FROM ('
            '  SELECT t.user_id AS user_id, c.id AS conversation_id FROM conversation c'
            '   JOIN application a ON a.id = c.application_id'
            '   JOIN hiring_team_member t ON t.job_id = a.job_id'
            '   JOIN "user" u ON u.id = t.user_id AND u.organization_id = c.organization_id'
            '  UNION'
            '  SELECT t.user_id, c.id FROM conversation c'
            '   JOIN community_membership cm ON cm.id = c.community_membership_id'
            '   JOIN sourcing_team_member t ON t.community_id = cm.community_id'
            '   JOIN "user" u ON u.id = t.user_id AND u.organization_id = c.organization_id'
            '  UNION'
            '  SELECT u.id, c.id FROM conversation c'
            '   JOIN organization o ON o.id = c.organization_id'
            '   JOIN "user" u ON u.organization_id = c.organization_id OR u.organization_id = o.parent_id'
            '   JOIN user_role ur ON ur.user_id = u.id'
            "   JOIN role_permission rp ON rp.role_id = ur.role_id AND rp.permission_code = 'admin.organization'"
            '  UNION'
            '  SELECT m.author_id, m.conversation_id FROM message m'
            '   WHERE m.author_id IS NOT NULL AND m.conversation_id IS NOT NULL'
            ' ) v'
            ' WHERE EXISTS (SELECT 1 FROM message m WHERE m.conversation_id = v.conversation_id)'
        ).bindparams(sa.bindparam('now', now, type_=sa.DateTime()))
    )
    conn.execute(sa.text('DELETE FROM conversation_state WHERE unread = 0 AND NOT wrote'))


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        # pg_trgm stays: other things may use it, and it holds no data.
        for table, name, _ in TRIGRAM_INDEXES:
            op.drop_index(name, table_name=table)

    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_conversation_last_author_id_user'), type_='foreignkey')
        batch_op.drop_index('ix_conversation_org_recent')
        batch_op.drop_index('ix_conversation_org_change')
        batch_op.create_index(batch_op.f('ix_conversation_org_last'), ['organization_id', 'last_message_at'], unique=False)
        batch_op.drop_column('change_seq')
        batch_op.drop_column('has_whatsapp')
        batch_op.drop_column('has_sms')
        batch_op.drop_column('has_email')
        batch_op.drop_column('last_preview')
        batch_op.drop_column('last_author_id')
        batch_op.drop_column('last_channel')
        batch_op.drop_column('last_direction')
        batch_op.drop_column('last_message_id')

    with op.batch_alter_table('conversation_state', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_state_user_unread', postgresql_where=sa.text('unread > 0'), sqlite_where=sa.text('unread > 0'))
        batch_op.drop_index('ix_conversation_state_user_changed')
        batch_op.drop_index(batch_op.f('ix_conversation_state_conversation_id'))

    op.drop_table('conversation_state')
    op.drop_table('activity_clock')
