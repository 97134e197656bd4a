"""candidate: folded search name

Revision ID: 6b6ff4898ea0
Revises: 2f0539568d26
Create Date: 2026-11-23 09:09:10.205296

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6b6ff4898ea0'
down_revision = '2f0539568d26'
branch_labels = None
depends_on = None

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
    with op.batch_alter_table('candidate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_name', sa.Text(), server_default='', nullable=False))

    # Fill it for the candidates already there.
    candidate = sa.table(
        'candidate',
        sa.column('id', sa.Integer),
        sa.column('first_name', sa.String),
        sa.column('last_name', sa.String),
        sa.column('search_name', sa.Text),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(candidate.c.id, candidate.c.first_name, candidate.c.last_name)).all()
    update = (
        sa.update(candidate)
        .where(candidate.c.id == sa.bindparam('candidate_id'))
        .values(search_name=sa.bindparam('folded'))
    )
    for start in range(0, len(rows), 1000):
        batch = [
            {'candidate_id': id_, 'folded': _fold(f"{first or ''} {last or ''}")}
            for id_, first, last in rows[start:start + 1000]
        ]
        conn.execute(update, batch)


def downgrade():
    with op.batch_alter_table('candidate', schema=None) as batch_op:
        batch_op.drop_column('search_name')
