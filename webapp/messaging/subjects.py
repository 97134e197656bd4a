"""What a conversation is about: a candidate's application (written to by the job's hiring team) or a
prospect's membership of a talent community (written to by its sourcing team).

One small value answers, for either kind, what the way of a message needs to know — the organisation,
the person written to, the title `%JOBTITLE%` stands for, which right and which products texting
needs — so that compose, the checks, placeholders, conversations, Simulate a reply and the HELP reply
work the same for both and never look at an `Application` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from webapp.accounts import permissions
from webapp.models import (
    Application,
    Candidate,
    Community,
    CommunityMembership,
    Conversation,
    Organization,
    Prospect,
)

Kind = Literal["application", "membership"]
# What writing by SMS or WhatsApp about each kind of subject needs: the right, and the products. Read
# without the subject too (the scheduler checks a conversation's messages by its kind).
TEXTING: dict[Kind, tuple[str, tuple[str, ...]]] = {
    "application": (permissions.RECRUITMENT_SMS, ("messaging",)),
    "membership": (permissions.SOURCING_MESSAGING, ("messaging", "crm")),
}


@dataclass(frozen=True, eq=False)
class Subject:
    kind: Kind
    id: int
    organization: Organization
    contact: Candidate | Prospect
    # What %JOBTITLE% stands for: the job's title, or the community's name.
    title: str
    # The right and the products that writing by SMS or WhatsApp about this subject needs.
    texting_permission: str
    texting_products: tuple[str, ...]
    # Who writes: "hiring team of this job", "sourcing team of this community".
    team: str
    application: Application | None = None
    membership: CommunityMembership | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Subject) and (self.kind, self.id) == (other.kind, other.id)

    def __hash__(self) -> int:
        return hash((self.kind, self.id))

    @property
    def conversation_key(self) -> dict[str, Any]:
        """The conversation's column that names this subject, with its value."""
        column = "application_id" if self.kind == "application" else "community_membership_id"
        return {column: self.id}

    @property
    def conversation_condition(self) -> sa.ColumnElement[bool]:
        if self.kind == "application":
            return Conversation.application_id == self.id
        return Conversation.community_membership_id == self.id

    @property
    def audience(self) -> str:
        """Which templates are written for this person: "candidates" or "prospects" (a template's
        audience; webapp.messaging.templates.offered_to)."""
        return "candidates" if self.kind == "application" else "prospects"

    @property
    def people(self) -> str:
        """How the contact is named in sentences: "the candidate", "the prospect"."""
        return "the candidate" if self.kind == "application" else "the prospect"


def of_application(application: Application) -> Subject:
    job = application.job
    return Subject(
        kind="application",
        id=application.id,
        organization=job.organization,
        contact=application.candidate,
        title=job.title,
        texting_permission=TEXTING["application"][0],
        texting_products=TEXTING["application"][1],
        team="hiring team of this job",
        application=application,
    )


def of_membership(membership: CommunityMembership) -> Subject:
    community: Community = membership.community
    return Subject(
        kind="membership",
        id=membership.id,
        organization=community.organization,
        contact=membership.prospect,
        title=community.name,
        texting_permission=TEXTING["membership"][0],
        texting_products=TEXTING["membership"][1],
        team="sourcing team of this community",
        membership=membership,
    )


def kind_of(conversation: Conversation) -> Kind:
    return "application" if conversation.application_id is not None else "membership"


def of_conversation(conversation: Conversation) -> Subject:
    if conversation.application is not None:
        return of_application(conversation.application)
    assert conversation.community_membership is not None
    return of_membership(conversation.community_membership)
