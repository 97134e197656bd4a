"""How a message's status moves: forward only, whatever order the updates arrive in.

queued → sending → (unknown →) submitted/sent → delivered → read; rejected and undeliverable are final.
A message written for later starts as `scheduled` and leaves it for `queued` when its time comes, or
ends `held` (the channel checks refused it at leaving) or `cancelled`; those moves are conditional
UPDATEs in webapp.messaging.scheduled, never a report's.
`unknown` is a send whose answer never came (a timeout, a 5xx): the provider may have it, so it waits for
the provider's report instead of being sent again. The status webhooks and the simulator all call
`apply_status`, so they cannot disagree.

One exception to "final": a message given up as `unconfirmed` (no report came while we waited) that the
provider later reports as sent or delivered takes that status, because it is what the candidate got.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.database import one_statement
from webapp.inbox import changes as activity
from webapp.messaging import batch_rows
from webapp.models import Message, utcnow

RANK = {
    "scheduled": -1,
    "queued": 0,
    "sending": 1,
    "unknown": 2,
    "submitted": 3,
    "sent": 3,
    "delivered": 4,
    "read": 5,
}
FINAL = frozenset({"rejected", "undeliverable", "held", "cancelled"})
PENDING = frozenset({"queued", "sending", "unknown", "submitted"})
# The error code of a message given up after its outcome stayed unknown (see dispatch.recover).
UNCONFIRMED = "unconfirmed"
LABELS = {
    "scheduled": "Scheduled",
    "held": "Held",
    "cancelled": "Cancelled",
    "queued": "Queued",
    "sending": "Sending",
    "unknown": "Checking with the network…",
    "submitted": "Sent to the network",
    "sent": "Sent",
    "delivered": "Delivered",
    "read": "Read",
    "rejected": "Not sent",
    "undeliverable": "Undeliverable",
    "received": "Received",
}


@dataclass(frozen=True)
class Failure:
    code: str | None
    title: str
    detail: str = ""


def may_follow(current: str, new: str, error_code: str | None = None) -> bool:
    if current == "rejected" and error_code == UNCONFIRMED:
        # We gave up waiting, not the network: a later report of it going out is the truth.
        return RANK.get(new, -1) >= RANK["submitted"]
    if current in FINAL or current == new:
        return False
    if new in FINAL:
        # A delivered or read message cannot fail any more; a late failure report is ignored.
        return RANK.get(current, 0) < RANK["delivered"]
    return RANK.get(new, -1) > RANK.get(current, -1)


def apply(message: Message, new: str, at: datetime | None = None, failure: Failure | None = None) -> bool:
    """Move the message to `new` if that is forward; keep the time of each status. True if it moved.

    A report that arrives late (delivered after read) does not move the status back, but its time is
    still kept where none is yet.
    """
    at = at or utcnow()
    if not may_follow(message.status, new, message.error_code):
        if message.status not in FINAL and new not in FINAL:
            _stamp(message, new, at)
        return False
    if message.status in ("unknown", "rejected") and new not in FINAL:
        # An unknown outcome settled, or an unconfirmed message confirmed after all: no error any more.
        message.failed_at = message.error_code = message.error_title = message.error_detail = None
    if (message.status in batch_rows.FAILED) != (new in batch_rows.FAILED):
        batch_rows.follow(message, failed=new in batch_rows.FAILED)
    message.status = new
    _stamp(message, new, at)
    if new in FINAL:
        message.failed_at = at
        if failure is not None:
            message.error_code = failure.code
            message.error_title = failure.title[:300]
            message.error_detail = failure.detail
    activity.touch_message(message)  # pages showing the conversation learn it from its change marker
    return True


def _stamp(message: Message, new: str, at: datetime) -> None:
    if new in ("submitted", "sent"):
        message.submitted_at = message.submitted_at or at
    elif new == "delivered":
        message.delivered_at = message.delivered_at or at
    elif new == "read":
        message.read_at = message.read_at or at


def accepted(
    session: Session, message_id: int, attempts: int, provider_id: str, new: str, alone: bool = False
) -> bool:
    """sending → `new` (submitted, or sent for an email) with the provider's id, in one statement, if the
    message is still sending under this try (`attempts`) and no report came before (no provider id yet):
    the usual end of a send. False otherwise: the caller reads the row under its lock and `apply`s.

    `alone`: the caller has no transaction begun and the conversation's organisation no parent (no
    family's clocks to move). On PostgreSQL the same statement then moves the conversation's marker and
    commits: one round trip for the send's end. Otherwise the marker moves at the caller's commit, as
    for any change."""
    assert may_follow("sending", new) and new in ("submitted", "sent")
    params = {
        "message_id": message_id,
        "this_try": attempts,
        "their_id": provider_id,
        "new_status": new,
        "now": utcnow(),
    }
    if alone and one_statement(session):
        moved = session.execute(_ACCEPTED_AND_MARKED, params).first()
        session.commit()  # sends nothing: the statement was its own transaction
        if moved is None:
            return False
        activity.shown(session, moved.conversation_id, moved.change_seq)
        return True
    moved = session.execute(_ACCEPTED, params).first()
    if moved is None:
        return False
    activity.touch(session, moved.conversation_id)  # pages showing the conversation learn it (as apply)
    return True


# Built once, with bound parameters, past the ORM (no object is kept in step): every send ends with it.
_ACCEPT = (
    "UPDATE message SET status = :new_status, provider_id = :their_id,"
    " submitted_at = coalesce(submitted_at, :now), updated_at = :now"
    " WHERE id = :message_id AND status = 'sending' AND attempts = :this_try AND provider_id IS NULL"
    " RETURNING conversation_id"
)
_NOW = sa.bindparam("now", type_=Message.__table__.c.updated_at.type)
_ACCEPTED = sa.text(_ACCEPT).bindparams(_NOW)
_ACCEPTED_AND_MARKED = sa.text(activity.marked_with(_ACCEPT)).bindparams(_NOW)


def apply_status(
    session: Session, provider_id: str, new: str, at: datetime | None = None, failure: Failure | None = None
) -> Message | None:
    """A status report from the provider, by its id for the message; locks the row while deciding."""
    message = session.scalar(sa.select(Message).where(Message.provider_id == provider_id).with_for_update())
    if message is None:
        return None
    apply(message, new, at, failure)
    return message


ERROR_WORDS = {
    "1340": "Outside the 24-hour window: until the candidate writes again, WhatsApp allows only an "
    "approved template.",
}


def unconfirmed(waited_seconds: float) -> Failure:
    minutes = max(1, round(waited_seconds / 60))
    return Failure(
        UNCONFIRMED,
        "Not confirmed by the network",
        f"The provider never confirmed this message, and sent no report within {minutes} minute"
        f"{'s' if minutes != 1 else ''}. It may not have arrived; send it again if it matters.",
    )


def explain(message: Message) -> str:
    """The failure in words for the people who sent it."""
    words = ERROR_WORDS.get(message.error_code or "")
    if words:
        return words
    parts = [p for p in (message.error_title, message.error_detail) if p]
    text = ": ".join(parts) if parts else "The provider did not say why"
    ours = message.error_code == UNCONFIRMED  # our own code, not the provider's: nothing to quote
    return (
        f"{text} (code {message.error_code})"
        if message.error_code and not ours and message.error_code not in text
        else text
    )


def receive_report(
    session: Session,
    provider_id: str,
    new: str,
    at: datetime | None = None,
    failure: Failure | None = None,
    client_ref: str | None = None,
) -> Message | None:
    """A delivery receipt from the provider. Finds the message by its id with the provider, or by our
    id in client_ref when the receipt overtook the dispatcher storing that id; refunds a rejection."""
    message = session.scalar(
        sa.select(Message)
        .where(Message.provider_id == provider_id, Message.direction == "outbound")
        .with_for_update()
    )
    if message is None and client_ref is not None:
        if session.scalar(sa.select(Message.id).where(Message.provider_id == provider_id)) is not None:
            return None  # that id belongs to another (inbound) message: not a receipt of ours
        message = session.scalar(
            sa.select(Message)
            .where(Message.id == int(client_ref), Message.direction == "outbound")
            .with_for_update()
        )
        if message is None or (message.provider_id not in (None, provider_id)):
            return None
        message.provider_id = provider_id
    if message is None:
        return None
    moved = apply(message, new, at, failure)
    if moved and new == "rejected" and message.conversation is not None:
        from webapp.billing import credits

        credits.refund(session, message.conversation.organization, message, "Rejected by the network")
    return message
