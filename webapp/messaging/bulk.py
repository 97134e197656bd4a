"""Bulk messages (issue 22 §1): one text to many people, each message in that person's own conversation
through webapp.messaging.compose, so that every rule of a single message holds for each of them.

- `recipients` finds the people among those the user may see (webapp.accounts.access): an id the
  user may not see is dropped, never sent to.
- `preview` runs compose's own checks (`compose.plan`) for every recipient, with what they read from
  the database read once for the batch (webapp.messaging.facts.Known): per recipient the channel's
  refusal (no mobile, opted out, WhatsApp outside the window without an approved template…) or the
  text as they read it with its segments and credits; and in total the credits, how many wait for their
  morning under quiet hours, what plain quotes would save (webapp.messaging.lookalikes.savings).
- `draft` stores that preview as a batch in state "draft", a row per recipient with their line: the
  preview page pages and searches the rows, and `send` turns the draft into a running batch (refused
  when the balance no longer covers it or it is over the organisation's cap) without checking anyone
  again: the run does, as each message is composed.
- `run` composes the recipients a chunk at a time: the chunk's rows are claimed by a conditional UPDATE,
  each recipient is composed in a savepoint of its own (a refusal or a failure is theirs only), and the
  chunk commits at once, the messages handed to dispatch after the commit. A worker killed mid-chunk
  leaves the whole chunk unclaimed for the next run; two runs never send to one person twice. A worker
  holds the batch's lease while it runs; the clock (webapp.scheduling.tasks) runs a running batch
  whose lease ran out (its worker died), and deletes drafts nobody sent.
- `cancel` marks every recipient not composed yet as cancelled; what was stored stays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session, selectinload

from webapp import phones
from webapp.accounts import access
from webapp.billing import credits, pricing
from webapp.messaging import (
    batch_rows,
    checks,
    compose,
    conversations,
    dispatch,
    lookalikes,
    placeholders,
    routing,
    timing,
    whatsapp,
)
from webapp.messaging.checks import SendRefused
from webapp.messaging.facts import Known
from webapp.messaging.subjects import Kind, Subject, of_application, of_membership
from webapp.models import (
    Application,
    Batch,
    BatchRecipient,
    CommunityMembership,
    Message,
    MessageTemplate,
    Organization,
    User,
    utcnow,
)
from webapp.numbers import health

log = logging.getLogger("relay.bulk")
# What a recipient whose send failed for a reason no check foresaw is told in the report.
UNEXPECTED = "Could not be sent: an unexpected error."
CANCELLED = "Cancelled before it was sent."
OUTCOMES = ("sent", "scheduled", "refused", "failed", "cancelled")
# Recipients composed in one transaction: fewer commits, and a killed worker loses at most a chunk's
# work (none of it sent: nothing is handed to dispatch before the commit).
CHUNK = 20
# How long a worker holds a batch without renewing (it renews every chunk).
LEASE = timedelta(minutes=2)
# A draft nobody sent is deleted after this.
DRAFT_KEPT = timedelta(days=1)


class BulkRefused(SendRefused):
    """Why the whole batch may not start (nothing is stored)."""


# --- Who ----------------------------------------------------------------------------------------------


def recipients(session: Session, user: User, kind: Kind, subject_ids: Sequence[int]) -> list[Subject]:
    """The subjects among these ids that the user may see, in id order; the others are dropped."""
    wanted = sorted(set(subject_ids))
    if not wanted:
        return []
    found: list[Subject] = []
    # In chunks: a parameter list has limits (SQLite's is 32,766, PostgreSQL's 65,535).
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        if kind == "application":
            rows = session.scalars(
                access.visible_applications(user).where(Application.id.in_(chunk)).order_by(Application.id)
            )
            found.extend(of_application(a) for a in rows)
        else:
            rows = session.scalars(
                access.visible_memberships(user)
                .where(CommunityMembership.id.in_(chunk), CommunityMembership.removed_at.is_(None))
                .order_by(CommunityMembership.id)
            )
            found.extend(of_membership(m) for m in rows)
    return found


def owner_of(session: Session, batch: Batch) -> int | None:
    """The job (applications) or community (memberships) whose list the batch's people were chosen
    from: every person of a batch is of one."""
    first = sa.select(BatchRecipient.subject_id).where(BatchRecipient.batch_id == batch.id).limit(1)
    if batch.kind == "application":
        return session.scalar(sa.select(Application.job_id).where(Application.id == first.scalar_subquery()))
    return session.scalar(
        sa.select(CommunityMembership.community_id).where(CommunityMembership.id == first.scalar_subquery())
    )


# --- Before sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One recipient of the preview."""

    subject: Subject
    name: str
    refusal: str | None  # why this recipient is skipped; None when the message can go
    text: str = ""
    segments: int = 0
    credits: int = 0
    morning_at: datetime | None = None  # quiet hours: when it leaves instead of now


def _over_cap(cap: int, people: int) -> str:
    return f"Your organisation sends a bulk message to at most {cap:,} people; you chose {people:,}."


@dataclass(frozen=True)
class Totals:
    """What the preview's summary says, and why nothing may be sent (`refusal`)."""

    people: int
    sendable: int
    segments: int
    credits: int
    at_morning: int
    balance: int
    cap: int
    saved_credits: int = 0
    helped: int = 0

    @property
    def skipped(self) -> int:
        return self.people - self.sendable

    @property
    def refusal(self) -> str | None:
        if self.people > self.cap:
            return _over_cap(self.cap, self.people)
        if not self.sendable:
            return "None of these people can be reached on this channel."
        if self.credits > self.balance:
            return (
                f"These messages cost {self.credits:,} credits and your balance is {self.balance:,}. "
                "Nothing was sent: ask customer success for more credits, or choose fewer people."
            )
        return None


@dataclass(frozen=True)
class Plan:
    channel: str
    lines: list[Line]
    totals: Totals

    @property
    def sendable(self) -> list[Line]:
        return [line for line in self.lines if line.refusal is None]

    @property
    def refusal(self) -> str | None:
        return self.totals.refusal


def _template_for(
    facts: Known, about: Subject, channel: str, template_id: int | None, now: datetime
) -> int | None:
    """A bulk WhatsApp message is free text for whoever's 24-hour window is open, and the approved
    template (when one was chosen) for the others: the template is theirs only."""
    if channel != "whatsapp" or template_id is None:
        return None
    return None if whatsapp.time_left(facts.conversation(about), now) is not None else template_id


def _line(
    session: Session,
    user: User,
    about: Subject,
    channel: str,
    body: str,
    subject: str | None,
    whatsapp_template_id: int | None,
    send_at: datetime | None,
    now: datetime,
    facts: Known,
) -> Line:
    """The recipient's line: compose's checks (`compose.plan`), nothing stored."""
    name = about.contact.full_name
    try:
        planned = compose.plan(
            session,
            user,
            about,
            channel,
            body,
            subject,
            _template_for(facts, about, channel, whatsapp_template_id, now),
            send_at=send_at,
            now=now,
            move_picked=True,
            facts=facts,
        )
    except SendRefused as refused:
        return Line(about, name, refused.message)
    cost = pricing.message_credits(channel, planned.count, about.organization)
    moved = planned.when.send_at if planned.when.moved else None
    return Line(about, name, None, planned.text, planned.segments, cost, moved)


def _within_guidance(
    session: Session, org: Organization, lines: list[Line], facts: Known, now: datetime
) -> list[Line]:
    """The people past what the organisation's numbers take today (webapp.numbers.health: each number's
    daily guidance) are refused here, in the order chosen, rather than at sending: routing gives no new
    conversation to a number at its guidance. Those whose conversation keeps a number still go (on it),
    but count against the room; those moved to their morning count against another day."""
    numbers = compose.numbers_for(session, org, "sms")
    if not numbers:
        return lines
    rooms: dict[tuple[int, ...], int] = {}
    out: list[Line] = []
    for line in lines:
        mobile = line.subject.contact.mobile
        if line.refusal is not None or line.morning_at is not None or not mobile:
            out.append(line)
            continue
        tier = routing.tier_for(numbers, mobile)
        key = tuple(n.id for n in tier)
        if key not in rooms:
            rooms[key] = health.room_today(session, tier, now)
        rooms[key] -= 1
        existing = facts.conversation(line.subject)
        kept = existing.number_for("sms") if existing is not None else None
        if rooms[key] >= 0 or (kept is not None and kept.status == "active"):
            out.append(line)
            continue
        country = phones.region_name(tier[0].country)
        out.append(
            Line(
                line.subject,
                line.name,
                f"Your {country} numbers take no more new conversations today (their daily guidance is "
                "reached before this message, or they are paused): ask customer success for another "
                "number, or message the rest tomorrow.",
            )
        )
    return out


def preview(
    session: Session,
    user: User,
    subjects: Sequence[Subject],
    channel: str,
    body: str,
    subject: str | None = None,
    whatsapp_template_id: int | None = None,
    send_at: datetime | None = None,
    now: datetime | None = None,
) -> Plan:
    """Every recipient's line and the totals; `refusal` says why nothing may go (over the cap, too few
    credits, nobody reachable). Stores nothing."""
    now = now or utcnow()
    org = user.organization
    assert org is not None
    if send_at is not None:
        send_at = checks.check_send_at(send_at, now)  # the same for all: said once, beside the field
    facts = Known.load(session, user, subjects)
    lines = [
        _line(session, user, s, channel, body, subject, whatsapp_template_id, send_at, now, facts)
        for s in subjects
    ]
    if channel == "sms" and send_at is None:
        lines = _within_guidance(session, org, lines, facts, now)
    sendable = [line for line in lines if line.refusal is None]
    saved = None
    if channel == "sms":

        def render_for(about: Subject) -> Callable[[str], str]:
            recipient = compose.recipient_for(about, user)
            return lambda text: placeholders.render(text, recipient)

        saved = lookalikes.savings(body, org, (render_for(line.subject) for line in sendable))
    totals = Totals(
        people=len(lines),
        sendable=len(sendable),
        segments=sum(line.segments for line in sendable),
        credits=sum(line.credits for line in sendable),
        at_morning=sum(1 for line in sendable if line.morning_at is not None),
        balance=credits.balance(session, org),
        cap=org.bulk_cap,
        saved_credits=saved.credits_saved if saved else 0,
        helped=saved.helped if saved else 0,
    )
    return Plan(channel, lines, totals)


def draft(
    session: Session,
    user: User,
    kind: Kind,
    subjects: Sequence[Subject],
    channel: str,
    body: str,
    subject: str | None = None,
    whatsapp_template_id: int | None = None,
    template_id: int | None = None,
    send_at: datetime | None = None,
    now: datetime | None = None,
) -> Batch:
    """The preview, stored as a draft batch with a row per recipient (their line), and committed.
    Raises BulkRefused, storing nothing, when there are more people than the organisation's cap (no
    one is checked for a batch that could never go)."""
    now = now or utcnow()
    org = user.organization
    assert org is not None
    if len(subjects) > org.bulk_cap:
        raise BulkRefused(_over_cap(org.bulk_cap, len(subjects)), "body")
    chosen_template = whatsapp_template_id is not None and channel == "whatsapp"
    if chosen_template and whatsapp.approved_template(session, org.id, whatsapp_template_id) is None:  # type: ignore[arg-type]
        raise BulkRefused("Choose one of your approved WhatsApp templates.", "whatsapp_template_id")
    if template_id is not None:
        found = session.get(MessageTemplate, template_id)
        template_id = found.id if found is not None and found.organization_id == org.id else None
    plan = preview(session, user, subjects, channel, body, subject, whatsapp_template_id, send_at, now)
    assert user.organization_id is not None
    batch = Batch(
        organization_id=user.organization_id,
        author_id=user.id,
        kind=kind,
        channel=channel,
        body=body,
        subject=subject,
        template_id=template_id,
        whatsapp_template_id=whatsapp_template_id,
        send_at=send_at,
        state="draft",
        total=len(plan.lines),
        plain_saved=plan.totals.saved_credits,
        plain_helped=plan.totals.helped,
        created_at=now,
    )
    session.add(batch)
    session.flush()
    if plan.lines:
        session.execute(
            sa.insert(BatchRecipient),
            [
                {
                    "batch_id": batch.id,
                    "subject_id": line.subject.id,
                    "name": line.name[:300],
                    "outcome": None if line.refusal is None else "refused",
                    "reason": line.refusal,
                    "text": line.text if line.refusal is None else None,
                    "segments": line.segments,
                    "credits": line.credits,
                    "morning_at": line.morning_at,
                    "done_at": None if line.refusal is None else now,
                }
                for line in plan.lines
            ],
        )
    session.commit()
    return batch


def totals(session: Session, batch: Batch) -> Totals:
    """A stored preview's totals, with the balance as it is now: one grouped statement."""
    sendable = BatchRecipient.outcome.is_distinct_from("refused")
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(sendable),
            sa.func.coalesce(sa.func.sum(BatchRecipient.segments).filter(sendable), 0),
            sa.func.coalesce(sa.func.sum(BatchRecipient.credits).filter(sendable), 0),
            sa.func.count(BatchRecipient.morning_at).filter(sendable),
        ).where(BatchRecipient.batch_id == batch.id)
    ).one()
    org = batch.organization
    return Totals(
        people=row[0],
        sendable=row[1],
        segments=row[2],
        credits=row[3],
        at_morning=row[4],
        balance=credits.balance(session, org),
        cap=org.bulk_cap,
        saved_credits=batch.plain_saved,
        helped=batch.plain_helped,
    )


def chosen(session: Session, batch: Batch) -> list[int]:
    """The ids of the batch's people, in the order they were chosen (to write the message again)."""
    return list(
        session.scalars(
            sa.select(BatchRecipient.subject_id)
            .where(BatchRecipient.batch_id == batch.id)
            .order_by(BatchRecipient.id)
        )
    )


def lines(
    session: Session, batch: Batch, q: str = "", page: int = 1, per_page: int = 50
) -> tuple[list[BatchRecipient], int]:
    """A page of a stored preview's lines, those whose name holds `q`, and how many match."""
    where = [BatchRecipient.batch_id == batch.id]
    if q:
        where.append(sa.func.lower(BatchRecipient.name).contains(q.casefold(), autoescape=True))
    matching = session.scalar(sa.select(sa.func.count()).select_from(BatchRecipient).where(*where)) or 0
    rows = session.scalars(
        sa.select(BatchRecipient)
        .where(*where)
        .order_by(BatchRecipient.id)
        .offset((max(1, page) - 1) * per_page)
        .limit(per_page)
    )
    return list(rows), matching


def their_clocks(
    session: Session, batch: Batch, rows: Sequence[BatchRecipient], reader_zone: str
) -> dict[int, str]:
    """For a page of lines, when each line moved out of the person's night leaves on their clock ("Mon
    09:00 in Texas"), where it differs from the reader's; by line id."""
    waiting = [row for row in rows if row.morning_at is not None]
    if not waiting or batch.channel not in timing.HELD_CHANNELS:
        return {}
    people = _subjects(session, batch.kind, [row.subject_id for row in waiting])
    return {
        row.id: timing.their_clock(row.morning_at, people[row.subject_id], reader_zone)
        for row in waiting
        if row.subject_id in people and row.morning_at is not None
    }


# --- Sending ------------------------------------------------------------------------------------------


def send(session: Session, user: User, batch: Batch, now: datetime | None = None) -> None:
    """Turn the user's draft into a running batch, and commit; the caller then hands it to `launch`.
    Raises BulkRefused when the totals refuse it now (the balance fell, the cap was lowered), or when
    it is not a draft any more (sent already, from another tab)."""
    if batch.author_id != user.id:
        raise BulkRefused("Only the person who wrote this bulk message can send it.")
    if batch.state != "draft":
        raise BulkRefused("This bulk message was sent already.")
    refusal = totals(session, batch).refusal
    if refusal is not None:
        raise BulkRefused(refusal, "body")
    now = now or utcnow()
    # Conditional: two clicks, or two tabs, send it once.
    changed = session.execute(
        sa.update(Batch)
        .where(Batch.id == batch.id, Batch.state == "draft")
        .values(state="running", created_at=now)
    ).rowcount
    if changed != 1:
        session.rollback()
        raise BulkRefused("This bulk message was sent already.")
    session.commit()


def start(
    session: Session,
    user: User,
    kind: Kind,
    subject_ids: Sequence[int],
    channel: str,
    body: str,
    subject: str | None = None,
    whatsapp_template_id: int | None = None,
    template_id: int | None = None,
    send_at: datetime | None = None,
    now: datetime | None = None,
) -> Batch:
    """`draft` and `send` at once (no page between): the people among these ids the user may see."""
    people = recipients(session, user, kind, subject_ids)
    batch = draft(
        session, user, kind, people, channel, body, subject, whatsapp_template_id, template_id, send_at, now
    )
    send(session, user, batch, now)
    return batch


def launch(batch_id: int) -> bool:
    """Hand the batch to the background as messages are (DISPATCH_MODE): an RQ job, a thread of this
    process, or at once (tests). False when it could not be handed over (Redis away): the clock's
    pass runs it then."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    mode = app.config["DISPATCH_MODE"]
    if mode == "inline":
        run(batch_id)
        return True
    try:
        if mode == "rq":
            # A batch of thousands outlasts RQ's default 180 s; killed anyway, the clock resumes it.
            dispatch.queue(app).enqueue(
                "webapp.messaging.bulk.run_job", batch_id, job_id=f"batch-{batch_id}", job_timeout=3600
            )
        else:
            dispatch._executor(app).submit(_run_in_app, app, batch_id)
    except Exception:
        log.exception("could not hand batch %s to the background; the clock runs it", batch_id)
        return False
    return True


def run_job(batch_id: int) -> None:
    """The RQ job."""
    from webapp.extensions import db

    try:
        run(batch_id)
    finally:
        db.session.remove()


def _run_in_app(app: Flask, batch_id: int) -> None:
    from webapp.extensions import db

    with app.app_context():
        try:
            run(batch_id)
        except Exception:
            log.exception("batch %s stopped; the clock resumes it", batch_id)
        finally:
            db.session.remove()


def _lease(session: Session, batch_id: int, now: datetime, renew: bool = False) -> bool:
    """Take (or, `renew`, keep) the batch's lease: False when it is not running, or another worker
    holds it."""
    condition = [Batch.id == batch_id, Batch.state == "running"]
    if not renew:
        condition.append(sa.or_(Batch.lease_until.is_(None), Batch.lease_until < now))
    return session.execute(sa.update(Batch).where(*condition).values(lease_until=now + LEASE)).rowcount == 1


def _claim(session: Session, batch_id: int, size: int) -> list[BatchRecipient]:
    """The next rows not composed yet, claimed in this transaction: only one transaction can move a row
    from empty, and it holds the row (PostgreSQL's row lock, SQLite's write lock) until it ends."""
    ids = list(
        session.scalars(
            sa.select(BatchRecipient.id)
            .where(BatchRecipient.batch_id == batch_id, BatchRecipient.outcome.is_(None))
            .order_by(BatchRecipient.id)
            .limit(size)
        )
    )
    if not ids:
        return []
    claimed = session.scalars(
        sa.update(BatchRecipient)
        .where(BatchRecipient.id.in_(ids), BatchRecipient.outcome.is_(None))
        .values(outcome="sending")
        .returning(BatchRecipient.id)
    ).all()
    return list(
        session.scalars(
            sa.select(BatchRecipient)
            .where(BatchRecipient.id.in_(claimed))
            .order_by(BatchRecipient.id)
            .execution_options(populate_existing=True)
        )
    )


def _subjects(session: Session, kind: str, ids: Sequence[int]) -> dict[int, Subject]:
    """The rows' people, read at once (those deleted since are missing)."""
    if kind == "application":
        apps = session.scalars(
            sa.select(Application)
            .where(Application.id.in_(ids))
            .options(selectinload(Application.candidate), selectinload(Application.job))
        )
        return {a.id: of_application(a) for a in apps}
    members = session.scalars(
        sa.select(CommunityMembership)
        .where(CommunityMembership.id.in_(ids))
        .options(selectinload(CommunityMembership.prospect), selectinload(CommunityMembership.community))
    )
    return {m.id: of_membership(m) for m in members}


def run(
    batch_id: int,
    now: Callable[[], datetime] = utcnow,
    handed_over: Callable[[int], object] | None = None,
    before_commit: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
) -> int:
    """Compose every recipient not composed yet, `chunk` at a time; hand each message that goes now to
    dispatch after its chunk's commit. Returns how many were composed by this run (0 when another
    worker holds the batch). `before_commit(row_id)` is called for each recipient inside its chunk's
    transaction (tests stop a worker there)."""
    from webapp.extensions import db

    session = db.session
    hand = handed_over or dispatch.enqueue
    if not _lease(session, batch_id, now()):
        session.rollback()
        return 0
    session.commit()
    batch = session.get(Batch, batch_id)
    user = session.get(User, batch.author_id) if batch is not None else None
    if batch is None or user is None:
        return 0
    composed = 0
    while True:
        if not _lease(session, batch_id, now(), renew=True):  # cancelled meanwhile
            session.rollback()
            return composed
        rows = _claim(session, batch_id, chunk)
        if not rows:
            break
        people = _subjects(session, batch.kind, [r.subject_id for r in rows])
        facts = Known.load(session, user, people.values())
        # The chunk pays for its people one after the other in one transaction: each of their
        # conversations' rows taken before the first debit (conversations.lock), or a reply in one of
        # them could hold its row and wait for the credits the chunk holds from an earlier recipient.
        conversations.lock(session, *(c.id for c in map(facts.conversation, people.values()) if c))
        handing: list[int] = []
        for row in rows:
            about = people.get(row.subject_id)
            moment = now()
            if about is None:
                row.outcome, row.reason, row.done_at = "refused", "This person is no longer there.", moment
                continue
            try:
                with session.begin_nested():
                    message = compose.compose(
                        session,
                        user,
                        about,
                        batch.channel,
                        batch.body,
                        subject=batch.subject,
                        whatsapp_template_id=_template_for(
                            facts, about, batch.channel, batch.whatsapp_template_id, moment
                        ),
                        send_at=batch.send_at if batch.send_at and batch.send_at > moment else None,
                        now=moment,
                        move_picked=True,
                        facts=facts,
                    )
                    session.flush()
            except SendRefused as refused:
                row.outcome, row.reason, row.done_at = "refused", refused.message, moment
            except Exception:
                log.exception("bulk: recipient row %s of batch %s could not be sent", row.id, batch_id)
                row.outcome, row.reason, row.done_at = "failed", UNEXPECTED, moment
            else:
                row.outcome = "scheduled" if message.status == "scheduled" else "sent"
                row.message_id, row.done_at = message.id, moment
                composed += 1
                if row.outcome == "sent":
                    handing.append(message.id)
            if before_commit is not None:
                before_commit(row.id)
        session.commit()
        for message_id in handing:
            hand(message_id)
    _finish(session, batch_id)
    return composed


def _finish(session: Session, batch_id: int) -> None:
    left = session.scalar(
        sa.select(sa.func.count())
        .select_from(BatchRecipient)
        .where(BatchRecipient.batch_id == batch_id, BatchRecipient.outcome.is_(None))
    )
    values: dict[str, object] = {"lease_until": None}
    if not left:
        values.update(state="done", finished_at=utcnow())
    session.execute(sa.update(Batch).where(Batch.id == batch_id, Batch.state == "running").values(**values))
    session.commit()


def cancel(session: Session, batch: Batch, now: datetime | None = None) -> int:
    """Stop what has not left: recipients not composed yet are cancelled (a run in the middle of a chunk
    finishes that chunk). Messages already stored stay. Returns how many were cancelled."""
    now = now or utcnow()
    session.execute(
        sa.update(Batch)
        .where(Batch.id == batch.id, Batch.state == "running")
        .values(state="cancelled", finished_at=now, lease_until=None)
    )
    cancelled = session.execute(
        sa.update(BatchRecipient)
        .where(BatchRecipient.batch_id == batch.id, BatchRecipient.outcome.is_(None))
        .values(outcome="cancelled", reason=CANCELLED, done_at=now)
    ).rowcount
    session.commit()
    return cancelled


def resume_running(now: datetime) -> str:
    """The clock's pass: every running batch whose worker is gone (no lease, or one run out), run; and
    drafts nobody sent, deleted."""
    from webapp.extensions import db

    session = db.session
    stale = list(
        session.scalars(
            sa.select(Batch.id).where(Batch.state == "draft", Batch.created_at < now - DRAFT_KEPT)
        )
    )
    if stale:
        session.execute(sa.delete(BatchRecipient).where(BatchRecipient.batch_id.in_(stale)))
        session.execute(sa.delete(Batch).where(Batch.id.in_(stale)))
        session.commit()
    ids = list(
        session.scalars(
            sa.select(Batch.id)
            .where(Batch.state == "running", sa.or_(Batch.lease_until.is_(None), Batch.lease_until < now))
            .order_by(Batch.id)
        )
    )
    session.rollback()
    if current_app.config["DISPATCH_MODE"] != "inline":
        # To the workers, as a batch just sent goes: the clock's minute is not held by thousands of
        # people. Run here only what could not be handed over.
        ids = [batch_id for batch_id in ids if not launch(batch_id)]
        if not ids:
            return ""
    sent = sum(run(batch_id, now=lambda: now) for batch_id in ids)
    return f"{sent} bulk message(s) composed" if sent else ""


# --- Progress and report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    total: int
    counts: dict[str, int]
    state: str

    @property
    def done(self) -> int:
        return sum(self.counts.get(o, 0) for o in OUTCOMES)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100

    @property
    def stamp(self) -> str:
        """What the page shows, in a word: its poll sends it back, and an unchanged one is answered 204."""
        return "-".join([self.state, *(str(self.counts.get(o, 0)) for o in OUTCOMES)])


def get_batch(session: Session, user: User, batch_id: int) -> Batch | None:
    """A batch of the user's organisation that they wrote, or any of it for an administrator."""
    batch = session.get(Batch, batch_id)
    if batch is None or batch.organization_id != user.organization_id:
        return None
    if batch.author_id != user.id and not access.is_org_admin(user):
        return None
    return batch


def _outcome() -> sa.ColumnElement[str]:
    """A recipient's outcome as the report says it: a message the provider refused (or that failed on
    its way) is "failed" (its row says so too, webapp.messaging.batch_rows; the report reads the
    message, which also gives the provider's reason)."""
    return sa.case(
        (Message.status.in_(tuple(batch_rows.FAILED)), "failed"),
        else_=sa.func.coalesce(BatchRecipient.outcome, "waiting"),
    )


def progress(session: Session, batch: Batch) -> Progress:
    """The counts by outcome: one grouped count over the batch's index range (its rows follow their
    messages' verdicts, webapp.messaging.batch_rows), and the batch's state."""
    outcome = sa.func.coalesce(BatchRecipient.outcome, "waiting")
    rows = session.execute(
        sa.select(outcome, sa.func.count()).where(BatchRecipient.batch_id == batch.id).group_by(outcome)
    ).all()
    counts = {o: n for o, n in rows}
    state = session.scalar(sa.select(Batch.state).where(Batch.id == batch.id)) or batch.state
    return Progress(batch.total, counts, state)


def report(session: Session, batch: Batch) -> list[tuple[str, str, str]]:
    """Name, outcome, reason per recipient, in the order they were chosen."""
    rows = session.execute(
        sa.select(BatchRecipient.name, _outcome(), BatchRecipient.reason, Message.error_title)
        .select_from(BatchRecipient)
        .outerjoin(Message, Message.id == BatchRecipient.message_id)
        .where(BatchRecipient.batch_id == batch.id)
        .order_by(BatchRecipient.id)
    ).all()
    return [(name, outcome, reason or error or "") for name, outcome, reason, error in rows]
