"""The way of one outbound message, up to the commit: checks → placeholders → segments →
sender number → credits + the queued Message (webapp.messaging.outbox). The caller commits, then hands
the id to dispatch. It works on a subject (an application or a community membership), never on an
`Application` itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from webapp import phones
from webapp.billing import credits, pricing
from webapp.messaging import (
    checks,
    conversations,
    lookalikes,
    outbox,
    placeholders,
    routing,
    templates,
    timing,
    whatsapp,
)
from webapp.messaging.checks import SendRefused
from webapp.messaging.facts import Facts
from webapp.messaging.segments import SegmentCount
from webapp.messaging.subjects import Subject
from webapp.models import (
    Conversation,
    Message,
    MessageTemplate,
    Organization,
    SendingNumber,
    User,
    WhatsappTemplate,
    utcnow,
)
from webapp.models.organization import family_above
from webapp.numbers import health


@dataclass(frozen=True)
class Preview:
    """What the composer's live counter shows for the text as the candidate will get it."""

    text: str
    characters: int
    encoding: str | None
    units: int
    segments: int
    per_segment: int
    credits: int
    ucs2_characters: tuple[str, ...]
    unknown_placeholders: list[str]
    # The SMS count itself, for its words (webapp.messaging.sms_words); None on other channels.
    sms: SegmentCount | None = None


def recipient_for(about: Subject, user: User, invite_link: str | None = None) -> placeholders.Recipient:
    """What the placeholders stand for; %INVITELINK% only in an invitation, which has a booking link."""
    return placeholders.Recipient(
        first_name=about.contact.first_name,
        last_name=about.contact.last_name,
        job_title=about.title,
        company=about.organization.display_sender,
        sender_name=user.name,
        invite_link=invite_link,
    )


def preview(
    about: Subject,
    user: User,
    channel: str,
    body: str,
    whatsapp_template: WhatsappTemplate | None = None,
    invite_link: str | None = None,
) -> Preview:
    """The text as the recipient will read it (an approved template's, when one is chosen) and its cost."""
    from webapp.messaging import segments

    recipient = recipient_for(about, user, invite_link)
    if channel == "whatsapp" and whatsapp_template is not None:
        text = whatsapp.render(whatsapp_template, recipient)[0]
    else:
        text = placeholders.render(body, recipient)
    org = about.organization
    if channel == "sms":
        c = segments.count(text)
        cost = pricing.credits_for("sms", c.segments, org)
        return Preview(
            text,
            c.characters,
            c.encoding,
            c.units,
            c.segments,
            c.per_segment,
            cost,
            c.ucs2_characters,
            placeholders.unknown(body),
            c,
        )
    # A WhatsApp message costs the organisation's price whatever its length: say so before any typing.
    cost = pricing.credits_for(channel, 1, org) if channel in ("whatsapp", "email") else 0
    return Preview(
        text,
        len(text),
        None,
        len(text),
        1 if text else 0,
        0,
        cost,
        (),
        placeholders.unknown(body),
    )


def plain_offer(
    about: Subject, user: User, body: str, invite_link: str | None = None
) -> lookalikes.Plain | None:
    """The offer of plain quotes and dashes for an SMS's text as typed, counted as the recipient would get
    it (placeholders filled in as by `preview`): None unless look-alikes alone make it UCS-2."""
    recipient = recipient_for(about, user, invite_link)
    return lookalikes.plain(body, about.organization, lambda text: placeholders.render(text, recipient))


def templates_for(
    session: Session, user: User, channels: Sequence[str], audience: str, kind: str = "general"
) -> list[MessageTemplate]:
    """The organisation's templates of one kind on the channels the user may use, written for these
    people (`audience`: "candidates" or "prospects", a subject's; templates for both are offered to
    both). The composer offers general ones: an interview invitation needs a booking link
    (%INVITELINK%), which only an invitation (webapp.interviews.invitations) has."""
    if user.organization_id is None or not channels:
        return []
    return list(
        session.scalars(
            sa.select(MessageTemplate)
            .where(
                MessageTemplate.organization_id == user.organization_id, MessageTemplate.channel.in_(channels)
            )
            .where(MessageTemplate.kind == kind, MessageTemplate.audience.in_(templates.offered_to(audience)))
            .order_by(MessageTemplate.channel, MessageTemplate.name)
        )
    )


def numbers_for(session: Session, org: Organization, channel: str) -> list[SendingNumber]:
    """The active numbers the organisation may send from on this channel: its own, then those its
    parents lend it (at any depth); least recently used first within, so that new conversations spread
    over the numbers of one country."""
    flag = SendingNumber.sms if channel == "sms" else SendingNumber.whatsapp
    owners = sa.select(family_above(org.id).c.id)
    return list(
        session.scalars(
            sa.select(SendingNumber)
            .where(
                SendingNumber.organization_id.in_(owners), SendingNumber.status == "active", flag.is_(True)
            )
            .order_by(
                (SendingNumber.organization_id != org.id),
                SendingNumber.last_used_at.asc().nulls_first(),
                SendingNumber.id,
            )
        )
    )


def sender_number(
    session: Session, conversation: Conversation, channel: str, recipient: str, now: datetime | None = None
) -> SendingNumber:
    """The conversation's number for this channel, or one chosen now by routing and then kept.

    A number paused for its health (webapp.numbers.health) stays the number of its conversations, so
    that replies thread; only new conversations are routed past it."""
    kept = conversation.number_for(channel)
    if kept is not None and kept.status == "active":
        return kept
    org = conversation.organization
    pool = numbers_for(session, org, channel)
    # Numbers another conversation already writes to this person from on this channel (a candidate who
    # is also a prospect): a different one, where the country has one, keeps their replies apart.
    taken = set(
        session.scalars(
            sa.select(Message.from_addr)
            .where(
                Message.to_addr == recipient,
                Message.channel == channel,
                Message.direction == "outbound",
                Message.conversation_id != conversation.id,
                Message.from_addr.in_([n.e164 for n in pool]),
            )
            .distinct()
        )
    )
    at = now or utcnow()
    try:
        number = routing.choose_number(
            pool,
            recipient,
            avoid=taken,
            load=lambda tier: health.load(session, tier, at),
            first=lambda n: n.organization_id == org.id,
        )
    except routing.AllPaused as paused:
        raise SendRefused(
            f"Every {paused.country} number of your organisation is paused for new conversations (over its "
            "daily guidance or failing too often); conversations it already has still send. Customer "
            "success has been told.",
            "channel",
        ) from None
    if number is None:
        label = "SMS" if channel == "sms" else "WhatsApp"
        raise SendRefused(
            f"Your organisation has no {label} sending number yet. Ask customer success.", "channel"
        )
    number.last_used_at = utcnow()
    if channel == "sms":
        conversation.sms_number = number
    else:
        conversation.whatsapp_number = number
    return number


def number_change(conversation: Conversation | None, channel: str, first_name: str) -> str | None:
    """What the composer says before Send when the conversation's number on this channel can no longer
    send (suspended or released), so that `sender_number` will pick another: never a silent switch. A
    number paused for its health keeps its conversations: nothing to say then."""
    kept = conversation.number_for(channel) if conversation is not None else None
    if kept is None or kept.status == "active":
        return None
    return (
        f"This conversation was on {phones.display(kept.e164)}, which is {kept.status_label.lower()}: "
        f"this message goes from another of your numbers, and {first_name}'s replies will come to that one."
    )


@dataclass(frozen=True)
class Planned:
    """A message that passed every check, as it will be stored: what `plan` answers."""

    channel: str
    text: str
    count: SegmentCount | None
    subject: str | None  # an email's, placeholders filled in
    when: timing.Timing  # send_at: when it leaves (None: now); moved: held to the person's hours
    template: WhatsappTemplate | None
    parameters: list[str] | None
    existing: Conversation | None  # the conversation as it was before this message

    @property
    def segments(self) -> int:
        return self.count.segments if self.count else (1 if self.channel == "whatsapp" else 0)


def plan(
    session: Session,
    user: User,
    about: Subject,
    channel: str,
    body: str,
    subject: str | None = None,
    whatsapp_template_id: int | None = None,
    invite_link: str | None = None,
    send_at: datetime | None = None,
    now: datetime | None = None,
    override_reason: str | None = None,
    move_picked: bool = False,
    facts: Facts | None = None,
) -> Planned:
    """Every check of one message, in order, and its text as the person will read it; stores nothing.
    `compose` stores what this answers; a bulk message's preview (webapp.messaging.bulk) shows it, with
    `facts` read for the whole batch at once. Raises SendRefused with a message for the user."""
    now = now or utcnow()
    facts = facts or Facts(session)
    if send_at is not None:
        send_at = checks.check_send_at(send_at, now)
    checks.check_sender(session, user, about, channel, facts)
    checks.check_recipient(session, about.contact, channel, facts)
    when = hours_for(session, about, channel, now, send_at, override_reason, move_picked, facts)
    recipient = recipient_for(about, user, invite_link)
    org = about.organization
    template, parameters = None, None
    existing = facts.conversation(about)
    if channel == "whatsapp":
        if whatsapp_template_id is not None:
            template = whatsapp.approved_template(session, org.id, whatsapp_template_id)
            if template is None:
                raise SendRefused("Choose one of your approved WhatsApp templates.", "whatsapp_template_id")
            body, parameters = whatsapp.render(template, recipient)
        checks.check_whatsapp_window(whatsapp.time_left(existing, now) is not None, template is not None)
        window_open_then(existing, when, template is not None, org)
    text = placeholders.render(body, recipient)
    rendered_subject = placeholders.render(subject, recipient) if subject is not None else None
    count = checks.check_body(channel, text, rendered_subject)
    return Planned(channel, text, count, rendered_subject, when, template, parameters, existing)


def compose(
    session: Session,
    user: User,
    about: Subject,
    channel: str,
    body: str,
    subject: str | None = None,
    whatsapp_template_id: int | None = None,
    invite_link: str | None = None,
    send_at: datetime | None = None,
    now: datetime | None = None,
    override_reason: str | None = None,
    move_picked: bool = False,
    facts: Facts | None = None,
) -> Message:
    """Store the message as queued and debit its credits, in the caller's transaction.

    `about` is what the conversation is about; `subject` is an email's subject line; `invite_link` what
    %INVITELINK% becomes (an interview invitation's booking link, webapp.interviews.invitations).
    `send_at` (aware; stored in UTC): store it as scheduled, to leave then (webapp.messaging.scheduled),
    paid for now all the same; `now` is the moment it is checked against (the clock, in tests).
    A text is held to the recipient's hours (webapp.messaging.timing): written at night for them it is
    scheduled for their next allowed moment; `override_reason` sets the organisation's hours aside;
    `move_picked` moves a picked `send_at` in their closed hours to the next allowed moment after it
    rather than refuse it. The checks are `plan`'s.
    Raises SendRefused with a message for the user; the caller rolls back and shows it.
    """
    planned = plan(
        session,
        user,
        about,
        channel,
        body,
        subject,
        whatsapp_template_id,
        invite_link,
        send_at,
        now,
        override_reason,
        move_picked,
        facts,
    )
    contact, org = about.contact, about.organization
    conversation = planned.existing or conversations.for_subject(session, about, create=True)
    assert conversation is not None
    if channel == "email":
        from_addr, to_addr = org.display_sender, contact.email or ""
    else:
        assert contact.mobile
        to_addr = contact.mobile
        from_addr = sender_number(session, conversation, channel, to_addr, now).e164
    send_at = planned.when.send_at
    try:
        store = outbox.queue if send_at is None else functools.partial(outbox.schedule, send_at=send_at)
        message = store(
            session,
            conversation,
            channel=channel,
            body=planned.text,
            from_addr=from_addr,
            to_addr=to_addr,
            author_id=user.id,
            count=planned.count,
            email_subject=planned.subject,
            whatsapp_template_id=planned.template.id if planned.template else None,
            template_parameters=planned.parameters,
        )
    except credits.InsufficientCredits as exc:
        raise SendRefused(str(exc), "body") from exc
    message.hours_override = planned.when.override_reason
    return message


def window_open_then(
    existing: Conversation | None, when: timing.Timing, using_template: bool, org: Organization
) -> None:
    """A WhatsApp free text that leaves later (picked, or moved out of the person's night) must leave
    while its 24-hour window is open; SendRefused beside Send later if not."""
    if when.send_at is None:
        return
    checks.check_whatsapp_window_at(
        existing.whatsapp_window_ends_at if existing else None,
        when.send_at,
        using_template,
        org.time_zone,
        moved=when.moved,
        overridable=bool(when.decision and when.decision.overridable),
    )


def hours_said(
    session: Session,
    about: Subject,
    channel: str,
    now: datetime,
    typed_send_at: str,
    zone: str,
    override_reason: str | None = None,
    using_template: bool = False,
) -> timing.Timing | SendRefused:
    """What `hours_for` will decide at Send, for the composer to say before it: the timing, or the
    refusal Send would meet (a time that is not one, past, or in the recipient's closed hours; WhatsApp
    free text that would leave after its window closed)."""
    try:
        at = (
            checks.check_send_at(timing.local_time(typed_send_at, zone), now)
            if typed_send_at.strip()
            else None
        )
        facts = Facts(session)
        when = hours_for(session, about, channel, now, at, override_reason, facts=facts)
        if channel == "whatsapp":
            window_open_then(facts.conversation(about), when, using_template, about.organization)
        return when
    except SendRefused as refused:
        return refused


def picked_said(typed_send_at: str, zone: str, now: datetime) -> datetime | SendRefused:
    """A time picked for several people (each of whom gets their own hours at Send): the moment, or the
    refusal Send would meet (not a time, or past)."""
    try:
        return checks.check_send_at(timing.local_time(typed_send_at, zone), now)
    except SendRefused as refused:
        return refused


def hours_for(
    session: Session,
    about: Subject,
    channel: str,
    now: datetime,
    send_at: datetime | None = None,
    override_reason: str | None = None,
    move_picked: bool = False,
    facts: Facts | None = None,
) -> timing.Timing:
    """When a message to this person on this channel leaves, under their quiet hours (QUIET_HOURS off:
    now, or at `send_at`). The counter asks it too, to say so before Send."""
    if not current_app.config.get("QUIET_HOURS", True) or channel not in timing.HELD_CHANNELS:
        return timing.Timing(send_at, None)
    facts = facts or Facts(session)
    existing = facts.conversation(about)
    return timing.when(
        about.organization,
        channel,
        about.contact.mobile,
        now,
        send_at=send_at,
        heard_at=facts.heard_at(existing),
        override_reason=override_reason,
        move_picked=move_picked,
        place_zone=timing.place_of(about),
    )
