"""Small builders for test data: each makes one object with sensible defaults and flushes it."""

from __future__ import annotations

import itertools
from typing import Any

from werkzeug.security import generate_password_hash

from webapp.accounts import permissions
from webapp.extensions import db
from webapp.models import (
    Application,
    Candidate,
    Community,
    CommunityMembership,
    HiringTeamMember,
    Job,
    Organization,
    Permission,
    Prospect,
    Role,
    SendingNumber,
    SourcingTeamMember,
    User,
)

PASSWORD = "password"
# One cheap hash for every test user: checking it is real, hashing it each time would be slow.
_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
_seq = itertools.count(1)


def org(name: str | None = None, **kw: Any) -> Organization:
    values = {"name": name or f"Org {next(_seq)}", "sender_name": "Org", **kw}
    o = Organization(**values)
    db.session.add(o)
    db.session.flush()
    return o


def messaging_org(name: str | None = None, **kw: Any) -> Organization:
    return org(name, **{"has_messaging": True, "sms_enabled": True, "whatsapp_enabled": True, **kw})


def role(organization: Organization, codes: list[str], name: str | None = None) -> Role:
    permissions.sync(db.session)
    r = Role(organization_id=organization.id, name=name or f"Role {next(_seq)}")
    r.permissions = [db.session.get(Permission, c) for c in codes]
    db.session.add(r)
    db.session.flush()
    return r


def user(
    organization: Organization | None,
    email: str | None = None,
    codes: list[str] | None = None,
    admin: bool = False,
    **kw: Any,
) -> User:
    u = User(
        email=email or f"user{next(_seq)}@example.test",
        name=kw.pop("name", "Test User"),
        organization_id=organization.id if organization else None,
        password_hash=_HASH,
        **kw,
    )
    wanted = set(codes or [])
    if admin:
        wanted |= {permissions.ADMIN_ORGANIZATION}
    if wanted and organization is not None:
        u.roles = [role(organization, sorted(wanted))]
    db.session.add(u)
    db.session.flush()
    return u


def job(organization: Organization, team: list[User] | None = None, **kw: Any) -> Job:
    j = Job(organization_id=organization.id, title=kw.pop("title", f"Job {next(_seq)}"), **kw)
    db.session.add(j)
    db.session.flush()
    for member in team or []:
        db.session.add(HiringTeamMember(job_id=j.id, user_id=member.id, title="Recruiter"))
    db.session.flush()
    return j


def candidate(organization: Organization, first: str = "Ada", last: str = "Lovelace", **kw: Any) -> Candidate:
    n = next(_seq)
    c = Candidate(
        organization_id=organization.id,
        first_name=first,
        last_name=last,
        email=kw.pop("email", f"cand{n}@example.test"),
        mobile=kw.pop("mobile", "+4915123456789"),
        **kw,
    )
    db.session.add(c)
    db.session.flush()
    return c


def application(j: Job, c: Candidate, stage: str = "new", **kw: Any) -> Application:
    a = Application(job_id=j.id, candidate_id=c.id, stage=stage, **kw)
    db.session.add(a)
    db.session.flush()
    return a


def community(
    organization: Organization, name: str | None = None, team: list[User] | None = None
) -> Community:
    c = Community(organization_id=organization.id, name=name or f"Community {next(_seq)}")
    db.session.add(c)
    db.session.flush()
    for member in team or []:
        db.session.add(SourcingTeamMember(community_id=c.id, user_id=member.id))
    db.session.flush()
    return c


def prospect(organization: Organization, first: str = "Grace", last: str = "Hopper", **kw: Any) -> Prospect:
    p = Prospect(organization_id=organization.id, first_name=first, last_name=last, **kw)
    db.session.add(p)
    db.session.flush()
    return p


def membership(c: Community, p: Prospect) -> CommunityMembership:
    m = CommunityMembership(community_id=c.id, prospect_id=p.id)
    db.session.add(m)
    db.session.flush()
    return m


def number(
    organization: Organization, e164: str, sms: bool = True, whatsapp: bool = True, **kw: Any
) -> SendingNumber:
    n = SendingNumber(organization_id=organization.id, e164=e164, sms=sms, whatsapp=whatsapp, **kw)
    db.session.add(n)
    db.session.flush()
    return n


def credits(organization: Organization, amount: int) -> None:
    from webapp.billing import credits as ledger

    ledger.top_up(db.session, organization, amount, "test credits")


def open_whatsapp_window(a: Application, hours: float = 24) -> None:
    """As if the candidate had just written on WhatsApp."""
    from datetime import timedelta

    from webapp.messaging import conversations, subjects
    from webapp.models import utcnow

    conversation = conversations.for_subject(db.session, subjects.of_application(a), create=True)
    assert conversation is not None
    conversation.whatsapp_window_ends_at = utcnow() + timedelta(hours=hours)
    db.session.flush()


def conversation_url(a: Application) -> str:
    """The address of the application's conversation (started empty if it has none yet)."""
    from webapp.messaging import conversations, subjects

    conversation = conversations.for_subject(db.session, subjects.of_application(a), create=True)
    assert conversation is not None
    db.session.commit()
    return f"/conversations/{conversation.id}"


def whatsapp_template(organization: Organization, name: str = "interview_invite", **kw: Any):
    from webapp.models import WhatsappTemplate

    t = WhatsappTemplate(
        organization_id=organization.id,
        name=name,
        locale=kw.pop("locale", "en_GB"),
        body=kw.pop("body", "Hi {{1}}, can we talk about {{2}}? Reply here."),
        parameters=kw.pop("parameters", "%FIRSTNAME% %JOBTITLE%"),
        **kw,
    )
    db.session.add(t)
    db.session.flush()
    return t
