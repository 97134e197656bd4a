"""Bulk messages (issue 22 §1): one text to many people, each message in that person's own conversation
through webapp.messaging.compose, so that every rule of a single message holds for each of them.

- `recipients` finds the people among those the user may see (webapp.accounts.access): an id the
  user may not see is dropped, never sent to.
- `preview` says, before anything is stored, per recipient the channel's refusal (no mobile, opted out,
  WhatsApp outside the window without an approved template…) or the text as they read it with its
  segments and credits; and in total the credits, how many wait for their morning under quiet hours, what
  plain quotes would save (webapp.messaging.lookalikes.savings), and the refusal of the whole batch
  when the balance cannot cover it or it is over the organisation's cap.
- `start` stores the batch and a row per recipient, and hands the batch to the background (`launch`).
- `run` composes each recipient in a transaction of its own. The row's outcome is written in the same
  transaction as the message, after a conditional UPDATE that claims the row: a worker killed mid-batch
  leaves its recipient untouched for the next run, and two runs never send to one person twice. One
  recipient's failure is theirs only. The clock (webapp.scheduling.tasks) runs again whatever batch is
  still running, so a batch whose worker died finishes.
- `cancel` marks every recipient not composed yet as cancelled; what was stored stays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from webapp.accounts import access
from webapp.billing import credits
from webapp.messaging import checks, compose, conversations, dispatch, lookalikes, placeholders, whatsapp
from webapp.messaging.checks import SendRefused
from webapp.messaging.subjects import Kind, Subject, of_application, of_membership
from webapp.models import (
    Application,
    Batch,
    BatchRecipient,
    CommunityMembership,
    Message,
    User,
    WhatsappTemplate,
    utcnow,
)

log = logging.getLogger("relay.bulk")
# What a recipient whose send failed for a reason no check foresaw is told in the report.
UNEXPECTED = "Could not be sent: an unexpected error."
CANCELLED = "Cancelled before it was sent."
OUTCOMES = ("sent", "scheduled", "refused", "failed", "cancelled")


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


def subject_of(session: Session, kind: str, subject_id: int) -> Subject | None:
    if kind == "application":
        application = session.get(Application, subject_id)
        return of_application(application) if application is not None else None
    membership = session.get(CommunityMembership, subject_id)
    return of_membership(membership) if membership is not None else None


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


@dataclass(frozen=True)
class Plan:
    channel: str
    lines: list[Line]
    balance: int
    cap: int
    savings: lookalikes.Savings | None
    refusal: str | None = None  # why nothing may be sent
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def sendable(self) -> list[Line]:
        return [line for line in self.lines if line.refusal is None]

    @property
    def skipped(self) -> int:
        return len(self.lines) - len(self.sendable)

    @property
    def segments(self) -> int:
        return sum(line.segments for line in self.sendable)

    @property
    def credits(self) -> int:
        return sum(line.credits for line in self.sendable)

    @property
    def at_morning(self) -> int:
        return sum(1 for line in self.sendable if line.morning_at is not None)


def _line(
    session: Session,
    user: User,
    about: Subject,
    channel: str,
    body: str,
    subject: str | None,
    template: WhatsappTemplate | None,
    send_at: datetime | None,
    now: datetime,
) -> Line:
    """The recipient's line: compose's checks in its order, without storing anything."""
    name = about.contact.full_name
    try:
        checks.check_sender(session, user, about, channel)
        checks.check_recipient(session, about.contact, channel)
        if channel == "whatsapp":
            existing = conversations.for_subject(session, about)
            checks.check_whatsapp_window(whatsapp.time_left(existing, now) is not None, template is not None)
        when = compose.hours_for(session, about, channel, now, send_at, move_picked=True)
        shown = compose.preview(about, user, channel, body, template)
        rendered_subject = (
            placeholders.render(subject, compose.recipient_for(about, user)) if subject else None
        )
        checks.check_body(channel, shown.text, rendered_subject)
    except SendRefused as refused:
        return Line(about, name, refused.message)
    return Line(
        about, name, None, shown.text, shown.segments, shown.credits, when.send_at if when.moved else None
    )


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
    cap = org.bulk_cap
    template = None
    if channel == "whatsapp" and whatsapp_template_id is not None:
        template = whatsapp.approved_template(session, org.id, whatsapp_template_id)
    lines = [_line(session, user, s, channel, body, subject, template, send_at, now) for s in subjects]
    saved = None
    if channel == "sms":
        sendable = [line.subject for line in lines if line.refusal is None]

        def render_for(about: Subject) -> Callable[[str], str]:
            recipient = compose.recipient_for(about, user)
            return lambda text: placeholders.render(text, recipient)

        saved = lookalikes.savings(body, org, (render_for(s) for s in sendable))
    balance = credits.balance(session, org)
    plan = Plan(channel, lines, balance, cap, saved)
    refusal = None
    if len(lines) > cap:
        refusal = (
            f"Your organisation sends a bulk message to at most {cap:,} people; you chose {len(lines):,}."
        )
    elif not plan.sendable:
        refusal = "None of these people can be reached on this channel."
    elif plan.credits > balance:
        refusal = (
            f"These messages cost {plan.credits:,} credits and your balance is {balance:,}. "
            "Nothing was sent: ask customer success for more credits, or choose fewer people."
        )
    return Plan(channel, lines, balance, cap, saved, refusal)


# --- Sending ------------------------------------------------------------------------------------------


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
    """Store the batch and its recipients (those the preview skips as refused at once) and commit; the
    caller then hands it to `launch`. Raises BulkRefused when the plan refuses the whole batch."""
    people = recipients(session, user, kind, subject_ids)
    plan = preview(session, user, people, channel, body, subject, whatsapp_template_id, send_at, now)
    if plan.refusal is not None:
        raise BulkRefused(plan.refusal, "body")
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
        state="running",
        total=len(plan.lines),
        created_at=now or utcnow(),
    )
    session.add(batch)
    session.flush()
    done_at = now or utcnow()
    session.execute(
        sa.insert(BatchRecipient),
        [
            {
                "batch_id": batch.id,
                "subject_id": line.subject.id,
                "name": line.name[:300],
                "outcome": None if line.refusal is None else "refused",
                "reason": line.refusal,
                "done_at": None if line.refusal is None else done_at,
            }
            for line in plan.lines
        ],
    )
    session.commit()
    return batch


def launch(batch_id: int) -> None:
    """Hand the batch to the background as messages are (DISPATCH_MODE): an RQ job, a thread of this
    process, or at once (tests). Whatever this misses, the clock's pass runs."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    mode = app.config["DISPATCH_MODE"]
    if mode == "inline":
        run(batch_id)
        return
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


def _pending(session: Session, batch_id: int, after: int, limit: int = 200) -> list[int]:
    return list(
        session.scalars(
            sa.select(BatchRecipient.id)
            .where(
                BatchRecipient.batch_id == batch_id,
                BatchRecipient.outcome.is_(None),
                BatchRecipient.id > after,
            )
            .order_by(BatchRecipient.id)
            .limit(limit)
        )
    )


def _settle(session: Session, row_id: int, outcome: str, reason: str) -> None:
    """A refusal or failure, written only if nobody wrote an outcome meanwhile (cancel, another run)."""
    session.execute(
        sa.update(BatchRecipient)
        .where(BatchRecipient.id == row_id, BatchRecipient.outcome.is_(None))
        .values(outcome=outcome, reason=reason, done_at=utcnow())
    )
    session.commit()


def run(
    batch_id: int,
    now: Callable[[], datetime] = utcnow,
    handed_over: Callable[[int], object] | None = None,
    before_commit: Callable[[int], None] | None = None,
) -> int:
    """Compose every recipient not composed yet, each in a transaction of its own; hand each message
    that goes now to dispatch after its commit. Returns how many were composed by this run.
    `before_commit(row_id)` is called inside each recipient's transaction (tests stop a worker there)."""
    from webapp.extensions import db

    session = db.session
    hand = handed_over or dispatch.enqueue
    batch = session.get(Batch, batch_id)
    if batch is None or batch.state != "running":
        return 0
    author_id, kind = batch.author_id, batch.kind
    composed, after = 0, 0
    while ids := _pending(session, batch_id, after):
        for row_id in ids:
            after = row_id
            if session.scalar(sa.select(Batch.state).where(Batch.id == batch_id)) != "running":
                session.rollback()
                return composed
            # The claim: only one transaction can move the row from empty; it holds the row (PostgreSQL's
            # row lock, SQLite's write lock) until its commit or rollback.
            claimed = session.execute(
                sa.update(BatchRecipient)
                .where(BatchRecipient.id == row_id, BatchRecipient.outcome.is_(None))
                .values(outcome="sending")
            ).rowcount
            if claimed != 1:
                session.rollback()
                continue
            row = session.get(BatchRecipient, row_id)
            batch = session.get(Batch, batch_id)
            user = session.get(User, author_id)
            about = subject_of(session, kind, row.subject_id) if row is not None else None
            if row is None or batch is None or user is None or about is None:
                session.rollback()
                _settle(session, row_id, "refused", "This person is no longer there.")
                continue
            try:
                message = compose.compose(
                    session,
                    user,
                    about,
                    batch.channel,
                    batch.body,
                    subject=batch.subject,
                    whatsapp_template_id=batch.whatsapp_template_id,
                    send_at=batch.send_at if batch.send_at and batch.send_at > now() else None,
                    now=now(),
                    move_picked=True,
                )
                session.flush()
                row.outcome = "scheduled" if message.status == "scheduled" else "sent"
                row.message_id = message.id
                row.done_at = now()
                if before_commit is not None:
                    before_commit(row_id)
                session.commit()
            except SendRefused as refused:
                session.rollback()
                _settle(session, row_id, "refused", refused.message)
                continue
            except Exception:
                session.rollback()
                log.exception("bulk: recipient row %s of batch %s could not be sent", row_id, batch_id)
                _settle(session, row_id, "failed", UNEXPECTED)
                continue
            composed += 1
            if row.outcome == "sent":
                hand(message.id)
    _finish(session, batch_id)
    return composed


def _finish(session: Session, batch_id: int) -> None:
    left = session.scalar(
        sa.select(sa.func.count())
        .select_from(BatchRecipient)
        .where(BatchRecipient.batch_id == batch_id, BatchRecipient.outcome.is_(None))
    )
    if not left:
        session.execute(
            sa.update(Batch)
            .where(Batch.id == batch_id, Batch.state == "running")
            .values(state="done", finished_at=utcnow())
        )
    session.commit()


def cancel(session: Session, batch: Batch, now: datetime | None = None) -> int:
    """Stop what has not left: recipients not composed yet are cancelled (a run in the middle of one
    finishes that one). Messages already stored stay. Returns how many were cancelled."""
    now = now or utcnow()
    session.execute(
        sa.update(Batch)
        .where(Batch.id == batch.id, Batch.state == "running")
        .values(state="cancelled", finished_at=now)
    )
    cancelled = session.execute(
        sa.update(BatchRecipient)
        .where(BatchRecipient.batch_id == batch.id, BatchRecipient.outcome.is_(None))
        .values(outcome="cancelled", reason=CANCELLED, done_at=now)
    ).rowcount
    session.commit()
    return cancelled


def resume_running(now: datetime) -> str:
    """The clock's pass: every batch still running, run (a worker died, or Redis was away)."""
    from webapp.extensions import db

    ids = list(db.session.scalars(sa.select(Batch.id).where(Batch.state == "running").order_by(Batch.id)))
    db.session.rollback()
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
    its way) is "failed", whatever the batch stored when it was handed over."""
    return sa.case(
        (Message.status.in_(("rejected", "undeliverable")), "failed"),
        else_=sa.func.coalesce(BatchRecipient.outcome, "waiting"),
    )


def progress(session: Session, batch: Batch) -> Progress:
    """The counts by outcome: one grouped query over the batch's index range."""
    outcome = _outcome()
    rows = session.execute(
        sa.select(outcome, sa.func.count())
        .select_from(BatchRecipient)
        .outerjoin(Message, Message.id == BatchRecipient.message_id)
        .where(BatchRecipient.batch_id == batch.id)
        .group_by(outcome)
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
