"""Handing a queued message to its provider: once, and never lost.

`enqueue` runs after the commit that stored the message: through RQ on Redis when REDIS_URL is set
(`flask --app wsgi worker`), else on a thread pool in this process. `deliver` claims the message with
one conditional UPDATE (queued → sending), so a job that runs twice sends once.

Each HTTP try is counted (`attempts`) and stamped (`claimed_at`) in a commit *before* it starts (the
first by the claim's own commit, when nothing can refuse the message between the two): whatever kills
the dispatcher afterwards, the database shows that a try may have gone out. The counter is also the
claim's fencing token: a dispatcher that finds it changed has lost its claim.

What a try's failure means decides what follows (webapp.providers.base):
- Rejected (a 4xx): final; the credits go back.
- TemporaryFailure (no connection at all, a 429): nothing reached the provider; tried again with
  backoff, up to SEND_MAX_ATTEMPTS tries, then final and refunded.
- OutcomeUnknown (a timeout waiting for the answer, a 5xx, a broken connection): the provider may
  have sent it. The message becomes `unknown` ("Checking with the network…") and is never sent again;
  the status webhook, which carries our id as client_ref, settles it.

Pacing (webapp.messaging.pacing): before the claim, a message waits for its turn in its provider
account's bucket and its sending number's (shared through Redis by every worker). Waiting is neither a
try nor a failure: the message stays `queued`, and a turn taken for a message another dispatcher had
claimed is given back. A 429 is a try (counted like any other); its Retry-After holds the account for
every worker, and the retry waits at least that long, then takes a turn too. A wait that would outlast
SEND_PACING_MAX_WAIT_SECONDS (before the claim) or the lease (before a retry) leaves the message
`queued` for the sweep.

`recover` is the sweep, run by `flask --app wsgi dispatch requeue` and every DISPATCH_SWEEP_SECONDS by
the clock (webapp.scheduling, which runs the give-up below as a task of its own, `give_up_unknown`):
- a `sending` claim whose lease ran out (its dispatcher died): back to `queued` if no try had begun,
  else `unknown`, since the try may have reached the provider;
- an `unknown` message with no report after SEND_UNKNOWN_WAIT_SECONDS: given up as not confirmed and
  refunded (not resent: a second copy is worse than one the user can resend knowingly);
- a `queued` message nobody picked up for SEND_REQUEUE_AFTER_SECONDS: handed to the dispatcher again.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app

from webapp import logs, metrics
from webapp.billing import credits
from webapp.database import one_statement
from webapp.extensions import db
from webapp.inbox import changes as activity
from webapp.messaging import attempts, optouts, pacing, status
from webapp.models import Conversation, Message, Organization, SendingNumber, utcnow
from webapp.providers import registry
from webapp.providers.base import (
    Outbound,
    OutcomeUnknown,
    ProviderError,
    Rejected,
    Sender,
    TemporaryFailure,
)

log = logging.getLogger("relay.dispatch")
QUEUE_NAME = "relay"


def enqueue(message_id: int) -> Future[None] | None:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    mode = app.config["DISPATCH_MODE"]
    if mode == "inline":
        deliver(message_id)
        return None
    # The request's id goes with the job, so that the send's log lines carry it (webapp.logs).
    request_id = logs.request_id()
    try:
        if mode == "rq":
            queue(app).enqueue(
                "webapp.messaging.dispatch.deliver_job",
                message_id,
                request_id,
                job_id=f"message-{message_id}",
            )
            return None
        return _executor(app).submit(_deliver_in_app, app, message_id, request_id)
    except Exception:
        # The message is stored and paid for; the sweep (or `dispatch requeue`) hands it over later.
        log.exception("could not hand message %s to the dispatcher; it stays queued", message_id)
        return None


def deliver_job(message_id: int, request_id: str | None = None) -> None:
    """The RQ job: one delivery, with a session of its own whatever happened to the previous job's, its
    lines logged under the id of the request that queued it (a new one for the sweep's)."""
    try:
        with logs.bound(request_id):
            deliver(message_id)
    finally:
        db.session.remove()


def queue(app: Flask):  # type: ignore[no-untyped-def]
    from redis import Redis
    from rq import Queue

    if "relay.rq" not in app.extensions:
        app.extensions["relay.rq"] = Queue(QUEUE_NAME, connection=Redis.from_url(app.config["REDIS_URL"]))
    return app.extensions["relay.rq"]


def _executor(app: Flask) -> ThreadPoolExecutor:
    if "relay.executor" not in app.extensions:
        app.extensions["relay.executor"] = ThreadPoolExecutor(
            max_workers=app.config["DISPATCH_THREADS"], thread_name_prefix="relay-send"
        )
    return app.extensions["relay.executor"]


def _deliver_in_app(app: Flask, message_id: int, request_id: str | None = None) -> None:
    with app.app_context(), logs.bound(request_id):
        try:
            deliver(message_id)
        except Exception:
            log.exception("delivering message %s failed", message_id)
            raise


def warm_up(app: Flask) -> None:
    """Make the default texting provider ready before the first job (its SDK imported, its key read, a
    client built: about a second of CPU): the first sends after a worker starts then cost what every
    send costs, instead of each process's first one paying it while others wait. One that cannot be made
    ready is left to the sends, which refuse their messages with the reason."""
    try:
        registry.for_sending(app, "sms")
    except Exception as exc:
        log.warning("the texting provider could not be made ready at start: %s", exc)


# --- One delivery ------------------------------------------------------------------------------------


def claim(message_id: int, with_try: bool = False) -> int | None:
    """queued → sending, atomically; the claim's token (the tries made before it), or None when another
    dispatcher has it already. `with_try`: the first try is counted by the same commit, for a caller
    that goes straight to the request (one commit fewer: nothing can refuse the message in between)."""
    statement = _CLAIM_COUNTED if with_try else _CLAIM
    one_statement(db.session)
    found = db.session.execute(statement, {"message_id": message_id, "now": utcnow()}).scalar_one_or_none()
    db.session.commit()
    if found is None:
        return None
    return found - 1 if with_try else found


def _begin_try(message_id: int, token: int) -> bool:
    """Count and stamp the next try before it starts, if the claim is still ours (committed at once)."""
    one_statement(db.session)
    result = db.session.execute(_BEGIN_TRY, {"message_id": message_id, "token": token, "now": utcnow()})
    db.session.commit()
    return result.rowcount == 1


# The statements every send runs, built once with bound parameters: SQLAlchemy neither builds them nor
# works out their cache key again for each message (that was a fifth of a send's own CPU). They are of
# the table, not the mapped class: an UPDATE that keeps no object in step needs none of the ORM's work.
_messages = Message.__table__.c
_CLAIM = (
    sa.update(Message.__table__)
    .where(_messages.id == sa.bindparam("message_id"), _messages.status == "queued")
    .values(status="sending", claimed_at=sa.bindparam("now"))
    .returning(_messages.attempts)
)
_CLAIM_COUNTED = _CLAIM.values(attempts=_messages.attempts + 1)
_BEGIN_TRY = (
    sa.update(Message.__table__)
    .where(
        _messages.id == sa.bindparam("message_id"),
        _messages.status == "sending",
        _messages.attempts == sa.bindparam("token", type_=sa.Integer),
    )
    .values(attempts=sa.bindparam("token", type_=sa.Integer) + 1, claimed_at=sa.bindparam("now"))
)
# The message with its number's provider and its conversation's organisation, and for an organisation
# without a parent (its own customer) whether a STOP holds: the opt-out check in the same round trip.
_READ = (
    sa.select(
        Message,
        SendingNumber.provider,
        Conversation.organization_id,
        Organization.parent_id,
        optouts.held_by(Conversation.organization_id, Message.to_addr),
    )
    .outerjoin(SendingNumber, SendingNumber.e164 == Message.from_addr)
    .outerjoin(Conversation, Conversation.id == Message.conversation_id)
    .outerjoin(Organization, Organization.id == Conversation.organization_id)
    .where(Message.id == sa.bindparam("message_id"))
)


def outbound_for(message: Message) -> Outbound:
    template = message.whatsapp_template
    parameters = tuple(json.loads(message.template_parameters)) if message.template_parameters else ()
    return Outbound(
        message_id=message.id,
        channel=message.channel,
        to=message.to_addr,
        sender=message.from_addr,
        body=message.body,
        subject=message.subject,
        template_name=template.name if template else None,
        template_locale=template.locale if template else None,
        template_parameters=parameters,
    )


# The opt-out is checked before the turn; a message that waited longer than this for its turn is checked
# again once claimed (shorter waits are no longer than the claim itself, the race there always was).
RECHECK_AFTER_WAIT_SECONDS = 0.1
OPTED_OUT = (
    Rejected("Not sent: the number opted out", "It texted STOP before this left."),
    "Recipient opted out",
)


@dataclass
class _Ready:
    """A queued message read and made ready to leave, before its claim: what it takes to send it, or
    what refuses it (an opt-out, a provider that cannot be built), which is settled once claimed."""

    message: Message  # expired once read (no transaction is held open): what a send needs is below
    provider_name: str | None  # that of the number it leaves from; None: email, or a number not ours
    channel: str
    outbound: Outbound | None = None
    provider: Sender | None = None
    refusal: tuple[ProviderError, str] | None = None  # the error and the refund's note
    opt_out_of: tuple[int, str] | None = None  # (organisation, number) whose STOP would refuse it
    own_customer: bool = False  # its conversation's organisation has no parent: no family to mark


def _prepare(app: Flask, message_id: int) -> _Ready | None:
    """Everything a send needs that only reads, done while the message is still queued, so that between
    its turn and its request there is only the claim, the try's count and the request itself. None when
    the message is not queued any more."""
    # The conversation's organisation, and mostly the opt-out check too, come with the message (_READ).
    # Only reads: each statement on its own, without a transaction around them.
    one_statement(db.session)
    row = db.session.execute(_READ, {"message_id": message_id}).one_or_none()
    if row is None or row[0].status != "queued":
        db.session.rollback()
        return None
    message, provider_name, organization_id, parent_id, stopped_at_top = row
    ready = _Ready(message, None if message.channel == "email" else provider_name, message.channel)
    ready.own_customer = organization_id is not None and parent_id is None
    try:
        # A STOP may have arrived while the message waited in the queue. (Automatic replies, which have
        # no author — the answer to HELP — still go: carriers expect HELP answered even after STOP.)
        texted = message.channel != "email" and message.author_id is not None and organization_id is not None
        if texted:
            ready.opt_out_of = (organization_id, message.to_addr)
        # An organisation without a parent is its own customer: its STOPs came with the message. A
        # sub-organisation's are its customer's, asked of the whole family.
        if ready.opt_out_of and (
            stopped_at_top if parent_id is None else optouts.active(db.session, *ready.opt_out_of)
        ):
            ready.refusal = OPTED_OUT
        else:
            ready.outbound = outbound_for(message)
            ready.provider = registry.for_sending(app, message.channel, ready.provider_name)
    except Exception as exc:
        # Nothing went out (a provider that cannot be built: a missing key, a bad setting): say so.
        log.exception("message %s could not be prepared for sending", message_id)
        ready.refusal = (
            Rejected("Relay could not send it", f"{type(exc).__name__}: {exc}"[:500]),
            "Not sent",
        )
    db.session.rollback()  # no transaction held open while the message waits for its turn
    return ready


def take_turn(
    app: Flask, provider: str | None, outbound: Outbound, max_wait: float | None = None
) -> pacing.Turn | None:
    """Wait for the message's turn in its provider account's and number's buckets (webapp.messaging
    .pacing): a pacing.Turn (its `waited` is the seconds spent waiting), or None when none came within
    max_wait or the buckets cannot be reached; then the message stays as it is."""
    found = pacing.buckets(app.config, provider, outbound.channel, outbound.sender)
    try:
        return pacing.wait_for_turn(app, found, max_wait)
    except pacing.PacingUnavailable as exc:
        log.warning("not sending now: %s", exc)
        return None


def deliver(message_id: int) -> pacing.Turn | None:
    """Send one queued message (see the module's docstring). Its turn (`waited`: the seconds it waited
    for the pacing buckets), or None when this call sent nothing."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        ready = _prepare(app, message_id)
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        # Its pooled connection had died (a database restart: webapp.database); the pool has dropped
        # them all, and the read, which changed nothing, is made once more on a new one.
        db.session.rollback()
        ready = _prepare(app, message_id)
    if ready is None:
        log.info("message %s is not queued any more; not sending it again", message_id)
        return None
    turn = pacing.Turn(0.0)
    if ready.outbound is not None:
        # The turn comes before the claim: a message waiting for it is queued, not sending, and no try.
        turn = take_turn(app, ready.provider_name, ready.outbound)
        if turn is None:
            log.info("message %s stays queued: no turn to send now (the sweep hands it over)", message_id)
            return None
    # A message that waited long for its turn is checked for a STOP again once claimed; any other goes
    # straight from its claim to its request, so the claim counts its first try too.
    check_again = turn.waited >= RECHECK_AFTER_WAIT_SECONDS and ready.opt_out_of is not None
    counted = ready.refusal is None and not check_again
    token = claim(message_id, with_try=counted)
    if token is None:
        pacing.give_back(app, turn)
        log.info("message %s is not queued any more; not sending it again", message_id)
        return None
    if check_again and ready.refusal is None and optouts.active(db.session, *ready.opt_out_of):
        ready.refusal = OPTED_OUT  # a STOP came while it waited for its turn
    if ready.refusal is not None:
        error, note = ready.refusal
        _settle(ready.message, token, error, refund_note=note)
        return None
    if turn.waited:
        metrics.paced_wait(turn.waited)
    _send(app, message_id, ready, token, first_counted=counted, turn=turn)
    return turn


def _send(
    app: Flask,
    message_id: int,
    ready: _Ready,
    token: int,
    first_counted: bool = False,
    turn: pacing.Turn | None = None,
) -> None:
    """The tries, each counted before it starts (`first_counted`: the claim counted the first; `turn`:
    the one taken for the first, before the claim)."""
    message, provider, outbound = ready.message, ready.provider, ready.outbound
    assert provider is not None and outbound is not None
    tries = max(1, app.config["SEND_MAX_ATTEMPTS"], token + 1)  # tries before a hand-back count too
    backoff = app.config["SEND_BACKOFF_SECONDS"]
    first, tried_at, pause = token + 1, 0.0, 0.0
    for n in range(first, tries + 1):
        if n > first and not _turn_for_retry(app, ready, tried_at, pause):
            _hand_back(message_id, token)
            return
        if not (n == first and first_counted) and not _begin_try(message_id, token):
            log.warning("message %s: the claim was taken over (lease ran out); stopping here", message_id)
            return
        token += 1
        if n == first and turn is not None and not _turn_still_now(app, turn):
            _hand_back(message_id, token, untried=True)
            return
        tried_at = time.monotonic()
        try:
            # Timed, logged and counted (webapp.metrics) by attempts.send.
            provider_id = attempts.send(
                provider, outbound, _name(app, ready.channel, ready.provider_name), token
            )
        except (Rejected, OutcomeUnknown) as exc:
            _settle(message, token, exc, refund_note="Refused by the provider")
            return
        except TemporaryFailure as exc:
            log.warning("message %s try %s/%s not accepted: %s", message_id, n, tries, exc)
            if n == tries:
                final = Rejected(f"Not sent after {tries} tries: {exc.title}", exc.detail, exc.code)
                _settle(message, token, final, refund_note="Provider unavailable")
                return
            # A 429's Retry-After holds the whole account (every worker), and this retry waits at least
            # that long too; the retry is a request like any other, so it takes a turn as well.
            pause = max(backoff * 2 ** (n - 1), exc.retry_after or 0.0)
            if exc.retry_after and ready.provider_name:
                pacing.hold(app, ready.provider_name, exc.retry_after)
        except Exception as exc:
            # Something we did not foresee, maybe after the request went out: treat it as unknown.
            log.exception("message %s: unexpected error from the provider", message_id)
            _settle(message, token, OutcomeUnknown("Unexpected error", str(exc)[:500]), refund_note="")
            return
        else:
            _submitted(message_id, message, token, provider_id, ready)
            return


def _name(app: Flask, channel: str, provider: str | None) -> str:
    """The provider's name in logs and metrics."""
    return "smtp" if channel == "email" else provider or registry.default_name(app)


def _turn_for_retry(app: Flask, ready: _Ready, tried_at: float, pause: float) -> bool:
    """Sleep `pause`, then take a turn for the next try, within what the claim's lease has left (its
    clock started with the last try). False when that is not enough: the caller hands the message back."""
    left = app.config["SEND_LEASE_SECONDS"] - (time.monotonic() - tried_at) - 1.0
    if pause > left:
        return False
    time.sleep(pause)
    assert ready.outbound is not None
    turn = take_turn(app, ready.provider_name, ready.outbound, max_wait=left - pause)
    return turn is not None


def _turn_still_now(app: Flask, turn: pacing.Turn) -> bool:
    """The first try's turn, renewed if it grew old (pacing.renewed); False when none came again within
    half the lease, or the buckets cannot be reached (nothing was sent)."""
    wait = min(app.config["SEND_PACING_MAX_WAIT_SECONDS"], app.config["SEND_LEASE_SECONDS"] / 2)
    try:
        return pacing.renewed(app, turn, wait) is not None
    except pacing.PacingUnavailable as exc:
        log.warning("not sending now: %s", exc)
        return False


def _hand_back(message_id: int, token: int, untried: bool = False) -> None:
    """sending → queued when the next try cannot come within the lease (a 429 asked to wait past it) or
    its turn did not come again (`untried`: its count taken back, as nothing was sent); the sweep hands
    it over again later. Tries that went out still count."""
    db.session.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.status == "sending", Message.attempts == token)
        .values(status="queued", claimed_at=None, attempts=token - 1 if untried else token)
        .execution_options(synchronize_session=False)
    )
    activity.touch_messages(db.session, [message_id])
    db.session.commit()
    why = (
        "no turn to send it came again in time" if untried else "the provider asked us to wait past the lease"
    )
    log.info("message %s handed back to the queue: %s", message_id, why)


def _submitted(message_id: int, message: Message, token: int, provider_id: str, ready: _Ready) -> None:
    new = "sent" if ready.channel == "email" else "submitted"
    # The usual case, in one statement: the claim still ours (this try's token), no report before us.
    if status.accepted(db.session, message_id, token, provider_id, new, alone=ready.own_customer):
        db.session.commit()
        return
    # A delivery receipt may have overtaken us (found the message by client_ref), or the sweep may have
    # marked it unknown meanwhile: read the row again under its lock, and only ever move it forward.
    db.session.refresh(message, with_for_update=True)
    message.provider_id = message.provider_id or provider_id
    status.apply(message, new)
    db.session.commit()


def _settle(message: Message, token: int, error: ProviderError, refund_note: str) -> None:
    """A try ended without an id from the provider: final (refunded) or unknown, if still ours."""
    db.session.refresh(message, with_for_update=True)
    if message.status != "sending" or message.attempts != token:
        # A report came first, or the sweep took the message over: theirs is the newer knowledge.
        db.session.commit()
        return
    if isinstance(error, OutcomeUnknown):
        log.warning("message %s: outcome unknown (%s); waiting for the provider's report", message.id, error)
        message.status = "unknown"
        message.error_code, message.error_title, message.error_detail = error.code, error.title, error.detail
        activity.touch_message(message)
    else:
        status.apply(message, "rejected", failure=status.Failure(error.code, error.title, error.detail))
        credits.refund(db.session, message.conversation.organization, message, refund_note)
    db.session.commit()


# --- Recovery ----------------------------------------------------------------------------------------


@dataclass
class Recovered:
    requeued: list[int] = field(default_factory=list)  # handed to the dispatcher again
    unknown: list[int] = field(default_factory=list)  # a try may have gone out: waiting for the report
    given_up: list[int] = field(default_factory=list)  # no report came: not confirmed, refunded

    def __str__(self) -> str:
        return (
            f"{len(self.requeued)} message(s) handed to the dispatcher again, "
            f"{len(self.unknown)} left mid-send now waiting for the network's report, "
            f"{len(self.given_up)} never confirmed and refunded."
        )


def recover(
    queued_after: float | None = None,
    now: datetime | None = None,
    *,
    hand_over: bool = True,
    give_up: bool = True,
) -> Recovered:
    """The sweep (see the module's docstring). Safe to run anywhere, any number of times at once.
    `give_up=False` leaves the unknown outcomes to `give_up_unknown`."""
    config = current_app.config
    now = now or utcnow()
    queued_after = config["SEND_REQUEUE_AFTER_SECONDS"] if queued_after is None else queued_after
    lease_ends = now - timedelta(seconds=config["SEND_LEASE_SECONDS"])
    found = Recovered()

    # Claimed but no try begun: nothing can have gone out, so it may be sent (once) after all.
    back = db.session.execute(
        sa.update(Message)
        .where(Message.status == "sending", Message.attempts == 0, Message.claimed_at < lease_ends)
        .values(status="queued", claimed_at=None)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    found.requeued += back.scalars().all()
    activity.touch_messages(db.session, found.requeued)
    db.session.commit()

    lost = db.session.execute(
        sa.update(Message)
        .where(Message.status == "sending", Message.attempts > 0, Message.claimed_at < lease_ends)
        .values(
            status="unknown",
            claimed_at=now,
            error_code=None,
            error_title="The sender stopped mid-send",
            error_detail="Relay stopped while the provider was being asked; it may have the message.",
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    found.unknown += lost.scalars().all()
    activity.touch_messages(db.session, found.unknown)
    db.session.commit()

    if give_up:
        found.given_up = give_up_unknown(now)

    waiting = db.session.scalars(
        sa.select(Message.id).where(
            Message.status == "queued",
            Message.direction == "outbound",
            # Waiting since it was written, or since its time for one scheduled for later.
            sa.func.coalesce(Message.send_at, Message.created_at) < now - timedelta(seconds=queued_after),
        )
    ).all()
    found.requeued += [m for m in waiting if m not in found.requeued]
    if hand_over:
        for message_id in found.requeued:
            enqueue(message_id)
    return found


def give_up_unknown(now: datetime | None = None) -> list[int]:
    """`unknown` messages that no report settled within SEND_UNKNOWN_WAIT_SECONDS: given up as not
    confirmed and refunded, never resent. Their ids."""
    wait_ends = (now or utcnow()) - timedelta(seconds=current_app.config["SEND_UNKNOWN_WAIT_SECONDS"])
    stale = db.session.scalars(
        sa.select(Message.id).where(Message.status == "unknown", Message.claimed_at < wait_ends)
    ).all()
    return [message_id for message_id in stale if _give_up(message_id, wait_ends)]


def _give_up(message_id: int, wait_ends: datetime) -> bool:
    message = db.session.get(Message, message_id, with_for_update=True, populate_existing=True)
    if message is None or message.status != "unknown" or message.claimed_at is None:
        db.session.commit()
        return False
    if message.claimed_at >= wait_ends:  # a newer try or recovery since the select
        db.session.commit()
        return False
    waited = (utcnow() - message.claimed_at).total_seconds()
    log.warning("message %s: no report from the provider; given up as not confirmed", message_id)
    status.apply(message, "rejected", failure=status.unconfirmed(waited))
    credits.refund(db.session, message.conversation.organization, message, "Not confirmed by the network")
    db.session.commit()
    return True


def requeue_stale(older_than_seconds: float) -> list[int]:
    """Queued messages nobody picked up (the dispatcher was down): hand them over again."""
    return recover(older_than_seconds).requeued
