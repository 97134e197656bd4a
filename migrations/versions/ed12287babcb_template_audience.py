"""template audience (issue 17): who a template (and an approved WhatsApp template) is written for —
candidates, prospects or both — so that a prospect's composer does not offer "Thank you for applying".

Revision ID: ed12287babcb
Revises: 1fd7c74505f7
Create Date: 2026-12-04 20:45:09.644031

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "ed12287babcb"
down_revision = "1fd7c74505f7"
branch_labels = None
depends_on = None

AUDIENCE_KNOWN = "audience IN ('both', 'candidates', 'prospects')"


def upgrade():
    # Existing templates were offered to everyone: "both" keeps that. An interview invitation only ever
    # went to a candidate (it needs an application to book for).
    for table in ("message_template", "whatsapp_template"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("audience", sa.String(length=20), server_default="both", nullable=False)
            )
            batch_op.create_check_constraint(op.f(f"ck_{table}_audience_known"), AUDIENCE_KNOWN)
    op.execute("UPDATE message_template SET audience = 'candidates' WHERE kind = 'interview_invitation'")


def downgrade():
    for table in ("whatsapp_template", "message_template"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_audience_known"), type_="check")
            batch_op.drop_column("audience")
