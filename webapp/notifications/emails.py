"""Email notifications: a person wrote, and nobody it concerns has read it within the wait; or a
colleague @mentioned someone in a note, which they have not opened within the wait.

The clock's "notify-email" task calls `sweep` (webapp.scheduling.tasks). For each person and conversation
whose inbound messages — not yet read by that person, not yet named in an email to them — have waited
NOTIFY_WAIT_MINUTES since the first of them, the conversation's recipients are told. Each person gets one
email per sweep, whatever the count: every conversation that waits for them then, each with its replies
and its link (and the mentions below):

- its assignee; with no assignee, those who wrote in it; else the members of its hiring (sourcing) team
  (webapp.accounts.access.conversation_team_members: who may write in it as its team);
- each under their own choice (User.notify_email): at once, in an hourly digest, or off;
- only within their working hours on their clock (User.time_zone, else the organisation's): outside
  them the email waits, and the first sweep of their morning sends it.

A mention (webapp.messaging.notes) is emailed to the person mentioned, under the same choice and hours:
at once (in that sweep's one email), or in the hourly digest; not when they have opened the
conversation since (it is read) or may no longer see it. It is claimed by setting its `emailed_at` in a
conditional UPDATE before the email leaves.

Each email is claimed before it leaves: a Notification row, unique per person and first message, written
and committed first. Two clocks sweeping at once try to write the same row; one of them does, and only
that one sends. A crash between the claim and the send loses that email rather than sending it twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from webapp import zones
from webapp.accounts import access
from webapp.inbox import changes
from webapp.messaging import quiet_hours, reads, subjects
from webapp.models import (
    Conversation,
    ConversationRead,
    ConversationState,
    Message,
    NoteMention,
    Notification,
    User,
    utcnow,
)
from webapp.models.upsert import on_conflict
from webapp.providers.base import Outbound, ProviderError, Sender
from webapp.refusals import Refused

DEFAULT_WAIT = timedelta(minutes=10)
DIGEST_EVERY = timedelta(hours=1)
# Replies older than this are not emailed about: long enough to hold a Friday evening's reply to Monday
# morning, short enough that switching emails on (or the first sweep after an upgrade) does not send
# one for every conversation left unread for months.
HORIZON = timedelta(days=4)
SENDER_NAME = "Relay"
SHOWN_LINES = 5  # replies quoted in one conversation's part of an email; the rest are counted
NOTE_SHOWN = 600  # characters of a note quoted in a mention's email
_SALT = "relay-notifications-unsubscribe"
UNSUBSCRIBE_PATH = "/notifications/unsubscribe/"
SETTINGS_PATH = "/settings/notifications"

S = ConversationState
M = Message
N = Notification


@dataclass(frozen=True)
class Due:
    """Replies that wait for one person in one conversation."""

    user_id: int
    conversation_id: int
    first_id: int
    upto_id: int
    count: int
    first_at: datetime


@dataclass
class Swept:
    sent: int = 0  # emails handed to the mail server
    failed: int = 0
    held: int = 0  # people outside their hours, or whose digest is not due yet
    claimed_elsewhere: int = 0  # another clock claimed them first
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        # What the clock logs: only a pass that sent (or tried to). Someone held to their morning is held
        # every pass of the night, which is no news.
        if not (self.sent or self.failed):
            return ""
        parts = [f"{self.sent} notification email(s) sent"]
        if self.failed:
            parts.append(f"{self.failed} refused by the mail server")
        if self.held:
            parts.append(f"{self.held} person(s) held to their hours or digest")
        return ", ".join(parts)


# --- Who is told, and when ------------------------------------------------------------------------------


def due(session: Session, now: datetime, wait: timedelta = DEFAULT_WAIT) -> list[Due]:
    """Every person and conversation with inbound messages unread by them and not yet told, the first
    of them older than `wait`, among people who want email — before the recipients rule. Reads only
    the states with something unread (their partial index) and, in those conversations, the messages
    after what the person read and was told."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # The planner's cost for the per-row index ranges passes JIT's threshold, and compiling the
        # query took 50 of its 70 ms at 10,000 conversations; it runs in a few ms without.
        session.execute(sa.text("SET LOCAL jit = off"))
    statement = _due_statement(dialect)
    params = {"due_before": now - wait, "not_before": now - HORIZON}
    return [Due(*row) for row in session.execute(statement, params)]


@lru_cache(maxsize=2)
def _due_statement(dialect: str = "postgresql") -> sa.Select[Any]:
    """Built once. Per state with something unread: where to start reading its messages — after what the
    person was told, and after the least of their read markers on the conversation's channels — so that
    the messages are one index range (ix_message_conversation_id) from there, never the whole thread."""
    C = Conversation
    told = (
        sa.select(sa.func.max(N.upto_message_id))
        .where(N.user_id == S.user_id, N.conversation_id == S.conversation_id)
        .correlate(S)
        .scalar_subquery()
    )

    def marker(channel: Any) -> sa.ScalarSelect[Any]:
        return (
            sa.select(ConversationRead.last_read_message_id)
            .where(
                ConversationRead.user_id == S.user_id,
                ConversationRead.conversation_id == S.conversation_id,
                ConversationRead.channel == channel,
            )
            .correlate(S, M)
            .scalar_subquery()
        )

    # A channel the conversation does not have reads as "read to the end" (it has nothing to read).
    newest = sa.func.coalesce(C.last_message_id, 0)
    # SQLite's min() and max() of several arguments are PostgreSQL's least() and greatest().
    least, greatest = (sa.func.min, sa.func.max) if dialect == "sqlite" else (sa.func.least, sa.func.greatest)
    least_read = least(
        *(
            sa.case((getattr(C, f"has_{ch}").is_(True), sa.func.coalesce(marker(ch), 0)), else_=newest)
            for ch in reads.CHANNELS
        )
    )
    start = greatest(sa.func.coalesce(told, 0), least_read)
    pending = (
        sa.select(S.user_id, S.conversation_id, start.label("start"))
        .join(C, C.id == S.conversation_id)
        .join(User, User.id == S.user_id)
        .where(S.unread > 0, User.active.is_(True), User.notify_email != "off")
        .cte("pending")
    )
    unread_by_them = [
        M.direction == "inbound",
        # Past the person's marker of the message's own channel: unread by them.
        M.id > sa.func.coalesce(_marker_of(pending), 0),
        # Never for what the person wrote themselves (an inbound message has no author in Relay).
        sa.or_(M.author_id.is_(None), M.author_id != pending.c.user_id),
        # Not news any more: see HORIZON.
        M.created_at > sa.bindparam("not_before"),
    ]
    if dialect == "postgresql":
        # Each row's messages read from its start by the index (a LATERAL subquery per row; OFFSET 0
        # keeps PostgreSQL from merging it into a join): joined plainly, PostgreSQL hashed every inbound
        # message of the table instead.
        messages = (
            sa.select(M.id, M.created_at)
            .where(M.conversation_id == pending.c.conversation_id, M.id > pending.c.start, *unread_by_them)
            .offset(0)
            .lateral("unread")
        )
        rows = sa.select(
            pending.c.user_id,
            pending.c.conversation_id,
            sa.func.min(messages.c.id),
            sa.func.max(messages.c.id),
            sa.func.count(),
            sa.func.min(messages.c.created_at),
        ).select_from(pending.join(messages, sa.true()))
        at = messages.c.created_at
    else:
        rows = (
            sa.select(
                pending.c.user_id,
                pending.c.conversation_id,
                sa.func.min(M.id),
                sa.func.max(M.id),
                sa.func.count(),
                sa.func.min(M.created_at),
            )
            .select_from(pending)
            .join(M, sa.and_(M.conversation_id == pending.c.conversation_id, M.id > pending.c.start))
            .where(*unread_by_them)
        )
        at = M.created_at
    return rows.group_by(pending.c.user_id, pending.c.conversation_id).having(
        sa.func.min(at) <= sa.bindparam("due_before")
    )


def _marker_of(pending: Any) -> sa.ScalarSelect[Any]:
    return (
        sa.select(ConversationRead.last_read_message_id)
        .where(
            ConversationRead.user_id == pending.c.user_id,
            ConversationRead.conversation_id == pending.c.conversation_id,
            ConversationRead.channel == M.channel,
        )
        .correlate_except(ConversationRead)
        .scalar_subquery()
    )


def recipients(session: Session, conversation_ids: Iterable[int]) -> dict[int, set[int]]:
    """Who is told about each conversation: its assignee; else those who wrote in it; else its team."""
    wanted = sorted(set(conversation_ids))
    if not wanted:
        return {}
    found: dict[int, set[int]] = {}
    conversations = session.scalars(sa.select(Conversation).where(Conversation.id.in_(wanted))).all()
    writers: dict[int, set[int]] = defaultdict(set)
    for conversation_id, user_id in session.execute(
        sa.select(S.conversation_id, S.user_id).where(S.conversation_id.in_(wanted), S.wrote.is_(True))
    ):
        writers[conversation_id].add(user_id)
    for conversation in conversations:
        # Only those who may still see it: someone who wrote in it and has left its team since is
        # passed over, and the next rule answers.
        viewers = set(session.scalars(access.conversation_viewers(conversation)))
        assignee = {conversation.assignee_id} if conversation.assignee_id is not None else set()
        found[conversation.id] = (
            assignee & viewers
            or writers.get(conversation.id, set()) & viewers
            or set(access.conversation_team_members(session, conversation)) & viewers
        )
    return found


def zone_of(user: User) -> str:
    """The person's own zone, else their organisation's."""
    if user.time_zone and zones.is_known(user.time_zone):
        return user.time_zone
    return zones.name_of_reader(user)


def hours_of(user: User) -> quiet_hours.OrganizationHours:
    """The person's working hours and days, on their clock (the organisation's hours' shape, reused)."""
    return quiet_hours.OrganizationHours(
        user.work_from, user.work_until, quiet_hours.days_of(user.work_days), zone_of(user)
    )


def at_work(user: User, now: datetime) -> bool:
    """Whether `now` is within the person's working hours on their clock."""
    hours = hours_of(user)
    local = now.astimezone(zones.zone(hours.time_zone))
    window = hours.hours(local)
    return window is not None and window[0] <= local.time() < window[1]


def next_at_work(user: User, now: datetime) -> datetime | None:
    """When the person's next working hours begin (now, if they are at work): where a held email goes."""
    if at_work(user, now):
        return now
    hours = hours_of(user)
    tz = zones.zone(hours.time_zone)
    today = now.astimezone(tz).date()
    for offset in range(8):
        start = datetime.combine(today + timedelta(days=offset), hours.start, tzinfo=tz)
        if start > now and at_work(user, start):
            return start
    return None


# --- The sweep ----------------------------------------------------------------------------------------


def sweep(
    session: Session,
    now: datetime,
    sender: Sender,
    base_url: str,
    secret: str,
    wait: timedelta = DEFAULT_WAIT,
) -> Swept:
    """One pass: claim and send every email that is due at `now` (committing as it goes): one per person
    at most, the digest's shape whether they chose "at once" or the hourly digest."""
    swept = Swept()
    found = due(session, now, wait)
    mentioned = mentions_due(session, now, wait)
    if not found and not mentioned:
        session.rollback()
        return swept
    told = recipients(session, {d.conversation_id for d in found})
    by_user: dict[int, list[Due]] = defaultdict(list)
    for item in found:
        if item.user_id in told.get(item.conversation_id, set()):
            by_user[item.user_id].append(item)
    waiting = set(by_user) | set(mentioned)
    users = {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(sorted(waiting))))}
    session.commit()
    for user_id in sorted(waiting):
        user, items = users[user_id], by_user.get(user_id, [])
        if not at_work(user, now) or (user.notify_email == "hourly" and not _digest_due(session, user, now)):
            swept.held += 1
            continue
        claimed = _claim(session, user, items, now) if items else []
        swept.claimed_elsewhere += len(items) - len(claimed)
        notes = _claim_mentions(session, mentioned.get(user_id, []), now)
        # One email per person per sweep, at once as in the digest: everything this clock claimed for
        # them (seven conversations due in the same minute were seven emails).
        if claimed or notes:
            _send(session, sender, user, claimed, base_url, secret, swept, notes)
    return swept


@dataclass(frozen=True)
class Mentioned:
    """A note that mentions the person, not emailed yet."""

    mention_id: int
    conversation_id: int
    author: str
    body: str
    at: datetime


def mentions_due(
    session: Session, now: datetime, wait: timedelta = DEFAULT_WAIT
) -> dict[int, list[Mentioned]]:
    """Per person: the mentions made between HORIZON and `wait` ago, not emailed yet, of people who want
    email, still active, who have not read the conversation since (unread for them) and may still see it."""
    from webapp.messaging import notes

    found: dict[int, list[Mentioned]] = defaultdict(list)
    mentions = [m for m in notes.unnotified(session, now - HORIZON) if m.created_at <= now - wait]
    if not mentions:
        return found
    conversations = {m.event.conversation_id for m in mentions}
    unread = set(
        session.execute(
            sa.select(S.user_id, S.conversation_id).where(
                S.conversation_id.in_(sorted(conversations)), S.unread > 0
            )
        ).tuples()
    )
    viewers: dict[int, set[int]] = {}
    for mention in mentions:
        user, event = mention.user, mention.event
        if (
            not user.active
            or user.notify_email == "off"
            or user.id == event.author_id  # never for what they wrote themselves
            or (user.id, event.conversation_id) not in unread
        ):
            continue
        if event.conversation_id not in viewers:
            conversation = session.get(Conversation, event.conversation_id)
            assert conversation is not None
            viewers[event.conversation_id] = set(session.scalars(access.conversation_viewers(conversation)))
        if user.id in viewers[event.conversation_id]:
            author = event.author.name if event.author else "A colleague"
            found[user.id].append(
                Mentioned(mention.id, event.conversation_id, author, event.body or "", event.created_at)
            )
    return found


def _claim_mentions(session: Session, mentioned: list[Mentioned], now: datetime) -> list[Mentioned]:
    """Mark the mentions emailed, committed before the email leaves; those this caller marked (another
    clock may have marked some first)."""
    if not mentioned:
        return []
    taken = set(
        session.scalars(
            sa.update(NoteMention)
            .where(NoteMention.id.in_([m.mention_id for m in mentioned]), NoteMention.emailed_at.is_(None))
            .values(emailed_at=now)
            .returning(NoteMention.id)
            .execution_options(synchronize_session=False)
        )
    )
    session.commit()
    return [m for m in mentioned if m.mention_id in taken]


def _digest_due(session: Session, user: User, now: datetime) -> bool:
    """Claim this hour's digest for the person (a conditional UPDATE: one clock wins it)."""
    taken = session.execute(
        sa.update(User)
        .where(
            User.id == user.id,
            sa.or_(User.digest_sent_at.is_(None), User.digest_sent_at <= now - DIGEST_EVERY),
        )
        .values(digest_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return taken.rowcount == 1


def _claim(session: Session, user: User, items: list[Due], now: datetime) -> list[tuple[Due, int]]:
    """Write the Notification rows, committed (in one transaction) before anything is sent; those this
    caller wrote. In the order of their first message, so that two clocks claiming for the same person
    meet on the first row and never wait on each other crosswise."""
    claimed = []
    for item in sorted(items, key=lambda d: d.first_id):
        values = {
            "user_id": user.id,
            "conversation_id": item.conversation_id,
            "first_message_id": item.first_id,
            "upto_message_id": item.upto_id,
            "messages": item.count,
            "kind": user.notify_email,
            "created_at": now,
        }
        notification_id = session.scalar(_CLAIM, values)
        if notification_id is not None:
            claimed.append((item, notification_id))
    session.commit()
    return claimed


_CLAIM = on_conflict(
    sa.insert(N).values(
        {
            c: sa.bindparam(c)
            for c in (
                "user_id",
                "conversation_id",
                "first_message_id",
                "upto_message_id",
                "messages",
                "kind",
                "created_at",
            )
        }
    ),
    "ON CONFLICT (user_id, first_message_id) DO NOTHING",
).returning(N.id)


def _send(
    session: Session,
    sender: Sender,
    user: User,
    group: list[tuple[Due, int]],
    base_url: str,
    secret: str,
    swept: Swept,
    mentioned: list[Mentioned] | None = None,
) -> None:
    email = compose(session, user, [d for d, _ in group], base_url, secret, mentioned or [])
    error = None
    try:
        sender.send(email)
    except ProviderError as failure:
        error = f"{failure.title}: {failure.detail}" if failure.detail else failure.title
    ids = [notification_id for _, notification_id in group]
    if ids:
        session.execute(
            sa.update(N)
            .where(N.id.in_(ids))
            .values(sent_at=None if error else utcnow(), error=error and error[:300])
            .execution_options(synchronize_session=False)
        )
        session.commit()
    if error:
        swept.failed += 1
        swept.errors.append(error)
    else:
        swept.sent += 1


# --- The email ----------------------------------------------------------------------------------------


def compose(
    session: Session,
    user: User,
    items: list[Due],
    base_url: str,
    secret: str,
    mentioned: list[Mentioned] | None = None,
) -> Outbound:
    """One email to `user` about everything that waits for them at this sweep: the replies in `items`
    and the notes in `mentioned`, one part per conversation (the earliest waiting first), each with
    its link."""
    base = base_url.rstrip("/")
    notes = mentioned or []
    replies = {item.conversation_id: item for item in items}
    by_conversation: dict[int, list[Mentioned]] = defaultdict(list)
    for note in notes:
        by_conversation[note.conversation_id].append(note)
    since = {item.conversation_id: item.first_at for item in items}
    for note in notes:
        since[note.conversation_id] = min(note.at, since.get(note.conversation_id, note.at))
    order = sorted(since, key=lambda c: (since[c], c))
    parts, names = [], []
    for conversation_id in order:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        about = subjects.of_conversation(conversation)
        who = about.contact.full_name
        names.append(who)
        lines = []
        if conversation_id in replies:
            lines.append(_replies_part(session, replies[conversation_id], about))
        for note in by_conversation.get(conversation_id, []):
            text = note.body if len(note.body) <= NOTE_SHOWN else note.body[: NOTE_SHOWN - 1] + "…"
            quoted = "\n".join(f"  {line}" for line in text.splitlines())
            lines.append(f"{note.author} mentioned you in a note about {who} ({about.title}):\n\n{quoted}\n")
        parts.append("\n".join(lines) + f"\nOpen the conversation: {base}/inbox?c={conversation_id}\n")
    if len(order) > 1:
        subject = f"{len(order)} conversations wait for you on Relay: {_listed(names)}"
    else:
        # One conversation: who wrote, and/or who mentioned them.
        said = [f"{names[0]} wrote about {about.title}"] if items else []
        if len(notes) > 1:
            said.append(f"{len(notes)} notes mention you" + ("" if items else f" about {names[0]}"))
        elif notes:
            said.append(f"{notes[0].author} mentioned you" + ("" if items else f" about {names[0]}"))
        subject = ", and ".join(said)
    why = (
        "nobody read these replies within the wait"
        if not notes
        else "you were mentioned and had not opened the conversation within the wait"
        if not items
        else "of replies and mentions you had not read within the wait"
    )
    unsubscribe = base + UNSUBSCRIBE_PATH + unsubscribe_token(secret, user.id)
    body = (
        f"Hello {user.name},\n\n"
        + "\n".join(parts)
        + f"\nYou get this email because {why}. Choose how you are told (at once, an hourly digest, or "
        f"not at all) and your working hours: {base}{SETTINGS_PATH}\n"
        f"Stop these emails with one click: {unsubscribe}\n"
    )
    return Outbound(
        message_id=None,
        channel="email",
        to=user.email,
        sender=SENDER_NAME,
        body=body,
        subject=subject,
        # RFC 8058: a mail client may offer "Unsubscribe" and POST it without opening a page.
        headers=(
            ("List-Unsubscribe", f"<{unsubscribe}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    )


def _replies_part(session: Session, item: Due, about: subjects.Subject) -> str:
    """Who wrote, where, and the first line of each reply (the first SHOWN_LINES of them)."""
    where = ("the job " if about.kind == "application" else "the community ") + about.title
    lines = session.scalars(
        sa.select(M)
        .where(
            M.conversation_id == item.conversation_id,
            M.direction == "inbound",
            M.id.between(item.first_id, item.upto_id),
        )
        .order_by(M.id)
        .limit(SHOWN_LINES)
    ).all()
    quoted = "\n".join(f"  “{changes.preview(m)}”" for m in lines)
    more = item.count - len(lines)
    if more > 0:
        quoted += f"\n  … and {more} more"
    written = "a message" if item.count == 1 else f"{item.count} messages"
    return f"{about.contact.full_name} ({where}) wrote {written}, still unread:\n\n{quoted}\n"


def _listed(names: list[str], shown: int = 3) -> str:
    """Lena Müller, Jonas Weber and 2 more: a subject line stays short whatever the count."""
    names = list(dict.fromkeys(names))  # one person's two applications: named once
    if len(names) == 1:
        return names[0]
    if len(names) > shown:
        return ", ".join(names[:shown]) + f" and {len(names) - shown} more"
    return ", ".join(names[:-1]) + " and " + names[-1]


# --- Unsubscribe --------------------------------------------------------------------------------------


def unsubscribe_token(secret: str, user_id: int) -> str:
    """A signed token naming the person; it never expires (an old email's link still works)."""
    return URLSafeSerializer(secret, salt=_SALT).dumps({"u": user_id})


def user_of_token(session: Session, secret: str, token: str) -> User | None:
    """The person a token names; None when it is not one we signed (tampered, truncated)."""
    try:
        data = URLSafeSerializer(secret, salt=_SALT).loads(token)
    except BadSignature:
        return None
    user_id = data.get("u") if isinstance(data, dict) else None
    if not isinstance(user_id, int):
        return None
    return session.get(User, user_id)


def unsubscribe(session: Session, user: User) -> None:
    """No more notification emails for this person (they can choose again in their settings)."""
    user.notify_email = "off"
    session.commit()


# --- The person's own settings ------------------------------------------------------------------------


class SettingsRefused(Refused):
    """A notification setting that cannot be kept, with the field it is about."""


def save_settings(
    session: Session,
    user: User,
    mode: str,
    time_zone: str,
    work_from_text: str,
    work_until_text: str,
    work_days: Iterable[str],
) -> None:
    """Keep the person's choice (times as typed, "08:00"). SettingsRefused names the first field that is
    wrong, and carries the others' reasons with it (Refused.also): the form says them all at once."""
    from webapp.models import NOTIFY_CHOICES

    wrong: list[SettingsRefused] = []
    if mode not in NOTIFY_CHOICES:
        wrong.append(SettingsRefused("Choose how you want to be told.", "mode"))
    time_zone = time_zone.strip()
    if time_zone and not zones.is_known(time_zone):
        wrong.append(SettingsRefused("Choose a time zone from the list, like Europe/Berlin.", "time_zone"))
    work_from = _time(work_from_text, "work_from", wrong)
    work_until = _time(work_until_text, "work_until", wrong)
    if work_from is not None and work_until is not None and not work_from < work_until:
        wrong.append(SettingsRefused("Your working day must end after it starts.", "work_until"))
    days = "".join(sorted({d for d in work_days if d in "1234567"}))
    if not days:
        wrong.append(SettingsRefused("Tick at least one working day.", "work_days"))
    if wrong:
        first, *others = wrong
        raise SettingsRefused(first.message, first.field, also=others)
    assert work_from is not None and work_until is not None
    user.notify_email = mode
    user.time_zone = time_zone or None
    user.work_from, user.work_until, user.work_days = work_from, work_until, days


def _time(text: str, field: str, wrong: list[SettingsRefused]) -> time | None:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        wrong.append(SettingsRefused("Write a time like 08:00.", field))
        return None
