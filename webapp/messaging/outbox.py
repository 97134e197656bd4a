"""Storing an outbound message: queued and paid for, in the caller's transaction.

Everything that sends — a user's message, the answer to HELP, and later invitations, bulk and
scheduled sends — stores its message here, so that a message and its debit are never apart and the
conversation always knows its latest message. The caller commits, then hands the id to dispatch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy.orm import Session

from webapp.billing import credits, pricing
from webapp.inbox import changes as activity
from webapp.messaging.segments import SegmentCount
from webapp.models import Conversation, Message, utcnow


def queue(
    session: Session,
    conversation: Conversation,
    *,
    channel: str,
    body: str,
    from_addr: str,
    to_addr: str,
    author_id: int | None,
    count: SegmentCount | None = None,
    email_subject: str | None = None,
    whatsapp_template_id: int | None = None,
    template_parameters: Sequence[str] | None = None,
) -> Message:
    """A queued message with its credits debited from the organisation's shared balance.

    `count` is the SMS's segment count (its price); WhatsApp and email are priced per message.
    Raises credits.InsufficientCredits, leaving nothing behind, when the balance does not cover it.
    """
    organization = conversation.organization
    segments = count.segments if count else (1 if channel == "whatsapp" else 0)
    now = utcnow()
    parameters = json.dumps(list(template_parameters)) if template_parameters is not None else None
    message = Message(
        conversation_id=conversation.id,
        channel=channel,
        direction="outbound",
        author_id=author_id,
        subject=email_subject if channel == "email" else None,
        body=body,
        status="queued",
        from_addr=from_addr,
        to_addr=to_addr,
        encoding=count.encoding if count else None,
        segments=segments,
        credits=pricing.credits_for(channel, count.segments if count else 1, organization),
        created_at=now,
        updated_at=now,
        whatsapp_template_id=whatsapp_template_id,
        template_parameters=parameters,
    )
    session.add(message)
    session.flush()
    try:
        credits.debit(session, organization, message)
    except credits.InsufficientCredits:
        session.delete(message)
        session.flush()
        raise
    activity.record(session, conversation, message)
    return message
