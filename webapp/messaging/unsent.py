"""A scheduled message taken back before it left: moved out of `scheduled` by the one conditional UPDATE
every such move is (`move_out`), and, when it is withdrawn (`withdraw`: a person's Cancel in
webapp.messaging.scheduled, an invitation replaced by a newer one in webapp.interviews.invitations), its
credits and its pending follow-ups' given back with it.

Apart from webapp.messaging.scheduled so that the interviews package, which withdraws an invitation's
message, and the scheduler, which follows an edited invitation's link, do not import each other.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from webapp.billing import credits
from webapp.inbox import changes as activity
from webapp.messaging import follow_ups
from webapp.models import Message

# The error code of a scheduled invitation cancelled before it left because a newer invitation replaced
# it (webapp.interviews.invitations.invite): its link would book nothing.
REPLACED = "replaced"


def withdraw(
    session: Session, message: Message, now: datetime, *, title: str, note: str, code: str | None = None
) -> bool:
    """Cancel a scheduled message and give its credits back, in the caller's transaction, whoever asks
    (a person's Cancel, an invitation replaced by a newer one): the one conditional UPDATE out of
    `scheduled`. Its pending follow-ups are cancelled and refunded with it: nobody follows up on a
    message that never left. False, and nothing changed, when it is not scheduled any more (it left
    meanwhile).

    The rows in the order a reply takes them (its follow-ups, its conversation, then the credits): the
    message, its follow-ups, its conversation (credits.refund locks it), then the credits, so that a
    cancel and a reply never wait for each other."""
    if not move_out(session, message, "cancelled", now, title=title, code=code):
        return False
    stopped = follow_ups.followed_cancelled(session, message.id, now)
    credits.refund(session, _organization(message), message, note[: credits.NOTE_LENGTH])
    follow_ups.refund(session, stopped)
    return True


def move_out(
    session: Session, message: Message, new: str, now: datetime, *, title: str, code: str | None = None
) -> bool:
    """scheduled → `new` (a final status) if it is still scheduled: one conditional UPDATE. True if this
    caller moved it (the row stays locked until the caller's commit)."""
    moved = session.execute(
        sa.update(Message)
        .where(Message.id == message.id, Message.status == "scheduled")
        .values(status=new, failed_at=now, updated_at=now, error_code=code, error_title=title[:300])
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is None:
        return False
    for name, value in (
        ("status", new),
        ("failed_at", now),
        ("error_code", code),
        ("error_title", title[:300]),
    ):
        set_committed_value(message, name, value)
    activity.touch(session, message.conversation_id)
    return True


def _organization(message: Message):  # type: ignore[no-untyped-def]
    assert message.conversation is not None
    return message.conversation.organization
