"""Who may see and do what: the one place for organisation and team scoping, rights and entitlements.

Query builders take the user as an argument and know nothing of the request, so the inbox, the
application page and background jobs scope the same way. The route decorators over them are
webapp.web.guards.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload, object_session

from webapp.accounts import permissions
from webapp.models import (
    Application,
    Candidate,
    Community,
    CommunityMembership,
    ComplianceDocument,
    ComplianceSubmission,
    Conversation,
    HiringTeamMember,
    Job,
    Organization,
    SourcingTeamMember,
    User,
)
from webapp.models.organization import chain, family_below
from webapp.models.user import role_permission, user_role

if TYPE_CHECKING:
    from webapp.messaging.subjects import Subject


def has_permission(user: User, code: str) -> bool:
    if code not in permissions.CODES:
        raise ValueError(f"unknown permission {code!r}")
    return code in user.permission_codes


def is_org_admin(user: User) -> bool:
    """Organisation admins see every job and application of their organisation."""
    return user.organization_id is not None and has_permission(user, permissions.ADMIN_ORGANIZATION)


def sees_admin(user: User) -> bool:
    return user.organization_id is not None and bool(user.permission_codes & permissions.ADMIN_CODES)


def texts(user: User) -> bool:
    """The user's organisation can text (Messaging, with SMS or WhatsApp on). An email-only one has no
    sending numbers, compliance documents, credits to spend or unmatched replies: those admin areas are
    not offered to it, and the pages of numbers and documents answer 404 (numbers_admin_required)."""
    org = user.organization
    return org is not None and org.texts


def manages_numbers(user: User) -> bool:
    """Sending numbers and compliance documents: organisation admins, or the right "Sending numbers and
    compliance documents"."""
    return user.organization_id is not None and (
        is_org_admin(user) or has_permission(user, permissions.ADMIN_NUMBERS)
    )


def handles_unmatched(user: User) -> bool:
    return user.organization_id is not None and (
        is_org_admin(user) or has_permission(user, permissions.ADMIN_UNMATCHED)
    )


def admin_rights(user: User) -> dict[str, bool]:
    """Which admin areas the user may open (the navigation; each route checks its own right again)."""
    member = user.organization_id is not None

    def holds(code: str) -> bool:
        return member and has_permission(user, code)

    texting = texts(user)
    return {
        "settings": holds(permissions.ADMIN_ORGANIZATION),
        "people": holds(permissions.ADMIN_USERS),
        # An email-only organisation spends nothing (its ledger still opens by its address).
        "credits": holds(permissions.ADMIN_CREDITS) and texting,
        "templates": holds(permissions.ADMIN_TEMPLATES),
        "numbers": manages_numbers(user) and texting,
        "unmatched": handles_unmatched(user) and texting,
    }


def compliance_document_visible_to(user: User) -> sa.ColumnElement[bool]:
    """SQL condition on ComplianceDocument (joined to its submission): identity documents are for Relay's
    staff and for the admins of the organisation that uploaded them, nobody else."""
    if user.is_staff:
        return sa.true()
    if manages_numbers(user):
        return ComplianceSubmission.organization_id == user.organization_id
    return sa.false()


def get_compliance_document(session: Session, user: User, document_id: int) -> ComplianceDocument | None:
    return session.scalar(
        sa.select(ComplianceDocument)
        .join(ComplianceDocument.submission)
        .where(ComplianceDocument.id == document_id, compliance_document_visible_to(user))
    )


def entitled(user: User, product: str) -> bool:
    org = user.organization
    return org is not None and org.has_product(product)


def job_visible_to(user: User) -> sa.ColumnElement[bool]:
    """SQL condition: the job is in the user's organisation and, unless admin, on one of their teams."""
    if user.organization_id is None:
        return sa.false()
    in_org = Job.organization_id == user.organization_id
    if is_org_admin(user):
        return in_org
    on_team = (
        sa.select(HiringTeamMember.id)
        .where(HiringTeamMember.job_id == Job.id, HiringTeamMember.user_id == user.id)
        .exists()
    )
    return sa.and_(in_org, on_team)


def visible_jobs(user: User) -> sa.Select[tuple[Job]]:
    return sa.select(Job).where(job_visible_to(user))


def visible_applications(user: User) -> sa.Select[tuple[Application]]:
    return sa.select(Application).join(Application.job).where(job_visible_to(user))


def get_job(session: Session, user: User, job_id: int) -> Job | None:
    return session.scalar(visible_jobs(user).where(Job.id == job_id))


def get_application(session: Session, user: User, application_id: int) -> Application | None:
    return session.scalar(visible_applications(user).where(Application.id == application_id))


def other_applications(session: Session, user: User, application: Application) -> list[Application]:
    """The candidate's other applications that this user may also see."""
    query = (
        visible_applications(user)
        .join(Application.candidate)
        .where(Candidate.id == application.candidate_id, Application.id != application.id)
        .order_by(Application.created_at.desc())
    )
    return list(session.scalars(query))


def community_visible_to(user: User) -> sa.ColumnElement[bool]:
    """SQL condition: the community is in the user's organisation and, unless admin, the user is on its
    sourcing team."""
    # Without the CRM product there are no communities (and no prospects) to see.
    if user.organization_id is None or not entitled(user, "crm"):
        return sa.false()
    in_org = Community.organization_id == user.organization_id
    if is_org_admin(user):
        return in_org
    on_team = (
        sa.select(SourcingTeamMember.id)
        .where(SourcingTeamMember.community_id == Community.id, SourcingTeamMember.user_id == user.id)
        .exists()
    )
    return sa.and_(in_org, on_team)


def visible_memberships(user: User) -> sa.Select[tuple[CommunityMembership]]:
    return (
        sa.select(CommunityMembership).join(CommunityMembership.community).where(community_visible_to(user))
    )


def get_membership(session: Session, user: User, membership_id: int) -> CommunityMembership | None:
    return session.scalar(visible_memberships(user).where(CommunityMembership.id == membership_id))


def may_write(session: Session, user: User, subject: Subject) -> bool:
    """The team rule for writing: the job's hiring team or the community's sourcing team (and admins)."""
    if subject.kind == "application":
        query = visible_applications(user).where(Application.id == subject.id)
    else:
        query = visible_memberships(user).where(CommunityMembership.id == subject.id)
    return session.scalar(sa.select(query.exists())) or False


# --- Conversations (the inbox) -------------------------------------------------------------------
# Who may see a conversation: an application's, the hiring team of its job; a community membership's,
# the community's sourcing team; an organisation administrator, every conversation of their
# organisation and of its sub-organisations. Another customer's, never. `conversation_visible_to` says
# it for reading, `conversation_viewers` for the other direction (whom a new message concerns); the
# tests hold them to the same answers.


def conversation_organization_ids(session: Session, user: User) -> list[int]:
    """The organisations in whose conversations the user may see some (admins: with sub-organisations)."""
    if user.organization_id is None:
        return []
    if not is_org_admin(user):
        return [user.organization_id]
    family = family_below(user.organization_id)
    return sorted(session.scalars(sa.select(family.c.id)))


def conversation_team_condition(user: User) -> sa.ColumnElement[bool]:
    """SQL condition, within the user's organisations: the conversation is one of their teams' (always
    true for an administrator)."""
    return _team_rule(*_rule_inputs(user))


def _rule_inputs(user: User) -> tuple[int, int | None, bool, bool]:
    """What the conversation rule reads of a user: who, which organisation, admin or not, CRM or not."""
    return user.id, user.organization_id, is_org_admin(user), entitled(user, "crm")


# Built once per user and product: the inbox builds the scope at every poll, and building the rule
# (two correlated subqueries) cost more than the poll's statements that no longer need it (they are
# kept built, webapp.inbox.queries._once). An SQL expression is immutable: sharing it is safe.
@lru_cache(maxsize=4096)
def _team_rule(user_id: int, organization_id: int | None, admin: bool, crm: bool) -> sa.ColumnElement[bool]:
    if organization_id is None:
        return sa.false()
    if admin:
        return _crm_rule(crm)
    # The job (community) of the conversation's subject, as a scalar subquery inside the test: written
    # as a join, PostgreSQL would hash every application of the user's jobs to test a page of rows (a
    # cost that grows with them); this way each row costs two index lookups.
    job = (
        sa.select(Application.job_id)
        .where(Application.id == Conversation.application_id)
        .correlate(Conversation)
        .scalar_subquery()
    )
    on_hiring_team = (
        sa.select(HiringTeamMember.id)
        .where(HiringTeamMember.user_id == user_id, HiringTeamMember.job_id == job)
        .exists()
    )
    if not crm:
        return sa.and_(Conversation.organization_id == organization_id, on_hiring_team)
    community = (
        sa.select(CommunityMembership.community_id)
        .where(CommunityMembership.id == Conversation.community_membership_id)
        .correlate(Conversation)
        .scalar_subquery()
    )
    on_sourcing_team = (
        sa.select(SourcingTeamMember.id)
        .where(SourcingTeamMember.user_id == user_id, SourcingTeamMember.community_id == community)
        .exists()
    )
    return sa.and_(Conversation.organization_id == organization_id, sa.or_(on_hiring_team, on_sourcing_team))


def conversation_mine_or_my_teams(user: User) -> sa.ColumnElement[bool]:
    """SQL condition: the conversation is assigned to the user, or is one of their teams' (an
    administrator's too: what waits for them, not every conversation they may read)."""
    user_id, organization_id, _, crm = _rule_inputs(user)
    return mine_or_my_teams_rule(user_id, organization_id, crm)


def mine_or_my_teams_rule(user_id: int, organization_id: int | None, crm: bool) -> sa.ColumnElement[bool]:
    """conversation_mine_or_my_teams from what it reads of the user (for statements built once per user)."""
    return sa.or_(Conversation.assignee_id == user_id, _team_rule(user_id, organization_id, False, crm))


def _crm_rule(crm: bool) -> sa.ColumnElement[bool]:
    """Prospects' conversations are for customers with the CRM product (kept, not shown, if it ends)."""
    return sa.true() if crm else Conversation.application_id.is_not(None)


def _visible_rule(
    user_id: int, organization_id: int | None, admin: bool, crm: bool
) -> sa.ColumnElement[bool]:
    if organization_id is None:
        return sa.false()
    if admin:
        family = family_below(organization_id)
        return sa.and_(Conversation.organization_id.in_(sa.select(family.c.id)), _crm_rule(crm))
    return _team_rule(user_id, organization_id, admin, crm)


def conversation_visible_to(user: User) -> sa.ColumnElement[bool]:
    """SQL condition: the user may see the conversation."""
    return _visible_rule(*_rule_inputs(user))


def visible_conversations(user: User) -> sa.Select[tuple[Conversation]]:
    return sa.select(Conversation).where(conversation_visible_to(user))


def get_conversation(session: Session, user: User, conversation_id: int) -> Conversation | None:
    return session.scalar(_conversation_by_id(*_rule_inputs(user)), {"conversation_id": conversation_id})


@lru_cache(maxsize=1024)
def _conversation_by_id(
    user_id: int, organization_id: int | None, admin: bool, crm: bool
) -> sa.Select[tuple[Conversation]]:
    """One conversation by id under the rule, built once per user and what the rule reads (a panel is
    opened and polled all day, and building the rule cost more than running it). Statements are
    immutable values, safe to share between requests."""
    rule = _visible_rule(user_id, organization_id, admin, crm)
    # With what its subject is made of (webapp.messaging.subjects), in the same statement.
    application = joinedload(Conversation.application)
    membership = joinedload(Conversation.community_membership)
    return (
        sa.select(Conversation)
        .where(rule, Conversation.id == sa.bindparam("conversation_id"))
        .options(
            application.joinedload(Application.job),
            application.joinedload(Application.candidate),
            membership.joinedload(CommunityMembership.community),
            membership.joinedload(CommunityMembership.prospect),
        )
    )


def conversation_viewers(conversation: Conversation) -> sa.CompoundSelect:
    """SQL: the ids of the users who may see this conversation (the rule above, the other way round)."""
    session = object_session(conversation)
    assert session is not None, "the conversation's organisations are read in its session"
    statement, params = conversation_viewers_query(conversation, chain(session, conversation.organization_id))
    return statement.params(params)


def conversation_viewers_query(
    conversation: Conversation, organization_chain: list[int]
) -> tuple[sa.CompoundSelect, dict[str, object]]:
    """conversation_viewers as one statement built once and its parameters (`organization_chain`: the
    conversation's organisation and its parents, webapp.models.organization.chain), for a caller that
    runs it inside a statement of its own on every inbound message (webapp.inbox.changes)."""
    statement = _viewers_statement(conversation.application_id is not None)
    return statement, {
        "viewers_chain": organization_chain,
        "viewers_org": conversation.organization_id,
        "viewers_subject": conversation.application_id or conversation.community_membership_id,
    }


@lru_cache(maxsize=2)
def _viewers_statement(of_application: bool) -> sa.CompoundSelect:
    # Bound parameters, not values: the one statement object is reused, so SQLAlchemy neither builds nor
    # compiles it again for every inbound message.
    admins = (
        sa.select(User.id)
        .join(user_role, user_role.c.user_id == User.id)
        .join(role_permission, role_permission.c.role_id == user_role.c.role_id)
        .where(
            role_permission.c.permission_code == permissions.ADMIN_ORGANIZATION,
            User.organization_id.in_(sa.bindparam("viewers_chain", expanding=True)),
        )
    )
    if not of_application:
        # A prospect's conversation is for those whose organisation has the CRM (see _crm_condition).
        admins = admins.join(Organization, Organization.id == User.organization_id).where(
            Organization.has_crm.is_(True)
        )
    return sa.union(admins, _team_statement(of_application))


def conversation_team(conversation: Conversation) -> sa.Select[tuple[int]]:
    """SQL: the ids of the users on the conversation's own team, in its organisation: the hiring team of
    the application's job, or the community's sourcing team (with the CRM). Those write in it (admins
    aside) and one of them may be its assignee. The team half of conversation_viewers, so that the two
    never disagree."""
    return _team_statement(conversation.application_id is not None).params(
        viewers_org=conversation.organization_id,
        viewers_subject=conversation.application_id or conversation.community_membership_id,
    )


def conversation_team_members(session: Session, conversation: Conversation) -> list[int]:
    """The ids of conversation_team: those who may write in it as its team, not administrators who only
    see it."""
    return sorted(session.scalars(conversation_team(conversation)))


@lru_cache(maxsize=2)
def _team_statement(of_application: bool) -> sa.Select[tuple[int]]:
    subject = sa.bindparam("viewers_subject", type_=sa.Integer)
    organization = sa.bindparam("viewers_org", type_=sa.Integer)
    if of_application:
        return (
            sa.select(HiringTeamMember.user_id)
            .join(Application, Application.job_id == HiringTeamMember.job_id)
            .join(User, User.id == HiringTeamMember.user_id)
            .where(Application.id == subject, User.organization_id == organization)
        )
    return (
        sa.select(SourcingTeamMember.user_id)
        .join(CommunityMembership, CommunityMembership.community_id == SourcingTeamMember.community_id)
        .join(User, User.id == SourcingTeamMember.user_id)
        .join(Organization, Organization.id == User.organization_id)
        .where(
            CommunityMembership.id == subject,
            User.organization_id == organization,
            Organization.has_crm.is_(True),
        )
    )
