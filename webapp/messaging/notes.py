"""Internal notes and @mentions: what the team writes to itself in a conversation's thread.

A note is a ConversationEvent (kind "note"), never a Message: nothing that sends, counts, searches or
exports messages reads it, and it is not the conversation's latest message. Plain text; the thread
makes its links. `@Name` mentions someone who may see the conversation (access.conversation_viewers):
the conversation is then unread for them (their Inbox and its count), and the mention waits in
`unnotified` for its email. Mentioning someone of the customer who may not see it is refused, with
their name, rather than dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from webapp.accounts import access
from webapp.inbox import changes
from webapp.messaging import reads, subjects
from webapp.messaging.assignment import writer_refusal
from webapp.models import Conversation, ConversationEvent, NoteMention, User
from webapp.models.organization import family_below, top_id
from webapp.refusals import Refused

MAX_NOTE_CHARACTERS = 5000
# An @ that starts a mention: at the start of the text or of a word (not the one in an email address).
_AT = re.compile(r"(?:^|(?<=[\s(\[{,;:'\"]))@", re.MULTILINE)


class NoteRefused(Refused):
    """Why this note may not be added."""


def mentionable(session: Session, conversation: Conversation) -> list[User]:
    """Who may be mentioned in the conversation's notes: the active people who may see it, by name."""
    viewers = access.conversation_viewers(conversation).subquery()
    return list(
        session.scalars(
            sa.select(User)
            .where(User.id.in_(sa.select(viewers.c[0])), User.active.is_(True))
            .order_by(User.name, User.id)
        )
    )


@dataclass(frozen=True)
class Mentions:
    people: list[User]  # who may see the conversation
    refused: list[User]  # who may not


def mentions_in(session: Session, conversation: Conversation, text: str) -> Mentions:
    """The people `@Name` names in the text: at each @ that starts a word, the longest name of the
    customer's active people that follows it (case aside) and ends there. An @ naming nobody of the
    customer is plain text ("@home", an address)."""
    starts = [m.end() for m in _AT.finditer(text)]
    if not starts:
        return Mentions([], [])
    family = family_below(top_id(conversation.organization_id))  # type: ignore[arg-type]
    people = list(
        session.scalars(
            sa.select(User).where(User.organization_id.in_(sa.select(family.c.id)), User.active.is_(True))
        )
    )
    by_length = sorted(people, key=lambda u: len(u.name), reverse=True)
    named: dict[int, User] = {}
    lowered = text.lower()
    for start in starts:
        for person in by_length:
            name = person.name.lower()
            end = start + len(name)
            if name and lowered.startswith(name, start) and (end == len(text) or not text[end].isalnum()):
                named.setdefault(person.id, person)
                break
    if not named:
        return Mentions([], [])
    viewers = access.conversation_viewers(conversation).subquery()
    seeing = set(session.scalars(sa.select(viewers.c[0]).where(viewers.c[0].in_(list(named)))))
    return Mentions(
        [p for p in named.values() if p.id in seeing], [p for p in named.values() if p.id not in seeing]
    )


def add_note(
    session: Session, by_user: User, conversation: Conversation, text: str, now: datetime
) -> ConversationEvent:
    """A note by `by_user` at `now`, with its mentions; the caller commits. Refused (NoteRefused) for
    someone who may not write in the conversation, an empty or too long text, or a mention of someone
    who cannot see the conversation."""
    about = subjects.of_conversation(conversation)
    refusal = writer_refusal(session, by_user, about)
    if refusal:
        raise NoteRefused(refusal)
    body = text.strip()
    if not body:
        raise NoteRefused("Write the note first.", "note")
    if len(body) > MAX_NOTE_CHARACTERS:
        raise NoteRefused(f"A note holds at most {MAX_NOTE_CHARACTERS:,} characters.", "note")
    found = mentions_in(session, conversation, body)
    if found.refused:
        names = " and ".join(p.name for p in found.refused)
        raise NoteRefused(
            f"{names} cannot see this conversation, so the note cannot mention them: mention someone of "
            f"the {about.team} or an administrator.",
            "note",
        )
    # The conversation's row first, then the people's (their unread state): the order every writer
    # takes them in (webapp.inbox.changes.record), so that two never wait on each other.
    session.execute(
        sa.select(Conversation.id)
        .where(Conversation.id == conversation.id)
        .with_for_update(of=Conversation, key_share=True)
    )
    event = ConversationEvent(
        conversation_id=conversation.id, kind="note", author_id=by_user.id, body=body, created_at=now
    )
    event.mentions = [NoteMention(user_id=p.id, created_at=now) for p in found.people]
    session.add(event)
    session.flush()
    for person in sorted(found.people, key=lambda p: p.id):
        if person.id != by_user.id:
            # Waiting for them in the app: the conversation is unread for them until they open it.
            reads.mark_unread(session, person.id, conversation.id)
    changes.touch(session, conversation.id)
    return event


def unnotified(session: Session, since: datetime) -> list[NoteMention]:
    """Mentions made since `since` whose email has not gone yet, oldest first, with their note, its
    conversation and the person: for the mention emails (mark them with `mark_emailed`)."""
    return list(
        session.scalars(
            sa.select(NoteMention)
            .where(NoteMention.emailed_at.is_(None), NoteMention.created_at >= since)
            .order_by(NoteMention.created_at, NoteMention.id)
            .options(
                joinedload(NoteMention.user),
                joinedload(NoteMention.event).joinedload(ConversationEvent.author),
            )
        )
    )


def mark_emailed(session: Session, mention_ids: list[int], at: datetime) -> int:
    """The mentions' emails went at `at` (once: a mention marked already stays as it was)."""
    if not mention_ids:
        return 0
    done = session.execute(
        sa.update(NoteMention)
        .where(NoteMention.id.in_(mention_ids), NoteMention.emailed_at.is_(None))
        .values(emailed_at=at)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount


# --- The thread: notes and assignment lines among the messages -----------------------------------------

# At most this many events on one page of the thread (a conversation with no messages shows all of its
# events on its one page).
MAX_EVENTS = 500


def for_page(
    session: Session,
    conversation: Conversation,
    first_at: datetime | None,
    until: datetime | None,
) -> list[ConversationEvent]:
    """The events of the time a page of messages covers: from its first message's time (`first_at`;
    None: the page starts the thread) to before `until` (the first message after the page; None: the
    newest page, which shows every event since), oldest first."""
    query = sa.select(ConversationEvent).where(ConversationEvent.conversation_id == conversation.id)
    if first_at is not None:
        query = query.where(ConversationEvent.created_at >= first_at)
    if until is not None:
        query = query.where(ConversationEvent.created_at < until)
    query = query.order_by(ConversationEvent.created_at.desc(), ConversationEvent.id.desc()).limit(MAX_EVENTS)
    found = list(
        session.scalars(
            query.options(joinedload(ConversationEvent.author), joinedload(ConversationEvent.assignee))
        )
    )
    return list(reversed(found))
