"""issue 22: bulk messages (batch, batch_recipient, organisation bulk_cap)

Revision ID: 6e0dd0713177
Revises: e626f24df103
Create Date: 2026-12-06 10:09:00.799502

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "6e0dd0713177"
down_revision = "e626f24df103"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("whatsapp_template_id", sa.Integer(), nullable=True),
        sa.Column("send_at", sa.DateTime(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('application', 'membership')", name=op.f("ck_batch_kind_known")),
        sa.CheckConstraint("state IN ('running', 'done', 'cancelled')", name=op.f("ck_batch_state_known")),
        sa.ForeignKeyConstraint(["author_id"], ["user.id"], name=op.f("fk_batch_author_id_user")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organization.id"], name=op.f("fk_batch_organization_id_organization")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["message_template.id"],
            name=op.f("fk_batch_template_id_message_template"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["whatsapp_template_id"],
            ["whatsapp_template.id"],
            name=op.f("fk_batch_whatsapp_template_id_whatsapp_template"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch")),
    )
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batch_organization_id"), ["organization_id"], unique=False)

    op.create_table(
        "batch_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('sending', 'sent', 'scheduled', 'refused', 'failed', 'cancelled')",
            name=op.f("ck_batch_recipient_outcome_known"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batch.id"], name=op.f("fk_batch_recipient_batch_id_batch"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_batch_recipient_message_id_message"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_recipient")),
        sa.UniqueConstraint("batch_id", "subject_id", name="one_row_per_subject"),
        sa.UniqueConstraint("message_id", name=op.f("uq_batch_recipient_message_id")),
    )
    with op.batch_alter_table("batch_recipient", schema=None) as batch_op:
        batch_op.create_index("ix_batch_recipient_batch_outcome", ["batch_id", "outcome", "id"], unique=False)

    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bulk_cap", sa.Integer(), server_default="500", nullable=False))

    # ### end Alembic commands ###


def downgrade():
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_column("bulk_cap")

    with op.batch_alter_table("batch_recipient", schema=None) as batch_op:
        batch_op.drop_index("ix_batch_recipient_batch_outcome")

    op.drop_table("batch_recipient")
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_organization_id"))

    op.drop_table("batch")
    # ### end Alembic commands ###
