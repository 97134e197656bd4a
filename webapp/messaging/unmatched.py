"""Inbound messages no conversation claimed: listed for the organisation's admins, who assign them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.messaging import conversations, inbound
from webapp.models import Application, Candidate, Job, Message, User


class CannotAssign(Exception):
    pass


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


def suggestions(session: Session, organization_id: int, sender: str) -> list[Application]:
    """The applications of candidates of this organisation whose mobile is the sender's number."""
    return list(
        session.scalars(
            sa.select(Application)
            .join(Application.candidate)
            .join(Application.job)
            .where(
                Candidate.organization_id == organization_id,
                Candidate.mobile == sender,
                Job.organization_id == organization_id,
            )
            .order_by(Application.created_at.desc())
        )
    )


def assign(session: Session, admin: User, message_id: int, application_id: int) -> Message:
    """Put the message into the application's conversation (both must be the admin's organisation's)."""
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
    application = session.scalar(
        sa.select(Application)
        .join(Application.job)
        .where(Application.id == application_id, Job.organization_id == admin.organization_id)
    )
    if application is None:
        raise CannotAssign(f"There is no application {application_id} in your organisation.")
    conversation = conversations.for_application(session, application, create=True)
    assert conversation is not None
    message.conversation_id = conversation.id
    inbound.joined(conversation, message)
    return message
