"""Where a signed-in user starts, and which sections the main navigation offers them: only sections that
can hold something for them. Built on the access rules (what the user may see), read in SQL.

- *Jobs*: someone who sees a job (on a hiring team, or an administrator); and, as the ATS's home, anyone
  who sees nothing else yet (someone invited before being put on a team).
- *Communities*: with the CRM, someone who sees a community (on a sourcing team, or an administrator).
  The hiring manager, on no sourcing team, is not offered an empty list.
- *Inbox*: whoever sees a job or a community, where conversations come from.

The start page (after sign-in, after choosing a password, and at `/`): staff start on the staff pages;
someone who only sources (communities, no job) on Communities, their prospects with unread counts; a
user with conversations on the Inbox; anyone else on their first section.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.accounts import access
from webapp.models import Community, User


@dataclass(frozen=True)
class Sections:
    jobs: bool
    inbox: bool
    communities: bool


NONE = Sections(jobs=False, inbox=False, communities=False)


def _exists(session: Session, query: sa.Select) -> bool:
    return bool(session.scalar(sa.select(query.exists())))


def _sees(session: Session, user: User) -> tuple[bool, bool]:
    """Whether the user sees any job, and any community (both through the access rules)."""
    jobs = _exists(session, access.visible_jobs(user))
    communities = _exists(session, sa.select(Community.id).where(access.community_visible_to(user)))
    return jobs, communities


def _offered(sees_jobs: bool, sees_communities: bool) -> Sections:
    return Sections(
        jobs=sees_jobs or not sees_communities,
        inbox=sees_jobs or sees_communities,
        communities=sees_communities,
    )


def sections(session: Session, user: User) -> Sections:
    """The customer's sections this user is offered (staff, who belong to no customer: none)."""
    if user.organization_id is None:
        return NONE
    return _offered(*_sees(session, user))


def start_endpoint(session: Session, user: User) -> str:
    """The endpoint of the user's start page."""
    if user.organization_id is None:
        return "staff.index"
    sees_jobs, sees_communities = _sees(session, user)
    if sees_communities and not sees_jobs:
        return "crm.index"
    if _offered(sees_jobs, sees_communities).inbox and _exists(session, access.visible_conversations(user)):
        return "inbox.index"
    return "jobs.index"
