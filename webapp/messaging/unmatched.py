"""Inbound messages no conversation claimed: listed for the organisation's admins, who assign them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from webapp.messaging import conversations, follow_ups, inbound, subjects
from webapp.messaging.subjects import Subject
from webapp.models import Application, Candidate, ConversationRead, Job, Message, User, utcnow
from webapp.refusals import Refused


class CannotAssign(Refused):
    """The message cannot go where it was asked to."""


def waiting(session: Session, organization_id: int, limit: int = 200) -> list[Message]:
    return list(
        session.scalars(
            sa.select(Message)
            .where(
                Message.organization_id == organization_id,
                Message.conversation_id.is_(None),
                Message.direction == "inbound",
            )
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )


def suggestions(session: Session, organization_id: int, senders: list[str]) -> dict[str, list[Application]]:
    """Per sender: the applications of this organisation's candidates with that mobile (one query)."""
    found: dict[str, list[Application]] = {s: [] for s in senders}
    if not senders:
        return found
    rows = session.scalars(
        sa.select(Application)
        .join(Application.candidate)
        .join(Application.job)
        .where(
            Candidate.organization_id == organization_id,
            Candidate.mobile.in_(set(senders)),
            Job.organization_id == organization_id,
        )
        .options(selectinload(Application.candidate), selectinload(Application.job))
        .order_by(Application.created_at.desc())
    )
    for application in rows:
        found[application.candidate.mobile].append(application)
    return found


def assign_to_application(
    session: Session, admin: User, message_id: int, application_id: int | None
) -> Message:
    """Assign to an application of the admin's organisation, named by its number (None: none chosen)."""
    if application_id is None:
        raise CannotAssign("Choose the application the message belongs to, or enter its number.")
    application = session.scalar(
        sa.select(Application)
        .join(Application.job)
        .where(Application.id == application_id, Job.organization_id == admin.organization_id)
    )
    if application is None:
        if waiting_message(session, admin, message_id) is None:
            raise CannotAssign("That message is no longer waiting to be assigned.")
        raise CannotAssign(f"There is no application {application_id} in your organisation.")
    return assign(session, admin, message_id, subjects.of_application(application))


def waiting_message(session: Session, admin: User, message_id: int) -> Message | None:
    return session.scalar(
        sa.select(Message).where(
            Message.id == message_id,
            Message.organization_id == admin.organization_id,
            Message.conversation_id.is_(None),
        )
    )


def assign(session: Session, admin: User, message_id: int, about: Subject) -> Message:
    """Put the message into the conversation about `about` (both must be the admin's organisation's)."""
    message = session.scalar(
        sa.select(Message)
        .where(
            Message.id == message_id,
            Message.organization_id == admin.organization_id,
            Message.conversation_id.is_(None),
        )
        .with_for_update()
    )
    if message is None:
        raise CannotAssign("That message is no longer waiting to be assigned.")
    if about.organization.id != admin.organization_id:
        raise CannotAssign("That conversation is not in your organisation.")
    conversation = conversations.for_subject(session, about, create=True)
    assert conversation is not None
    message.conversation_id = conversation.id
    # The thread says who put it there and from which number it came (it may not be the contact's).
    message.assigned_by_id = admin.id
    message.assigned_at = utcnow()
    # Their message stops the conversation's follow-ups, as a reply that found its way does (cancelled
    # before the conversation's row is written: webapp.messaging.follow_ups.replied).
    stopped = follow_ups.replied(session, conversation.id)
    inbound.joined(conversation, message)
    follow_ups.refund(session, stopped)
    # Read markers are message ids, and this message is older than what readers may have seen:
    # move their markers back so that it counts as unread for everyone.
    session.execute(
        sa.update(ConversationRead)
        .where(
            ConversationRead.conversation_id == conversation.id,
            ConversationRead.channel == message.channel,
            ConversationRead.last_read_message_id >= message.id,
        )
        .values(last_read_message_id=message.id - 1)
        .execution_options(synchronize_session=False)
    )
    return message
