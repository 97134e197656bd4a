"""prospect: one per organisation and mobile (issue 17: two adds at once made two prospects of one
number). Duplicates already stored are merged into the oldest before the unique index goes in.

Revision ID: 1fd7c74505f7
Revises: 4abe26707d12
Create Date: 2026-12-04 20:39:09.155429

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '1fd7c74505f7'
down_revision = '4abe26707d12'
branch_labels = None
depends_on = None

prospect = sa.table(
    'prospect',
    sa.column('id', sa.Integer),
    sa.column('organization_id', sa.Integer),
    sa.column('mobile', sa.String),
    sa.column('country', sa.String),
    sa.column('email', sa.String),
)
membership = sa.table(
    'community_membership',
    sa.column('id', sa.Integer),
    sa.column('community_id', sa.Integer),
    sa.column('prospect_id', sa.Integer),
    sa.column('removed_at', sa.DateTime),
)
conversation = sa.table(
    'conversation',
    sa.column('id', sa.Integer),
    sa.column('community_membership_id', sa.Integer),
)


def _merge_duplicates(conn):
    """The number stays with the organisation's oldest prospect that has it (the one every look-up
    found so far); each later one is folded into it:

    - its email completes the oldest one's if that has none;
    - its memberships move to the oldest one, conversation and all, where the oldest one is not in that
      community yet;
    - in a community both are in, the later membership goes, and its conversation (if the oldest one's
      membership has none) moves to the oldest one's; if both memberships have a conversation, two
      histories cannot become one without rewriting them, so the later membership stays with the later
      prospect, removed from the community (readable, as every removed member's conversation is);
      either way the person stays a member if either membership was current;
    - the later prospect is deleted if nothing is left on it, else it keeps its name and history without
      the number.
    """
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    groups = conn.execute(
        sa.select(prospect.c.organization_id, prospect.c.mobile)
        .where(prospect.c.mobile.is_not(None))
        .group_by(prospect.c.organization_id, prospect.c.mobile)
        .having(sa.func.count() > 1)
    ).all()
    for org_id, mobile in groups:
        rows = conn.execute(
            sa.select(prospect.c.id, prospect.c.email)
            .where(prospect.c.organization_id == org_id, prospect.c.mobile == mobile)
            .order_by(prospect.c.id)
        ).all()
        keep_id, keep_email = rows[0]
        for later_id, later_email in rows[1:]:
            if not keep_email and later_email:
                keep_email = later_email
                conn.execute(prospect.update().where(prospect.c.id == keep_id).values(email=later_email))
            _move_memberships(conn, keep_id, later_id, now)
            left = conn.execute(
                sa.select(sa.func.count()).select_from(membership).where(membership.c.prospect_id == later_id)
            ).scalar_one()
            if left:
                conn.execute(
                    prospect.update().where(prospect.c.id == later_id).values(mobile=None, country=None)
                )
            else:
                conn.execute(prospect.delete().where(prospect.c.id == later_id))


def _conversation_of(conn, membership_id):
    return conn.execute(
        sa.select(conversation.c.id).where(conversation.c.community_membership_id == membership_id)
    ).scalar()


def _move_memberships(conn, keep_id, later_id, now):
    later_rows = conn.execute(
        sa.select(membership.c.id, membership.c.community_id, membership.c.removed_at)
        .where(membership.c.prospect_id == later_id)
        .order_by(membership.c.id)
    ).all()
    for later_membership, community_id, later_removed in later_rows:
        kept = conn.execute(
            sa.select(membership.c.id, membership.c.removed_at).where(
                membership.c.prospect_id == keep_id, membership.c.community_id == community_id
            )
        ).first()
        if kept is None:
            conn.execute(
                membership.update().where(membership.c.id == later_membership).values(prospect_id=keep_id)
            )
            continue
        kept_membership, kept_removed = kept
        if later_removed is None and kept_removed is not None:
            conn.execute(membership.update().where(membership.c.id == kept_membership).values(removed_at=None))
        later_conversation = _conversation_of(conn, later_membership)
        if later_conversation is not None and _conversation_of(conn, kept_membership) is not None:
            if later_removed is None:
                conn.execute(
                    membership.update().where(membership.c.id == later_membership).values(removed_at=now)
                )
            continue
        if later_conversation is not None:
            conn.execute(
                conversation.update()
                .where(conversation.c.id == later_conversation)
                .values(community_membership_id=kept_membership)
            )
        conn.execute(membership.delete().where(membership.c.id == later_membership))


def upgrade():
    _merge_duplicates(op.get_bind())
    op.drop_index('ix_prospect_org_mobile', table_name='prospect')
    op.create_index(
        'uq_prospect_organization_id_mobile', 'prospect', ['organization_id', 'mobile'], unique=True
    )


def downgrade():
    # The merged duplicates are not split again: they were one person.
    op.drop_index('uq_prospect_organization_id_mobile', table_name='prospect')
    op.create_index('ix_prospect_org_mobile', 'prospect', ['organization_id', 'mobile'], unique=False)
