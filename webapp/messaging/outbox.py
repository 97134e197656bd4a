"""Storing an outbound message: queued (or scheduled for later) and paid for, in the caller's
transaction.

Everything that sends — a user's message, the answer to HELP, invitations, and later bulk sends —
stores its message here, so that a message and its debit are never apart and the conversation always
knows its latest message. The caller commits, then hands a queued message's id to dispatch; a scheduled
one waits for the scheduler (webapp.messaging.scheduled), which joins it to the conversation's list
when it leaves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from webapp.billing import credits, pricing
from webapp.inbox import changes as activity
from webapp.messaging import conversations
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
    return _store(
        session,
        conversation,
        channel=channel,
        body=body,
        from_addr=from_addr,
        to_addr=to_addr,
        author_id=author_id,
        count=count,
        email_subject=email_subject,
        whatsapp_template_id=whatsapp_template_id,
        template_parameters=template_parameters,
        send_at=None,
    )


def schedule(
    session: Session,
    conversation: Conversation,
    *,
    send_at: datetime,
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
    """A message that leaves at `send_at` (UTC), paid for now as a queued one is (the same debit, in
    the caller's transaction), and given back if it is cancelled or held. It is in the thread from now
    on, but it joins the conversation's list (latest message, preview) only when it leaves: until then
    nothing was said to the person. Raises credits.InsufficientCredits as `queue` does."""
    return _store(
        session,
        conversation,
        channel=channel,
        body=body,
        from_addr=from_addr,
        to_addr=to_addr,
        author_id=author_id,
        count=count,
        email_subject=email_subject,
        whatsapp_template_id=whatsapp_template_id,
        template_parameters=template_parameters,
        send_at=send_at,
    )


def _store(
    session: Session,
    conversation: Conversation,
    *,
    channel: str,
    body: str,
    from_addr: str,
    to_addr: str,
    author_id: int | None,
    count: SegmentCount | None,
    email_subject: str | None,
    whatsapp_template_id: int | None,
    template_parameters: Sequence[str] | None,
    send_at: datetime | None,
) -> Message:
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
        status="queued" if send_at is None else "scheduled",
        send_at=send_at,
        from_addr=from_addr,
        to_addr=to_addr,
        encoding=count.encoding if count else None,
        segments=segments,
        credits=pricing.message_credits(channel, count, organization),
        created_at=now,
        updated_at=now,
        whatsapp_template_id=whatsapp_template_id,
        template_parameters=parameters,
    )
    session.add(message)
    session.flush()
    # The conversation's row before the credits, in a reply's order (conversations.lock): taken only
    # by the UPDATE of `activity.record` below, after the debit, a reply cancelling a follow-up could
    # hold it and wait for the credits this send holds.
    conversations.lock(session, conversation.id)
    try:
        credits.debit(session, organization, message)
    except credits.InsufficientCredits:
        session.delete(message)
        session.flush()
        raise
    if send_at is None:
        activity.record(session, conversation, message)
    else:
        activity.touch(session, conversation.id)  # the thread shows it; the list learns it when it leaves
    return message
