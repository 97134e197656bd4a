"""sending numbers: statuses active/pending_documents/suspended/released; compliance catalogue,
submissions, documents and their audit trail (issue #11)

Revision ID: de03268f9616
Revises: 6b6ff4898ea0
Create Date: 2026-11-23 10:28:17.643234

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "de03268f9616"
down_revision = "6b6ff4898ea0"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "compliance_requirement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value_label", sa.String(length=200), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_requirement")),
        sa.UniqueConstraint("country", "code", name=op.f("uq_compliance_requirement_country_code")),
    )
    with op.batch_alter_table("compliance_requirement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_compliance_requirement_country"), ["country"], unique=False)

    op.create_table(
        "acceptable_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requirement_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["requirement_id"],
            ["compliance_requirement.id"],
            name=op.f("fk_acceptable_document_requirement_id_compliance_requirement"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptable_document")),
        sa.UniqueConstraint(
            "requirement_id", "code", name=op.f("uq_acceptable_document_requirement_id_code")
        ),
    )
    op.create_table(
        "compliance_submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("approved_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'approved', 'rejected', 'expired')",
            name=op.f("ck_compliance_submission_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_compliance_submission_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_submission")),
        sa.UniqueConstraint(
            "organization_id", "country", name=op.f("uq_compliance_submission_organization_id_country")
        ),
    )
    op.create_table(
        "compliance_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("requirement_id", sa.Integer(), nullable=False),
        sa.Column("kind_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=50), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rejection_reason", sa.String(length=500), nullable=True),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "content_type IN ('application/pdf', 'image/png', 'image/jpeg')",
            name=op.f("ck_compliance_document_type_known"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'replaced')",
            name=op.f("ck_compliance_document_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["kind_id"],
            ["acceptable_document.id"],
            name=op.f("fk_compliance_document_kind_id_acceptable_document"),
        ),
        sa.ForeignKeyConstraint(
            ["requirement_id"],
            ["compliance_requirement.id"],
            name=op.f("fk_compliance_document_requirement_id_compliance_requirement"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"], ["user.id"], name=op.f("fk_compliance_document_reviewed_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["compliance_submission.id"],
            name=op.f("fk_compliance_document_submission_id_compliance_submission"),
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["user.id"], name=op.f("fk_compliance_document_uploaded_by_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_document")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_compliance_document_stored_name")),
    )
    with op.batch_alter_table("compliance_document", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_compliance_document_submission_id"), ["submission_id"], unique=False
        )
        batch_op.create_index(
            "uq_compliance_document_current",
            ["submission_id", "requirement_id"],
            unique=True,
            sqlite_where=sa.text("status != 'replaced'"),
            postgresql_where=sa.text("status != 'replaced'"),
        )

    op.create_table(
        "compliance_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("number_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"], name=op.f("fk_compliance_event_actor_id_user")),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["compliance_document.id"],
            name=op.f("fk_compliance_event_document_id_compliance_document"),
        ),
        sa.ForeignKeyConstraint(
            ["number_id"], ["sending_number.id"], name=op.f("fk_compliance_event_number_id_sending_number")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_compliance_event_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["compliance_submission.id"],
            name=op.f("fk_compliance_event_submission_id_compliance_submission"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_event")),
    )
    with op.batch_alter_table("compliance_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_compliance_event_org_country", ["organization_id", "country", "id"], unique=False
        )

    with op.batch_alter_table("sending_number", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suspension", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("released_at", sa.DateTime(), nullable=True))
        batch_op.drop_constraint(op.f("ck_sending_number_status_known"), type_="check")
    # The old statuses by their new names: a `pending` number waited for documents, a `disabled` one
    # had been stopped by hand.
    op.execute("UPDATE sending_number SET status = 'pending_documents' WHERE status = 'pending'")
    op.execute(
        "UPDATE sending_number SET status = 'suspended', suspension = 'staff' WHERE status = 'disabled'"
    )
    with op.batch_alter_table("sending_number", schema=None) as batch_op:
        batch_op.create_check_constraint(
            "status_known", "status IN ('active', 'pending_documents', 'suspended', 'released')"
        )
        batch_op.create_check_constraint(
            "suspended_says_why", "(status = 'suspended') = (suspension IS NOT NULL)"
        )


def downgrade():
    with op.batch_alter_table("sending_number", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_sending_number_suspended_says_why"), type_="check")
        batch_op.drop_constraint(op.f("ck_sending_number_status_known"), type_="check")
    op.execute("UPDATE sending_number SET status = 'pending' WHERE status = 'pending_documents'")
    op.execute("UPDATE sending_number SET status = 'disabled' WHERE status IN ('suspended', 'released')")
    with op.batch_alter_table("sending_number", schema=None) as batch_op:
        batch_op.drop_column("released_at")
        batch_op.drop_column("suspension")
        batch_op.create_check_constraint("status_known", "status IN ('active', 'pending', 'disabled')")

    with op.batch_alter_table("compliance_event", schema=None) as batch_op:
        batch_op.drop_index("ix_compliance_event_org_country")

    op.drop_table("compliance_event")
    with op.batch_alter_table("compliance_document", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_compliance_document_current",
            sqlite_where=sa.text("status != 'replaced'"),
            postgresql_where=sa.text("status != 'replaced'"),
        )
        batch_op.drop_index(batch_op.f("ix_compliance_document_submission_id"))

    op.drop_table("compliance_document")
    op.drop_table("compliance_submission")
    op.drop_table("acceptable_document")
    with op.batch_alter_table("compliance_requirement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compliance_requirement_country"))

    op.drop_table("compliance_requirement")
