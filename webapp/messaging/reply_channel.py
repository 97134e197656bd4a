"""Which channel a reply goes out on unless the user picks another, and why, in a few words.

The composer (the Inbox's pane, the application and prospect pages) preselects it under *Send as*, and
those pages open on its tab. The rule: the channel the person last wrote on; else the channel of the
conversation's last message; else SMS, WhatsApp, email in that order — but never one that cannot
reach them (opted out, no address, not switched on for the organisation, not a right of this user)
when another can. `choose` is the rule on plain values; `for_conversation` reads what it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.messaging import checks
from webapp.messaging.facts import Facts
from webapp.messaging.subjects import Subject
from webapp.models import CHANNEL_LABELS, Conversation, Message

# Without a history, texting first (the reason Relay exists), email last.
DEFAULT_ORDER = ("sms", "whatsapp", "email")
IN_WORDS = {"email": "email", "sms": "SMS", "whatsapp": "WhatsApp"}


@dataclass(frozen=True)
class ReplyChannel:
    channel: str
    reason: str  # "Replying by WhatsApp, where Grace wrote last."


def first_texting(channels: Sequence[str]) -> str:
    """The channel a form opens on when no conversation decides (several recipients, or nothing to
    write on): the first texting channel offered, else email."""
    return next((c for c in channels if c != "email"), "email")


def choose(
    offered: Sequence[str],
    blocked: Mapping[str, str],
    last_inbound: str | None,
    last_message: str | None,
    first_name: str,
    scheduled: str | None = None,
) -> ReplyChannel | None:
    """The channel to preselect among `offered` (the channels this user may write on here), or None
    when there is none.

    `blocked` says, in a few words, why a channel cannot reach the person ("Felix opted out of
    texts", "WhatsApp is not switched on for your organisation"); a channel not offered must be in it
    too when it may come from the history. `last_inbound` is the channel the person last wrote on,
    `last_message` the channel of the conversation's last message (either None when there is none),
    `scheduled` the channel of the latest message written for later that has not left yet: it counts
    after the last message, so that a conversation whose only message waits for the morning does not
    read as one nobody has written in.
    """
    if not offered:
        return None
    history = list(dict.fromkeys(c for c in (last_inbound, last_message, scheduled) if c))
    wanted = list(dict.fromkeys([*history, *(c for c in DEFAULT_ORDER if c in offered)]))
    usable = [c for c in wanted if c in offered and c not in blocked]
    if not usable:
        # Nothing reaches them: the channel they would be written on, whose line under the text says why
        # it cannot go.
        channel = next(c for c in wanted if c in offered)
        reasons = list(dict.fromkeys(blocked[c] for c in offered if c in blocked))
        return ReplyChannel(channel, f"No channel reaches {first_name}: {'; '.join(reasons)}.")
    channel = usable[0]
    words = IN_WORDS[channel]
    # What was wanted before it and cannot be used: the first of those is why this one was taken.
    passed_over = [c for c in wanted[: wanted.index(channel)] if c in blocked or c not in offered]
    if channel == last_inbound:
        reason = f"Replying by {words}, where {first_name} wrote last."
    elif passed_over:
        why = blocked.get(passed_over[0]) or f"you may not send {IN_WORDS[passed_over[0]]} here"
        reason = f"By {words}: {why}."
    elif channel == last_message:
        reason = f"Replying by {words}, the channel of the last message."
    elif channel == scheduled:
        reason = f"By {words}, like the message to {first_name} that waits for its time."
    else:
        reason = f"By {words}: nothing has been written to {first_name} yet."
    return ReplyChannel(channel, reason)


def for_conversation(
    session: Session, about: Subject, conversation: Conversation | None, offered: Sequence[str]
) -> ReplyChannel | None:
    """The rule applied to this conversation, for a user who may write on `offered`."""
    contact = about.contact
    org = about.organization
    blocked: dict[str, str] = {}
    facts = Facts(session)  # one opt-out lookup for both of the number's channels
    for channel in CHANNEL_LABELS:
        if channel not in org.channels:
            blocked[channel] = f"{IN_WORDS[channel]} is not switched on for your organisation"
        elif channel not in offered:
            blocked[channel] = f"you may not send {IN_WORDS[channel]} here"
        else:
            found = checks.unreachable(session, contact, channel, facts)
            if found is not None:
                blocked[channel] = found.short
    last_inbound, last_message, scheduled = None, None, None
    if conversation is not None:
        # What waits to leave is not in the conversation's list yet (it joins when it leaves).
        scheduled = session.scalar(
            sa.select(Message.channel)
            .where(Message.conversation_id == conversation.id, Message.status == "scheduled")
            .order_by(Message.id.desc())
            .limit(1)
        )
    if conversation is not None and conversation.last_message_id is not None:
        last_message = conversation.last_channel
        if conversation.last_direction == "inbound":
            last_inbound = last_message
        else:
            last_inbound = session.scalar(
                sa.select(Message.channel)
                .where(Message.conversation_id == conversation.id, Message.direction == "inbound")
                .order_by(Message.id.desc())
                .limit(1)
            )
    return choose(offered, blocked, last_inbound, last_message, contact.first_name, scheduled)
