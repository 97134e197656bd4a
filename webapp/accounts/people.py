"""People and rights in an organisation: invitations, deactivation, roles and their permissions, and
team memberships. Plain functions over the database session; the admin pages call them.

The one rule that spans them: an organisation always keeps an active member who has set a password and
holds "Users and roles" (ADMIN_USERS), the right that can give every other right back. Someone invited
who never set a password does not count: their link may expire, and then nobody could open People.
Every change that could take it away is applied, checked, and refused as a whole if it did (the caller
rolls back). The check locks the organisation's row first (PostgreSQL), so two admins removing each
other at the same moment cannot both pass it.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session, selectinload

from webapp import unique
from webapp.accounts import password_links, permissions, sessions
from webapp.messaging import assignment
from webapp.models import (
    Community,
    HiringTeamMember,
    Job,
    Organization,
    Permission,
    Role,
    SourcingTeamMember,
    User,
)
from webapp.models.user import role_permission, user_role
from webapp.refusals import Refused

KEEPER = permissions.ADMIN_USERS
NAME_LENGTH = 200
ROLE_NAME_LENGTH = 100


class PeopleRefused(Refused):
    pass


def _keeper_name() -> str:
    spec = next(p for p in permissions.CATALOGUE if p.code == KEEPER)
    return spec.name


# --- Reading ---------------------------------------------------------------------------------------


def members(session: Session, organization_id: int) -> list[User]:
    return list(
        session.scalars(
            sa.select(User)
            .where(User.organization_id == organization_id)
            .options(selectinload(User.roles).selectinload(Role.permissions))
            .order_by(User.active.desc(), User.name, User.id)
        )
    )


def get_member(session: Session, organization_id: int, user_id: int) -> User | None:
    return session.scalar(sa.select(User).where(User.id == user_id, User.organization_id == organization_id))


def roles_of(session: Session, organization_id: int) -> list[Role]:
    return list(
        session.scalars(
            sa.select(Role)
            .where(Role.organization_id == organization_id)
            .options(selectinload(Role.permissions))
            .order_by(Role.name)
        )
    )


def is_invited(user: User) -> bool:
    """Invited and not signed up yet: no password set."""
    return not user.password_hash


def _roles(session: Session, organization_id: int, role_ids: Iterable[int]) -> list[Role]:
    wanted = set(role_ids)
    found = list(
        session.scalars(sa.select(Role).where(Role.organization_id == organization_id, Role.id.in_(wanted)))
    )
    if len(found) != len(wanted):  # another organisation's role, or one deleted meanwhile
        raise PeopleRefused("Choose roles of your organisation.", "roles")
    return found


# --- The rule --------------------------------------------------------------------------------------


def keepers(session: Session, organization_id: int) -> int:
    """Active members who have set a password and hold "Users and roles", as the database has them now
    (after a flush)."""
    return (
        session.scalar(
            sa.select(sa.func.count(sa.distinct(User.id)))
            .join(user_role, user_role.c.user_id == User.id)
            .join(role_permission, role_permission.c.role_id == user_role.c.role_id)
            .where(
                User.organization_id == organization_id,
                User.active.is_(True),
                User.password_hash != "",  # invited, never signed up: see is_invited
                role_permission.c.permission_code == KEEPER,
            )
        )
        or 0
    )


def _lock(session: Session, organization_id: int) -> None:
    """Serialise changes of rights within one organisation (a row lock on PostgreSQL; SQLite has one
    writer at a time anyway)."""
    session.execute(
        sa.select(Organization.id).where(Organization.id == organization_id).with_for_update()
    ).scalar_one()


def _still_kept(session: Session, organization_id: int, field: str | None = None) -> None:
    session.flush()
    if keepers(session, organization_id) == 0:
        raise PeopleRefused(
            f"This would leave nobody who can manage users and roles: give someone else the right "
            f"“{_keeper_name()}” first (someone who has set their password: an invitation not yet "
            f"accepted does not count).",
            field,
        )


# --- Invitations and deactivation ------------------------------------------------------------------


def normal_email(raw: str) -> str:
    text = (raw or "").strip()
    if not text:
        raise PeopleRefused("Enter their email address.", "email")
    try:
        # Syntax only: no DNS lookup from a web request, and a company's internal domain is its own affair.
        found = validate_email(
            text, check_deliverability=False, globally_deliverable=False, test_environment=True
        )
    except EmailNotValidError as error:
        raise PeopleRefused(f"{text[:80]} is not an email address: {error}", "email") from error
    return found.normalized.lower()


def invite(session: Session, admin: User, name: str, email: str, role_ids: Iterable[int]) -> tuple[User, str]:
    """A new member with no password yet, and the token of their one-time link to set one."""
    org_id = admin.organization_id
    assert org_id is not None
    name = (name or "").strip()
    if not name:
        raise PeopleRefused("Enter their name.", "name")
    if len(name) > NAME_LENGTH:
        raise PeopleRefused(f"Keep the name under {NAME_LENGTH} characters.", "name")
    address = normal_email(email)
    taken = PeopleRefused(f"{address} already has a Relay account.", "email")
    if session.scalar(sa.select(User.id).where(User.email == address)) is not None:
        raise taken
    roles = _roles(session, org_id, role_ids)
    # No password: nobody can sign in as them until the link is used (check_password_hash("") is False).
    user = User(email=address, name=name, organization_id=org_id, password_hash="", roles=roles)
    with unique.refusing(session, {"uq_user_email": taken}):  # the same address invited meanwhile
        session.add(user)
    return user, password_links.issue(session, user, admin)


def new_link(session: Session, by: User | None, user: User) -> str:
    """A new set-password link for the user (their earlier ones stop working), made by an admin of
    their organisation, by Relay's staff, or (None) from the command line."""
    if not user.active:
        raise PeopleRefused(f"{user.name} is deactivated: reactivate them first.")
    return password_links.issue(session, user, by)


def find_by_email(session: Session, email: str) -> User | None:
    """The account with this address (any organisation, staff too; case does not matter)."""
    address = (email or "").strip().lower()
    return session.scalar(sa.select(User).where(User.email == address)) if address else None


def deactivate(session: Session, admin: User, user: User) -> int:
    """The user can no longer sign in: their sessions end now and their links stop working. Returns
    how many sessions were ended."""
    if user.id == admin.id:
        raise PeopleRefused("You cannot deactivate yourself; ask another administrator.")
    _lock(session, user.organization_id or 0)
    user.active = False
    _still_kept(session, user.organization_id or 0)
    # Not the assignee of anything any more.
    assignment.release(session, user)
    password_links.retire(session, user)
    return sessions.end_sessions(session, user)


def reactivate(session: Session, user: User) -> None:
    user.active = True


# --- Roles and rights ------------------------------------------------------------------------------


def set_roles(session: Session, admin: User, user: User, role_ids: Iterable[int]) -> None:
    org_id = user.organization_id or 0
    _lock(session, org_id)
    user.roles = _roles(session, org_id, role_ids)
    _still_kept(session, org_id, "roles")


def create_role(session: Session, org: Organization, name: str, codes: Iterable[str] = ()) -> Role:
    name = (name or "").strip()
    if not name:
        raise PeopleRefused("Give the role a name.", "name")
    if len(name) > ROLE_NAME_LENGTH:
        raise PeopleRefused(f"Keep the name under {ROLE_NAME_LENGTH} characters.", "name")
    taken = PeopleRefused(f"There is a role called “{name}” already.", "name")
    if session.scalar(sa.select(Role.id).where(Role.organization_id == org.id, Role.name == name)):
        raise taken
    role = Role(organization_id=org.id, name=name, permissions=_permissions(session, codes))
    with unique.refusing(session, {"uq_role_organization_id_name": taken}):
        session.add(role)
    return role


def _permissions(session: Session, codes: Iterable[str]) -> list[Permission]:
    wanted = set(codes)
    unknown = wanted - permissions.CODES
    if unknown:
        raise PeopleRefused("Choose permissions from the list.")
    permissions.sync(session)
    return list(session.scalars(sa.select(Permission).where(Permission.code.in_(wanted))))


def save_matrix(session: Session, org: Organization, grants: dict[int, set[str]]) -> None:
    """Every role's permissions at once, as the matrix's checkboxes say (a role left out has none)."""
    _lock(session, org.id)
    for role in roles_of(session, org.id):
        role.permissions = _permissions(session, grants.get(role.id, set()))
    _still_kept(session, org.id)


def delete_role(session: Session, org: Organization, role: Role) -> None:
    if role.organization_id != org.id:
        raise PeopleRefused("Choose a role of your organisation.")
    _lock(session, org.id)
    session.delete(role)
    _still_kept(session, org.id)


# --- Teams -----------------------------------------------------------------------------------------


def jobs_of(session: Session, organization_id: int) -> list[Job]:
    return list(
        session.scalars(
            sa.select(Job)
            .where(Job.organization_id == organization_id)
            .order_by(Job.is_open.desc(), Job.title)
        )
    )


def communities_of(session: Session, organization: Organization) -> list[Community]:
    """The communities whose sourcing teams people can be put on: none without the CRM product."""
    if not organization.has_product("crm"):
        return []
    return list(
        session.scalars(
            sa.select(Community).where(Community.organization_id == organization.id).order_by(Community.name)
        )
    )


def team_ids(session: Session, user: User) -> tuple[set[int], set[int]]:
    """The jobs whose hiring team, and the communities whose sourcing team, the user is on."""
    jobs = set(session.scalars(sa.select(HiringTeamMember.job_id).where(HiringTeamMember.user_id == user.id)))
    communities = set(
        session.scalars(
            sa.select(SourcingTeamMember.community_id).where(SourcingTeamMember.user_id == user.id)
        )
    )
    return jobs, communities


def set_teams(session: Session, user: User, job_ids: Iterable[int], community_ids: Iterable[int]) -> None:
    """Put the user on exactly these hiring teams and sourcing teams (of their organisation). Without
    the CRM product no sourcing teams are offered (communities_of): those the user is on, from when the
    organisation had it, are kept as they are, whatever was asked."""
    org_id = user.organization_id or 0
    # Two saves of one person's teams at once take turns (the second reads what the first saved), so
    # that the last one's choice is what stays.
    _lock(session, org_id)
    jobs = set(job_ids)
    current_jobs, current_communities = team_ids(session, user)
    crm = user.organization is not None and user.organization.has_product("crm")
    communities = set(community_ids) if crm else set(current_communities)
    own_jobs = set(session.scalars(sa.select(Job.id).where(Job.organization_id == org_id, Job.id.in_(jobs))))
    own_communities = set(
        session.scalars(
            sa.select(Community.id).where(Community.organization_id == org_id, Community.id.in_(communities))
        )
    )
    # Said under the teams' checkboxes, whose first group is "jobs".
    if own_jobs != jobs or own_communities != communities:
        raise PeopleRefused("Choose jobs and communities of your organisation.", "jobs")
    # Who leaves a team no longer answers its conversations.
    assignment.release(
        session, user, job_ids=current_jobs - jobs, community_ids=current_communities - communities
    )
    session.execute(
        sa.delete(HiringTeamMember).where(
            HiringTeamMember.user_id == user.id, HiringTeamMember.job_id.in_(current_jobs - jobs)
        )
    )
    session.execute(
        sa.delete(SourcingTeamMember).where(
            SourcingTeamMember.user_id == user.id,
            SourcingTeamMember.community_id.in_(current_communities - communities),
        )
    )
    # SQLite has no row lock to take turns on: a save that read the teams before another one stored
    # them is refused rather than failing.
    changed = PeopleRefused(
        f"Someone has just changed {user.name}'s teams: check them below and save again.", "jobs"
    )
    with unique.refusing(
        session,
        {
            "uq_hiring_team_member_job_id_user_id": changed,
            "uq_sourcing_team_member_community_id_user_id": changed,
        },
    ):
        for job_id in sorted(jobs - current_jobs):
            session.add(HiringTeamMember(job_id=job_id, user_id=user.id, title="Hiring team member"))
        for community_id in sorted(communities - current_communities):
            session.add(SourcingTeamMember(community_id=community_id, user_id=user.id))
