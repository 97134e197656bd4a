"""issue 23 §1: administrators' requests for sending numbers, and their steps in the audit trail

Revision ID: 3b7c1e9a2d40
Revises: 69f391aa3579
Create Date: 2026-12-06 12:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "3b7c1e9a2d40"
down_revision = "69f391aa3579"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "number_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sms", sa.Boolean(), nullable=False),
        sa.Column("whatsapp", sa.Boolean(), nullable=False),
        sa.Column("area_code", sa.String(length=10), nullable=True),
        sa.Column("locality", sa.String(length=100), nullable=True),
        sa.Column("prefix", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("decline_reason", sa.String(length=500), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("bought_e164", sa.String(length=16), nullable=True),
        sa.Column("bought_at", sa.DateTime(), nullable=True),
        sa.Column("linked_at", sa.DateTime(), nullable=True),
        sa.Column("number_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "(state = 'declined') = (decline_reason IS NOT NULL)",
            name=op.f("ck_number_request_declined_says_why"),
        ),
        sa.CheckConstraint(
            "reason IN ('new_country', 'volume', 'other')", name=op.f("ck_number_request_reason_known")
        ),
        sa.CheckConstraint("sms OR whatsapp", name=op.f("ck_number_request_sends_something")),
        sa.CheckConstraint(
            "state != 'done' OR number_id IS NOT NULL", name=op.f("ck_number_request_done_has_number")
        ),
        sa.CheckConstraint(
            "state IN ('open', 'offered', 'done', 'declined')", name=op.f("ck_number_request_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["claimed_by_id"],
            ["user.id"],
            name=op.f("fk_number_request_claimed_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["user.id"],
            name=op.f("fk_number_request_decided_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["number_id"], ["sending_number.id"], name=op.f("fk_number_request_number_id_sending_number")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_number_request_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["user.id"],
            name=op.f("fk_number_request_requested_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_request")),
    )
    with op.batch_alter_table("number_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_number_request_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_number_request_state", ["state", "created_at"], unique=False)

    with op.batch_alter_table("compliance_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number_request_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_compliance_event_number_request_id"), ["number_request_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_compliance_event_number_request_id_number_request"),
            "number_request",
            ["number_request_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table("compliance_event", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_compliance_event_number_request_id_number_request"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_compliance_event_number_request_id"))
        batch_op.drop_column("number_request_id")

    with op.batch_alter_table("number_request", schema=None) as batch_op:
        batch_op.drop_index("ix_number_request_state")
        batch_op.drop_index(batch_op.f("ix_number_request_organization_id"))

    op.drop_table("number_request")
