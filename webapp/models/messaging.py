"""Conversations and their messages, templates, opt-outs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, postgresql_only, utcnow

if TYPE_CHECKING:
    from webapp.models.ats import Application
    from webapp.models.crm import CommunityMembership
    from webapp.models.numbers import SendingNumber
    from webapp.models.organization import Organization
    from webapp.models.user import User

MESSAGE_CHANNELS = ("email", "sms", "whatsapp")
CHANNEL_LABELS = {"email": "Email", "sms": "SMS", "whatsapp": "WhatsApp"}
# How a message moves; webapp.messaging.status owns the order in which statuses may follow each other.
MESSAGE_STATUSES = (
    "scheduled",
    "held",
    "cancelled",
    "queued",
    "sending",
    "unknown",
    "submitted",
    "sent",
    "delivered",
    "read",
    "rejected",
    "undeliverable",
    "received",
)


class Conversation(Base):
    """One per candidate-application (hiring team) or per prospect-community (sourcing team)."""

    __tablename__ = "conversation"
    __table_args__ = (
        sa.CheckConstraint(
            "(application_id IS NULL) <> (community_membership_id IS NULL)", name="exactly_one_subject"
        ),
        # The inbox: an organisation's conversations newest first, read in keyset pages (…, id) < cursor.
        sa.Index("ix_conversation_org_recent", "organization_id", "last_message_at", "id"),
        # The inbox's poll: whose row changed in an organisation since the change marker a page holds
        # (change_seq has no index: a status report, which moves only it, then updates the row in place).
        sa.Index("ix_conversation_org_listed", "organization_id", "list_seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"))
    application_id: Mapped[int | None] = mapped_column(sa.ForeignKey("application.id"), unique=True)
    community_membership_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("community_membership.id"), unique=True
    )
    # The sender number is kept per channel once chosen, so that replies thread.
    sms_number_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sending_number.id"))
    whatsapp_number_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sending_number.id"))
    whatsapp_window_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the inbox shows and filters on, kept by webapp.inbox.changes in the transaction that
    # adds a message, so that the list never reads the messages themselves. last_message_id is a plain
    # number, not a foreign key: message already points here, and a cycle would complicate every insert.
    last_message_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_direction: Mapped[str | None] = mapped_column(sa.String(10))
    last_channel: Mapped[str | None] = mapped_column(sa.String(10))
    last_author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    last_preview: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")
    has_email: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    has_sms: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    has_whatsapp: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The change marker: the value of the customer's ActivityClock at the last change (a message added,
    # a status moved). Pages that show the conversation compare it with the one they were drawn from.
    change_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # The same clock's value at the last change that the inbox's list shows in its row (a message added,
    # so its latest message, channels, unread, WhatsApp window): never moved by a status, which only the
    # thread shows. The list's poll compares with it, so a storm of status reports leaves it quiet.
    list_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # The one person of its hiring or sourcing team who answers it (None: nobody yet). *Mine* in the
    # Inbox, and who is told first when the person writes.
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"), index=True)

    organization: Mapped[Organization] = relationship()
    application: Mapped[Application | None] = relationship()
    community_membership: Mapped[CommunityMembership | None] = relationship()
    sms_number: Mapped[SendingNumber | None] = relationship(foreign_keys=[sms_number_id])
    whatsapp_number: Mapped[SendingNumber | None] = relationship(foreign_keys=[whatsapp_number_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.id")

    def number_for(self, channel: str) -> SendingNumber | None:
        return {"sms": self.sms_number, "whatsapp": self.whatsapp_number}.get(channel)


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        sa.Index("ix_message_conversation_channel", "conversation_id", "channel", "id"),
        # A thread of every channel interleaved: its newest page, in id order, without sorting the thread.
        sa.Index("ix_message_conversation_id", "conversation_id", "id"),
        # Inbound matching: the last message we sent to this number from that number on that channel.
        sa.Index("ix_message_route", "to_addr", "from_addr", "channel", "id"),
        # Number health: one number's messages of a day, an index range (the clock's rollup, and the
        # routing's count of today's messages since that rollup).
        sa.Index("ix_message_from_created", "from_addr", "created_at"),
        # The "Unmatched messages" list: inbound messages of an organisation not in any conversation.
        sa.Index("ix_message_unmatched", "organization_id", "conversation_id"),
        # The dispatcher's sweep: claims whose lease ran out, outcomes still unknown, queues left behind.
        sa.Index("ix_message_status_claimed", "status", "claimed_at"),
        # The scheduler's due query: scheduled messages whose time has come, an index range in time order.
        sa.Index("ix_message_status_send_at", "status", "send_at"),
        # A reply (or the application's close) cancels the conversation's pending follow-ups: a probe of
        # this small index on every inbound message, which finds nothing almost always.
        sa.Index(
            "ix_message_follow_up_pending",
            "conversation_id",
            postgresql_where=sa.text("status = 'scheduled' AND follow_up_of_id IS NOT NULL"),
            sqlite_where=sa.text("status = 'scheduled' AND follow_up_of_id IS NOT NULL"),
        ),
        # The inbox's search by message text (PostgreSQL): trigrams answer ILIKE '%words%' from the index.
        postgresql_only(
            sa.Index(
                "ix_message_body_trgm",
                "body",
                postgresql_using="gin",
                postgresql_ops={"body": "gin_trgm_ops"},
            )
        ),
        sa.CheckConstraint("channel IN ('email', 'sms', 'whatsapp')", name="channel_known"),
        sa.CheckConstraint("direction IN ('outbound', 'inbound')", name="direction_known"),
        sa.CheckConstraint("credits >= 0", name="credits_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for an inbound message that matched no conversation (yet): it waits in "Unmatched messages".
    conversation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("conversation.id"))
    # For unmatched inbound messages to one of our numbers: its organisation (None for an unknown number).
    organization_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organization.id"))
    channel: Mapped[str] = mapped_column(sa.String(10))
    direction: Mapped[str] = mapped_column(sa.String(10), default="outbound")
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    # The provider's message_uuid (or the email's Message-ID); unique so a repeated webhook finds one row.
    provider_id: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    from_addr: Mapped[str] = mapped_column(sa.String(254), default="")
    to_addr: Mapped[str] = mapped_column(sa.String(254), default="")
    encoding: Mapped[str | None] = mapped_column(sa.String(10))
    segments: Mapped[int] = mapped_column(default=0)
    credits: Mapped[int] = mapped_column(default=0)
    # HTTP tries made (each counted before it starts, so a try cut short by a crash is counted too).
    attempts: Mapped[int] = mapped_column(default=0)
    # When a dispatcher claimed the message or began its latest try: the start of its lease, and for an
    # unknown outcome the start of the wait for the provider's report.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a message written for later leaves (UTC): set while it is `scheduled`, kept afterwards.
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(sa.String(50))
    error_title: Mapped[str | None] = mapped_column(sa.String(300))
    error_detail: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the candidate sent it (the provider's timestamp), for inbound messages.
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    whatsapp_template_id: Mapped[int | None] = mapped_column(sa.ForeignKey("whatsapp_template.id"))
    template_parameters: Mapped[str | None] = mapped_column(sa.Text)  # JSON list, rendered for the recipient
    # An inbound message no conversation claimed, put into one by an administrator (Unmatched messages):
    # who did and when. Its from_addr stays the number it really came from.
    assigned_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The writer's reason to send outside the organisation's hours for texts (webapp.messaging.timing).
    hours_override: Mapped[str | None] = mapped_column(sa.String(200))
    # A follow-up: the message it follows, scheduled to leave N days after it unless the person replies
    # first or the application is closed (webapp.messaging.follow_ups).
    follow_up_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("message.id"))

    conversation: Mapped[Conversation | None] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    assigned_by: Mapped[User | None] = relationship(foreign_keys=[assigned_by_id])
    whatsapp_template: Mapped[WhatsappTemplate | None] = relationship()

    @property
    def channel_label(self) -> str:
        return CHANNEL_LABELS[self.channel]


TEMPLATE_KINDS = {"general": "General", "interview_invitation": "Interview invitation"}
# Who a template is written for: the composer of a candidate's conversation offers "candidates" and
# "both", a prospect's "prospects" and "both" (webapp.messaging.templates.offered_to).
TEMPLATE_AUDIENCES = {
    "both": "Candidates and prospects",
    "candidates": "Candidates",
    "prospects": "Prospects",
}
_AUDIENCE_KNOWN = "audience IN ('both', 'candidates', 'prospects')"


class MessageTemplate(Base):
    __tablename__ = "message_template"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "channel", "name"),
        sa.CheckConstraint("channel IN ('email', 'sms', 'whatsapp')", name="channel_known"),
        sa.CheckConstraint("kind IN ('general', 'interview_invitation')", name="kind_known"),
        sa.CheckConstraint(_AUDIENCE_KNOWN, name="audience_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(10))
    name: Mapped[str] = mapped_column(sa.String(200))
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    # An interview invitation goes with a booking link (%INVITELINK%); see webapp.messaging.templates.
    kind: Mapped[str] = mapped_column(sa.String(30), default="general", server_default="general")
    audience: Mapped[str] = mapped_column(sa.String(20), default="both", server_default="both")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, onupdate=utcnow)

    @property
    def kind_label(self) -> str:
        return TEMPLATE_KINDS[self.kind]

    @property
    def audience_label(self) -> str:
        return TEMPLATE_AUDIENCES[self.audience]


class WhatsappTemplate(Base):
    """A WhatsApp template approved by Meta: the only thing that may be sent outside the 24-hour window.

    `parameters` are our placeholders, one per {{n}} of the approved text, filled in per recipient.
    """

    __tablename__ = "whatsapp_template"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "name", "locale"),
        sa.CheckConstraint(_AUDIENCE_KNOWN, name="audience_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    locale: Mapped[str] = mapped_column(sa.String(20), default="en")
    body: Mapped[str] = mapped_column(sa.Text)  # the approved text, with {{1}} … for the parameters
    parameters: Mapped[str] = mapped_column(sa.String(500), default="")  # space-separated placeholders
    approved: Mapped[bool] = mapped_column(default=True)
    audience: Mapped[str] = mapped_column(sa.String(20), default="both", server_default="both")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def parameter_list(self) -> list[str]:
        return self.parameters.split()

    @property
    def audience_label(self) -> str:
        return TEMPLATE_AUDIENCES[self.audience]


class ConversationRead(Base):
    """How far one user has read one channel of one conversation (for unread counts)."""

    __tablename__ = "conversation_read"
    __table_args__ = (sa.UniqueConstraint("user_id", "conversation_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversation.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(10))
    last_read_message_id: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ConversationState(Base):
    """One user's side of one conversation, for the inbox: how many inbound messages they have not read,
    and whether they wrote in it (*Mine* is the assignee's since issue 21; who wrote is who is told of a
    reply when nobody is assigned). Kept by webapp.inbox.changes (an inbound message adds one for
    everyone who may see the conversation) and webapp.messaging.reads (reading recounts from the
    per-channel markers, which stay the truth), so that the list, its unread filter and the unread
    total never count messages."""

    __tablename__ = "conversation_state"
    __table_args__ = (
        # The user's own changes (reading, "mark unread") move their part of the inbox's change marker.
        sa.Index("ix_conversation_state_user_changed", "user_id", "changed_at"),
        # The unread total and the unread filter read only the rows that have something unread.
        sa.Index(
            "ix_conversation_state_user_unread",
            "user_id",
            "conversation_id",
            postgresql_where=sa.text("unread > 0"),
            sqlite_where=sa.text("unread > 0"),
        ),
        sa.CheckConstraint("unread >= 0", name="unread_not_negative"),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("conversation.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    unread: Mapped[int] = mapped_column(default=0, server_default="0")
    wrote: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """An email that told one person that replies wait in one conversation (webapp.notifications): the
    first and the last inbound message it named. Written, and committed, before the email leaves; the
    unique first message per person is the claim, so two clocks sweeping at once send it once."""

    __tablename__ = "notification"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "first_message_id"),
        # What was already told: the newest message named, per person and conversation.
        sa.Index("ix_notification_user_conversation", "user_id", "conversation_id", "upto_message_id"),
        sa.CheckConstraint("kind IN ('now', 'hourly')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversation.id", ondelete="CASCADE"))
    # Plain numbers, like Conversation.last_message_id: messages are never deleted alone.
    first_message_id: Mapped[int] = mapped_column(sa.BigInteger)
    upto_message_id: Mapped[int] = mapped_column(sa.BigInteger)
    messages: Mapped[int] = mapped_column(default=1)
    kind: Mapped[str] = mapped_column(sa.String(10), default="now")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(sa.String(300))


class ActivityClock(Base):
    """A counter per organisation that moves whenever one of its conversations (or one of its
    sub-organisations') changes: the organisation-wide half of the inbox's change marker.

    Every change of a customer takes the next value from the top organisation's row, under its row lock
    until the commit, and writes it into the rows of the organisation and the parents in between. So
    values become visible in the order they were taken: a page that has seen value n has seen every
    change numbered up to n, which a timestamp or a sequence (taken before a commit that may come
    late) would not guarantee.
    """

    __tablename__ = "activity_clock"

    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class OptOut(Base):
    """A number that asked not to be texted: for the whole organisation, all numbers, both channels."""

    __tablename__ = "opt_out"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "e164"),
        # Number health's rollup: the opt-outs of the last days.
        sa.Index("ix_opt_out_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"))
    e164: Mapped[str] = mapped_column(sa.String(16))
    # The STOP (or UNSUBSCRIBE…) that opted the number out; kept as the record of consent.
    source_message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("message.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the number opted back in (START, UNSTOP, YES); a new STOP clears it again.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("message.id"))


EVENT_KINDS = ("note", "assigned", "unassigned")


class ConversationEvent(Base):
    """What the team adds to a conversation's thread besides messages: an internal note, or a change of
    who it is assigned to. A table of its own, never the message table: no dispatch, export, count,
    search or "last message" query reads it, so a note can never reach the person or a provider.

    `assignee_id`: for "assigned", the person it was assigned to; for "unassigned", the one it was
    taken from. `body`: a note's text (plain text; links are made when it is shown)."""

    __tablename__ = "conversation_event"
    __table_args__ = (
        # The thread shows the events of the time its page of messages covers.
        sa.Index("ix_conversation_event_conversation_time", "conversation_id", "created_at", "id"),
        sa.CheckConstraint("kind IN ('note', 'assigned', 'unassigned')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Deleted with the conversation (its messages' way out too, should conversations ever be erased).
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversation.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(12))
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"))
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    body: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User] = relationship(foreign_keys=[author_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    mentions: Mapped[list[NoteMention]] = relationship(
        back_populates="event", cascade="all, delete-orphan", passive_deletes=True
    )


class NoteMention(Base):
    """Someone @mentioned in a note. `emailed_at` is for the mention's email (set by whoever sends it:
    webapp.messaging.notes.unnotified lists those not sent yet)."""

    __tablename__ = "note_mention"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "user_id"),
        # The email sweep: mentions not emailed yet, oldest first, without reading the emailed ones.
        sa.Index(
            "ix_note_mention_unnotified",
            "created_at",
            postgresql_where=sa.text("emailed_at IS NULL"),
            sqlite_where=sa.text("emailed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("conversation_event.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[ConversationEvent] = relationship(back_populates="mentions")
    user: Mapped[User] = relationship()
