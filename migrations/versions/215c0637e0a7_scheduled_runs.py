"""issue 18: the clock's scheduled_run table, one row per periodic task: its last start, claimed with a
conditional UPDATE so that one clock among several runs it once per interval

Revision ID: 215c0637e0a7
Revises: bd973fb410d5
Create Date: 2026-12-04 23:25:27.997802

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '215c0637e0a7'
down_revision = 'bd973fb410d5'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scheduled_run',
    sa.Column('task', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=500), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('task', name=op.f('pk_scheduled_run'))
    )


def downgrade():
    op.drop_table('scheduled_run')
