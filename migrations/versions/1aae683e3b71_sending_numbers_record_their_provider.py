"""issue 18: each sending number records the texting provider that holds it and carries its messages;
the numbers stored before are given the one the app is configured with (MESSAGING_PROVIDER)

Revision ID: 1aae683e3b71
Revises: 215c0637e0a7
Create Date: 2026-12-04 23:38:44.958404

"""
import os

from alembic import op
import sqlalchemy as sa
from flask import current_app


# revision identifiers, used by Alembic.
revision = '1aae683e3b71'
down_revision = '215c0637e0a7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sending_number', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider', sa.String(length=40), nullable=True))
    # Until now every number sent through the one configured provider: "vonage", or "simulator". Outside
    # development that must be said, not defaulted: a real number given to the simulator would be paid
    # for and never sent.
    provider = current_app.config.get("MESSAGING_PROVIDER") or "simulator"
    numbers = op.get_bind().execute(sa.text("SELECT count(*) FROM sending_number")).scalar()
    if numbers and current_app.config.get("RELAY_ENV") != "development" and not os.environ.get("MESSAGING_PROVIDER"):
        raise RuntimeError(
            "Set MESSAGING_PROVIDER (vonage, or simulator) before this upgrade: it records which provider "
            "carries each of the sending numbers already stored."
        )
    op.execute(sa.text("UPDATE sending_number SET provider = :provider").bindparams(provider=provider))
    with op.batch_alter_table('sending_number', schema=None) as batch_op:
        batch_op.alter_column('provider', existing_type=sa.String(length=40), nullable=False)


def downgrade():
    with op.batch_alter_table('sending_number', schema=None) as batch_op:
        batch_op.drop_column('provider')
