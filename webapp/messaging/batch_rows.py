"""A bulk message's row follows its message's verdict: when the provider refuses a message after it was
handed over (rejected, undeliverable), its batch row says "failed"; when a message thought refused is
confirmed after all, the row says "sent" again. So that the progress bar counts the batch's own rows (one
index range, webapp.messaging.bulk.progress) instead of looking up every row's message at each poll."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import object_session

from webapp.models import BatchRecipient, Message

# The provider's verdicts that make a batch's message "failed" in its progress and its report.
FAILED = frozenset({"rejected", "undeliverable"})


def follow(message: Message, failed: bool) -> None:
    """Write the verdict on the message's batch row, if it has one, in the message's transaction."""
    session = object_session(message)
    if session is None or message.id is None:
        return
    session.execute(
        sa.update(BatchRecipient)
        .where(
            BatchRecipient.message_id == message.id,
            BatchRecipient.outcome.in_(("sent", "scheduled") if failed else ("failed",)),
        )
        .values(outcome="failed" if failed else "sent")
    )
