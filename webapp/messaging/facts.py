"""What the checks of a message read about its recipient from the database: whether the writer's team
may write to them, an opt-out in force for their number, their conversation, when they last wrote.

`Facts` asks one statement per question, as a single message does. `Known` answers the same questions
for many recipients from a few statements read up front (a bulk message's preview and run), so that a
batch is checked by the very code that checks one message (webapp.messaging.compose.plan), not by a
copy of it. A `Known` is a snapshot: what changes after it was read (an opt-out, a reply) is caught
where it matters again, at dispatch (which reads the opt-out with the message) and for a scheduled
message when it leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.accounts import access
from webapp.messaging import conversations, optouts
from webapp.messaging.subjects import Subject
from webapp.models import Application, CommunityMembership, Conversation, Message, OptOut, User

# A parameter list has limits (SQLite's is 32,766, PostgreSQL's 65,535): read in chunks.
CHUNK = 1000


def last_heard(session: Session, conversation: Conversation | None) -> datetime | None:
    """When the person last wrote in this conversation, on any channel."""
    if conversation is None or conversation.id is None:
        return None
    return session.scalar(
        sa.select(sa.func.max(Message.received_at)).where(
            Message.conversation_id == conversation.id, Message.direction == "inbound"
        )
    )


class Facts:
    """The answers for one recipient at a time, each read when asked."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._seen: dict[tuple[str, int], Conversation | None] = {}  # the checks ask twice
        self._opted: dict[tuple[int, str], OptOut | None] = {}  # SMS and WhatsApp ask of one number

    def may_write(self, user: User, about: Subject) -> bool:
        return access.may_write(self.session, user, about)

    def opt_out(self, organization_id: int, e164: str) -> OptOut | None:
        key = (organization_id, e164)
        if key not in self._opted:
            self._opted[key] = optouts.active(self.session, organization_id, e164)
        return self._opted[key]

    def conversation(self, about: Subject) -> Conversation | None:
        key = (about.kind, about.id)
        if key not in self._seen:
            self._seen[key] = conversations.for_subject(self.session, about)
        return self._seen[key]

    def heard_at(self, conversation: Conversation | None) -> datetime | None:
        return last_heard(self.session, conversation)


def _chunks(values: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


class Known(Facts):
    """The answers for a set of recipients of one organisation, read in a few statements per thousand."""

    def __init__(
        self,
        session: Session,
        writable: set[tuple[str, int]],
        opt_outs: dict[tuple[int, str], OptOut],
        found: dict[tuple[str, int], Conversation],
        heard: dict[int, datetime],
    ) -> None:
        super().__init__(session)
        self._writable, self._opt_outs, self._found, self._heard = writable, opt_outs, found, heard

    @classmethod
    def load(cls, session: Session, user: User, subjects: Iterable[Subject]) -> Known:
        people = list(subjects)
        apps = sorted({s.id for s in people if s.kind == "application"})
        members = sorted({s.id for s in people if s.kind == "membership"})
        writable: set[tuple[str, int]] = set()
        found: dict[tuple[str, int], Conversation] = {}
        for chunk in _chunks(apps):
            # The same rule as access.may_write, asked once for the chunk.
            writable.update(
                ("application", i)
                for i in session.scalars(
                    access.visible_applications(user)
                    .where(Application.id.in_(chunk))
                    .with_only_columns(Application.id)
                )
            )
            for c in session.scalars(sa.select(Conversation).where(Conversation.application_id.in_(chunk))):
                found[("application", c.application_id)] = c  # type: ignore[index]
        for chunk in _chunks(members):
            writable.update(
                ("membership", i)
                for i in session.scalars(
                    access.visible_memberships(user)
                    .where(CommunityMembership.id.in_(chunk))
                    .with_only_columns(CommunityMembership.id)
                )
            )
            for c in session.scalars(
                sa.select(Conversation).where(Conversation.community_membership_id.in_(chunk))
            ):
                found[("membership", c.community_membership_id)] = c  # type: ignore[index]
        heard: dict[int, datetime] = {}
        for chunk in _chunks(sorted(c.id for c in found.values())):
            for conversation_id, at in session.execute(
                sa.select(Message.conversation_id, sa.func.max(Message.received_at))
                .where(Message.conversation_id.in_(chunk), Message.direction == "inbound")
                .group_by(Message.conversation_id)
            ):
                if at is not None:
                    heard[conversation_id] = at
        opt_outs: dict[tuple[int, str], OptOut] = {}
        by_org: dict[int, set[str]] = {}
        for s in people:
            if s.contact.mobile:
                by_org.setdefault(s.contact.organization_id, set()).add(s.contact.mobile)
        for organization_id, numbers in by_org.items():
            for e164, row in optouts.active_among(session, organization_id, sorted(numbers)).items():
                opt_outs[(organization_id, e164)] = row
        return cls(session, writable, opt_outs, found, heard)

    def may_write(self, user: User, about: Subject) -> bool:
        return (about.kind, about.id) in self._writable

    def opt_out(self, organization_id: int, e164: str) -> OptOut | None:
        return self._opt_outs.get((organization_id, e164))

    def conversation(self, about: Subject) -> Conversation | None:
        return self._found.get((about.kind, about.id))

    def heard_at(self, conversation: Conversation | None) -> datetime | None:
        if conversation is None or conversation.id is None:
            return None
        return self._heard.get(conversation.id)
