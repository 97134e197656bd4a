"""The CRM's rules: reading communities and their members for one user, adding and removing prospects.

Every read starts from webapp.accounts.access (the sourcing-team rule, the CRM entitlement). A prospect is one
person of the organisation, found by their mobile (E.164) or email: adding the same number to a second
community adds the same prospect there, never a copy, so that opt-outs and replies meet one person. The
database holds it too (a unique index on the organisation and the number): of two adds at once, the
second finds the prospect the first stored and is answered as if it had come second.
Removing a member keeps the membership and its conversation (history is never lost); adding them again
brings it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager

from webapp import phones, search, unique
from webapp.accounts import access
from webapp.messaging import reads
from webapp.models import (
    Community,
    CommunityMembership,
    Conversation,
    Organization,
    Prospect,
    SourcingTeamMember,
    User,
    utcnow,
)
from webapp.refusals import Refused

MAX_ROWS = 500
# One person per organisation and number: the unique index of Prospect's (organization_id, mobile).
NUMBER_KEY = "uq_prospect_organization_id_mobile"


class ProspectRefused(Refused):
    """The member cannot be added as typed."""


@dataclass(frozen=True)
class CommunityRow:
    community: Community
    members: int
    unread: int
    last_activity: datetime | None


@dataclass(frozen=True)
class MemberRow:
    membership: CommunityMembership
    unread: int
    last_activity: datetime | None

    @property
    def prospect(self) -> Prospect:
        return self.membership.prospect


def _activity(user: User) -> sa.Select:
    return reads.activity_per_subject(user.id, Conversation.community_membership_id)


def communities_for(session: Session, user: User) -> list[CommunityRow]:
    """The communities the user is on the sourcing team of (all of the organisation's for admins)."""
    active = CommunityMembership.removed_at.is_(None)
    per_membership = _activity(user).subquery()
    counts = (
        sa.select(
            CommunityMembership.community_id,
            sa.func.count().label("members"),
            sa.func.coalesce(sa.func.sum(per_membership.c.unread), 0).label("unread"),
            sa.func.max(per_membership.c.last_at).label("last_at"),
        )
        .outerjoin(per_membership, per_membership.c.subject_id == CommunityMembership.id)
        .where(active)
        .group_by(CommunityMembership.community_id)
        .subquery()
    )
    query = (
        sa.select(Community)
        .where(access.community_visible_to(user))
        .add_columns(
            sa.func.coalesce(counts.c.members, 0),
            sa.func.coalesce(counts.c.unread, 0),
            counts.c.last_at,
        )
        .outerjoin(counts, counts.c.community_id == Community.id)
        .order_by(Community.name, Community.id)
    )
    return [CommunityRow(*row) for row in session.execute(query)]


def get_community(session: Session, user: User, community_id: int) -> Community | None:
    return session.scalar(
        sa.select(Community).where(access.community_visible_to(user), Community.id == community_id)
    )


def matching(user: User, community_id: int, q: str = "") -> sa.Select[tuple[CommunityMembership]]:
    """The community's current members this user may see that the search matches (every word of the
    name, accents and case aside, or part of their number), unordered and uncapped: the one rule of
    "who matches" for the member list and for a bulk message to all matching."""
    query = (
        access.visible_memberships(user)
        .join(CommunityMembership.prospect)
        .where(CommunityMembership.community_id == community_id, CommunityMembership.removed_at.is_(None))
    )
    for word in search.words(q):
        by_name = Prospect.search_name.contains(word, autoescape=True)
        digits = "".join(ch for ch in word if ch.isdigit())
        if len(digits) >= 3 and digits == word.lstrip("+"):
            by_name = sa.or_(by_name, Prospect.mobile.contains(digits, autoescape=True))
        query = query.where(by_name)
    return query


def members(session: Session, user: User, community: Community, q: str = "") -> list[MemberRow]:
    """The members the search matches, the newest MAX_ROWS."""
    query = (
        matching(user, community.id, q)
        .options(contains_eager(CommunityMembership.prospect))
        .order_by(CommunityMembership.created_at.desc(), CommunityMembership.id.desc())
        .limit(MAX_ROWS)
    )
    rows = list(session.scalars(query))
    activity = {}
    if rows:
        per_membership = _activity(user).where(Conversation.community_membership_id.in_([m.id for m in rows]))
        activity = {mid: (unread, at) for mid, unread, at in session.execute(per_membership)}
    return [MemberRow(m, *activity.get(m.id, (0, None))) for m in rows]


def matching_ids(session: Session, user: User, community_id: int, q: str = "") -> list[int]:
    """Every membership the search matches, uncapped, in id order."""
    query = matching(user, community_id, q).with_only_columns(CommunityMembership.id)
    return list(session.scalars(query.order_by(CommunityMembership.id)))


def count_matching(session: Session, user: User, community_id: int, q: str = "") -> int:
    """How many members the search matches, uncapped (the list shows at most MAX_ROWS)."""
    found = matching(user, community_id, q).with_only_columns(CommunityMembership.id).subquery()
    return session.scalar(sa.select(sa.func.count()).select_from(found)) or 0


def sourcing_team(session: Session, community: Community) -> list[User]:
    return list(
        session.scalars(
            sa.select(User)
            .join(SourcingTeamMember, SourcingTeamMember.user_id == User.id)
            .where(SourcingTeamMember.community_id == community.id)
            .order_by(User.name, User.id)
        )
    )


def parse_mobile(raw: str) -> str | None:
    """The mobile in E.164, None when left empty; ProspectRefused (beside "mobile") when not a number."""
    if not (raw or "").strip():
        return None
    try:
        return phones.normalise(raw)
    except phones.InvalidPhoneNumber as exc:
        raise ProspectRefused(str(exc), "mobile") from exc


def _same_person(prospect: Prospect, first_name: str, last_name: str) -> bool:
    return prospect.search_name == search.fold(f"{first_name} {last_name}")


def add_member(
    session: Session,
    community: Community,
    first_name: str,
    last_name: str,
    mobile: str,
    email: str,
) -> tuple[CommunityMembership, bool]:
    """Add a prospect to the community, in the caller's transaction: the organisation's prospect with
    that mobile (or email) if there is one, else a new prospect. Returns the membership and whether the
    prospect already existed. Raises ProspectRefused for a bad number, a number that is someone else's,
    or someone already a member."""
    first_name, last_name, email = first_name.strip(), last_name.strip(), (email or "").strip().lower()
    if not first_name:
        raise ProspectRefused("Enter the prospect's first name.", "first_name")
    if not last_name:
        raise ProspectRefused("Enter the prospect's last name.", "last_name")
    e164 = parse_mobile(mobile)
    if e164 is None and not email:
        raise ProspectRefused("Enter a mobile number or an email address to reach them by.", "mobile")
    org: Organization = community.organization
    existing = _existing(session, org, first_name, last_name, e164, email)
    if existing is None:
        prospect = Prospect(
            organization_id=org.id,
            first_name=first_name,
            last_name=last_name,
            mobile=e164,
            email=email or None,
        )
        try:
            with unique.savepoint(session, NUMBER_KEY):
                session.add(prospect)
        except unique.Conflict:
            # Someone added the number between our look-up and this insert (a double click, two
            # colleagues): found now, and answered as if they had been first.
            existing = _existing(session, org, first_name, last_name, e164, email)
            if existing is None:  # prospects are never deleted: the one holding the number is there
                raise
    if existing is not None:
        prospect = existing
        # What was typed completes what we knew, never overwrites it.
        if e164 and not prospect.mobile:
            prospect.mobile = e164
        if email and not prospect.email:
            prospect.email = email
    membership = session.scalar(
        sa.select(CommunityMembership).where(
            CommunityMembership.community_id == community.id, CommunityMembership.prospect_id == prospect.id
        )
    )
    already = ProspectRefused(
        f"{prospect.full_name} is already a member of {community.name}.", "mobile" if e164 else "email"
    )
    if membership is not None and membership.removed_at is None:
        raise already
    if membership is not None:
        restore_member(membership)
        session.flush()
        return membership, existing is not None
    membership = CommunityMembership(community_id=community.id, prospect_id=prospect.id)
    # Two people adding the same prospect at once: the unique key lets one in, the other is told.
    with unique.refusing(session, {"uq_community_membership_community_id_prospect_id": already}):
        session.add(membership)
    return membership, existing is not None


def _existing(
    session: Session, org: Organization, first_name: str, last_name: str, e164: str | None, email: str
) -> Prospect | None:
    """The organisation's prospect with this mobile (else, without a mobile, this email), as the
    database has it now; ProspectRefused if they are someone else."""
    if e164 is not None:
        existing = session.scalar(
            sa.select(Prospect).where(Prospect.organization_id == org.id, Prospect.mobile == e164)
        )
        if existing is not None and not _same_person(existing, first_name, last_name):
            raise ProspectRefused(
                f"{phones.display(e164)} is already the number of {existing.full_name}, a prospect of "
                f"{org.name}. Check the number, or add {existing.full_name} by their own name.",
                "mobile",
            )
        return existing
    if email:
        existing = session.scalar(
            sa.select(Prospect).where(Prospect.organization_id == org.id, Prospect.email == email).limit(1)
        )
        if existing is not None and not _same_person(existing, first_name, last_name):
            raise ProspectRefused(
                f"{email} is already the address of {existing.full_name}, a prospect of {org.name}.",
                "email",
            )
        return existing
    return None


def remove_member(membership: CommunityMembership) -> None:
    """Take the prospect out of the community's list; the conversation stays, read-only."""
    if membership.removed_at is None:
        membership.removed_at = utcnow()


def restore_member(membership: CommunityMembership) -> None:
    """A removed member back in the community, with the conversation they had."""
    membership.removed_at = None


def other_memberships(
    session: Session, user: User, membership: CommunityMembership
) -> list[CommunityMembership]:
    """The prospect's other communities that this user may also see."""
    return list(
        session.scalars(
            access.visible_memberships(user)
            .where(
                CommunityMembership.prospect_id == membership.prospect_id,
                CommunityMembership.id != membership.id,
                CommunityMembership.removed_at.is_(None),
            )
            .order_by(Community.name)
        )
    )
