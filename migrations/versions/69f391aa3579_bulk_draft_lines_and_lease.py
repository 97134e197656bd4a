"""issue 22: a bulk message's preview stored as a draft batch (its lines), and the worker's lease

Revision ID: 69f391aa3579
Revises: 6e0dd0713177
Create Date: 2026-12-06 12:00:51.862451

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "69f391aa3579"
down_revision = "6e0dd0713177"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("plain_saved", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("plain_helped", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_constraint(op.f("ck_batch_state_known"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_batch_state_known"), "state IN ('draft', 'running', 'done', 'cancelled')"
        )

    with op.batch_alter_table("batch_recipient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("segments", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("credits", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("morning_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.alter_column("plain_saved", server_default=None)
        batch_op.alter_column("plain_helped", server_default=None)
    with op.batch_alter_table("batch_recipient", schema=None) as batch_op:
        # The models have no server default: rows are always written with their line.
        batch_op.alter_column("segments", server_default=None)
        batch_op.alter_column("credits", server_default=None)


def downgrade():
    op.execute("DELETE FROM batch WHERE state = 'draft'")
    with op.batch_alter_table("batch_recipient", schema=None) as batch_op:
        batch_op.drop_column("morning_at")
        batch_op.drop_column("credits")
        batch_op.drop_column("segments")
        batch_op.drop_column("text")

    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_batch_state_known"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_batch_state_known"), "state IN ('running', 'done', 'cancelled')"
        )
        batch_op.drop_column("plain_helped")
        batch_op.drop_column("plain_saved")
        batch_op.drop_column("lease_until")
