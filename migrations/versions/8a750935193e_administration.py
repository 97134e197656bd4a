"""administration (issue #12): the low-credit threshold and time zone of an organisation, template kinds,
one-time set-password links, refill requests

Revision ID: 8a750935193e
Revises: 582063bc0fa7
Create Date: 2026-11-23 11:05:59.476040

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "8a750935193e"
down_revision = "582063bc0fa7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "set_password_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_set_password_link_created_by_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_set_password_link_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_set_password_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_set_password_link_token_hash")),
    )
    with op.batch_alter_table("set_password_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_set_password_link_user_id"), ["user_id"], unique=False)

    op.create_table(
        "refill_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("handled_by_id", sa.Integer(), nullable=True),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["handled_by_id"], ["user.id"], name=op.f("fk_refill_request_handled_by_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organization.id"], name=op.f("fk_refill_request_organization_id_organization")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["user.id"], name=op.f("fk_refill_request_requested_by_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["credit_transaction.id"],
            name=op.f("fk_refill_request_transaction_id_credit_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refill_request")),
    )
    with op.batch_alter_table("refill_request", schema=None) as batch_op:
        batch_op.create_index("ix_refill_request_open", ["handled_at", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_refill_request_organization_id"), ["organization_id"], unique=False)

    # Existing templates are general ones; none was an interview invitation before kinds existed.
    with op.batch_alter_table("message_template", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=30), server_default="general", nullable=False))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_message_template_kind_known"), "kind IN ('general', 'interview_invitation')")

    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.add_column(sa.Column("low_credit_threshold", sa.Integer(), server_default="50", nullable=False))
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False))
        batch_op.create_check_constraint(op.f("ck_organization_threshold_not_negative"), "low_credit_threshold >= 0")


def downgrade():
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_organization_threshold_not_negative"), type_="check")
        batch_op.drop_column("time_zone")
        batch_op.drop_column("low_credit_threshold")

    with op.batch_alter_table("message_template", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_message_template_kind_known"), type_="check")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("kind")

    with op.batch_alter_table("refill_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refill_request_organization_id"))
        batch_op.drop_index("ix_refill_request_open")
    op.drop_table("refill_request")

    with op.batch_alter_table("set_password_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_set_password_link_user_id"))
    op.drop_table("set_password_link")
