"""issue 21: notifications (user hours and email choice, notification record)

Revision ID: e626f24df103
Revises: 4aab9f5f8dc7
Create Date: 2026-12-06 08:40:01.828530

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e626f24df103"
down_revision = "4aab9f5f8dc7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("first_message_id", sa.BigInteger(), nullable=False),
        sa.Column("upto_message_id", sa.BigInteger(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.CheckConstraint("kind IN ('now', 'hourly')", name=op.f("ck_notification_kind_known")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_notification_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_notification_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint(
            "user_id", "first_message_id", name=op.f("uq_notification_user_id_first_message_id")
        ),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_user_conversation",
            ["user_id", "conversation_id", "upto_message_id"],
            unique=False,
        )

    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("work_from", sa.Time(), server_default="08:00:00", nullable=False))
        batch_op.add_column(sa.Column("work_until", sa.Time(), server_default="18:00:00", nullable=False))
        batch_op.add_column(
            sa.Column("work_days", sa.String(length=7), server_default="12345", nullable=False)
        )
        batch_op.add_column(
            sa.Column("notify_email", sa.String(length=10), server_default="now", nullable=False)
        )
        batch_op.add_column(sa.Column("digest_sent_at", sa.DateTime(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_user_notify_email_known"), "notify_email IN ('now', 'hourly', 'off')"
        )


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_user_notify_email_known"), type_="check")
        batch_op.drop_column("digest_sent_at")
        batch_op.drop_column("notify_email")
        batch_op.drop_column("work_days")
        batch_op.drop_column("work_until")
        batch_op.drop_column("work_from")
        batch_op.drop_column("time_zone")

    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_user_conversation")

    op.drop_table("notification")
