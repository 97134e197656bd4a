"""crm: prospect folded search name, membership removal

Revision ID: 8da8178d7fb0
Revises: 8a750935193e
Create Date: 2026-11-23 12:29:54.201033

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8da8178d7fb0'
down_revision = '8a750935193e'
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = (
    ('prospect', 'ix_prospect_search_name_trgm', 'search_name'),
    ('prospect', 'ix_prospect_mobile_trgm', 'mobile'),
)

# A frozen copy of webapp.search.fold as it was when this migration was written (migrations never
# import app code, which moves on).
_BASE_LETTERS = str.maketrans(
    {"ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ı": "i", "þ": "th", "æ": "ae", "œ": "oe"}
)


def _fold(text):
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.translate(_BASE_LETTERS).split())


def upgrade():
    with op.batch_alter_table('community_membership', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('prospect', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_name', sa.Text(), server_default='', nullable=False))

    if op.get_bind().dialect.name == 'postgresql':
        # pg_trgm was created by the inbox's migration.
        for table, name, column in TRIGRAM_INDEXES:
            op.create_index(name, table, [column], postgresql_using='gin', postgresql_ops={column: 'gin_trgm_ops'})

    # Fill it for the prospects already there.
    prospect = sa.table(
        'prospect',
        sa.column('id', sa.Integer),
        sa.column('first_name', sa.String),
        sa.column('last_name', sa.String),
        sa.column('search_name', sa.Text),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(prospect.c.id, prospect.c.first_name, prospect.c.last_name)).all()
    update = (
        sa.update(prospect)
        .where(prospect.c.id == sa.bindparam('prospect_id'))
        .values(search_name=sa.bindparam('folded'))
    )
    for start in range(0, len(rows), 1000):
        batch = [
            {'prospect_id': id_, 'folded': _fold(f"{first or ''} {last or ''}")}
            for id_, first, last in rows[start:start + 1000]
        ]
        conn.execute(update, batch)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table, name, _ in TRIGRAM_INDEXES:
            op.drop_index(name, table_name=table)

    with op.batch_alter_table('prospect', schema=None) as batch_op:
        batch_op.drop_column('search_name')

    with op.batch_alter_table('community_membership', schema=None) as batch_op:
        batch_op.drop_column('removed_at')
