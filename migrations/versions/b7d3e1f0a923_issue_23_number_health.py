"""issue 23 §2: number health (daily rollup per number, its figures, notices; pauses; a customer's cap)

Revision ID: b7d3e1f0a923
Revises: 3b7c1e9a2d40
Create Date: 2026-12-06 12:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b7d3e1f0a923"
down_revision = "3b7c1e9a2d40"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "number_day",
        sa.Column("number_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("sms", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("opt_outs", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["number_id"], ["sending_number.id"], name=op.f("fk_number_day_number_id_sending_number")
        ),
        sa.PrimaryKeyConstraint("number_id", "day", name=op.f("pk_number_day")),
    )
    op.create_table(
        "number_day_failure",
        sa.Column("number_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("error_code", sa.String(length=50), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["number_id"], ["sending_number.id"], name=op.f("fk_number_day_failure_number_id_sending_number")
        ),
        sa.PrimaryKeyConstraint("number_id", "day", "error_code", name=op.f("pk_number_day_failure")),
    )
    op.create_table(
        "number_health",
        sa.Column("number_id", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sms_today", sa.Integer(), nullable=False),
        sa.Column("guidance", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("sent_7d", sa.Integer(), nullable=False),
        sa.Column("failed_7d", sa.Integer(), nullable=False),
        sa.Column("failure_rate", sa.Float(), nullable=False),
        sa.Column("sent_30d", sa.Integer(), nullable=False),
        sa.Column("opt_outs_30d", sa.Integer(), nullable=False),
        sa.Column("opt_out_rate", sa.Float(), nullable=False),
        sa.Column("failure_codes", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["number_id"], ["sending_number.id"], name=op.f("fk_number_health_number_id_sending_number")
        ),
        sa.PrimaryKeyConstraint("number_id", name=op.f("pk_number_health")),
    )
    with op.batch_alter_table("number_health", schema=None) as batch_op:
        batch_op.create_index("ix_number_health_share", ["share", "number_id"], unique=False)

    op.create_table(
        "number_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("emailed_at", sa.DateTime(), nullable=True),
        sa.Column("email_error", sa.String(length=300), nullable=True),
        sa.CheckConstraint("kind IN ('near_guidance', 'paused')", name=op.f("ck_number_notice_kind_known")),
        sa.ForeignKeyConstraint(
            ["number_id"], ["sending_number.id"], name=op.f("fk_number_notice_number_id_sending_number")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_notice")),
        sa.UniqueConstraint("number_id", "day", "kind", name=op.f("uq_number_notice_number_id_day_kind")),
    )
    with op.batch_alter_table("number_notice", schema=None) as batch_op:
        batch_op.create_index("ix_number_notice_day", ["day", "number_id"], unique=False)

    with op.batch_alter_table("sending_number", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("pause_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("let_in_on", sa.Date(), nullable=True))

    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number_daily_cap", sa.Integer(), nullable=True))

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_from_created", ["from_addr", "created_at"], unique=False)

    with op.batch_alter_table("opt_out", schema=None) as batch_op:
        batch_op.create_index("ix_opt_out_created_at", ["created_at"], unique=False)


def downgrade():
    with op.batch_alter_table("opt_out", schema=None) as batch_op:
        batch_op.drop_index("ix_opt_out_created_at")

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_from_created")

    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_column("number_daily_cap")

    with op.batch_alter_table("sending_number", schema=None) as batch_op:
        batch_op.drop_column("let_in_on")
        batch_op.drop_column("pause_reason")
        batch_op.drop_column("paused_at")

    with op.batch_alter_table("number_notice", schema=None) as batch_op:
        batch_op.drop_index("ix_number_notice_day")

    op.drop_table("number_notice")
    with op.batch_alter_table("number_health", schema=None) as batch_op:
        batch_op.drop_index("ix_number_health_share")

    op.drop_table("number_health")
    op.drop_table("number_day_failure")
    op.drop_table("number_day")
