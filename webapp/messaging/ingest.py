"""Provider webhooks: applied at once, or stored first and applied by a worker.

Applying a webhook (a reply joined to its conversation, a status moved, the Inbox's markers and unread
counts) costs several times what storing it does. Where messages are sent by RQ workers
(WEBHOOK_INGEST=queued, the default with DISPATCH_MODE=rq: `make serve`), a verified webhook is stored
as it came (`webhook_event`) and committed before the provider is answered, then applied by a worker
from the `relay-webhooks` queue: the web processes answer a storm at the cost of one INSERT each and stay
free for the pages. Elsewhere (development, tests, one process) it is applied in the request, as before.

Never lost, never applied twice:
- the row is committed before the 2xx, so an acknowledged webhook is on disk; the provider retries
  anything else;
- applying it deletes the row in the same transaction, under a row lock that a second worker skips;
- a worker is told (an RQ job) unless one was told within the last TOLD_MS (`TOLD_KEY`, holding the
  told webhook's id): that job applies every webhook that waits untried (`drain`) until it sees its key
  gone, then once more, so any webhook stored while the key was there is applied by it (a web process
  that knows the key stands, and for how long, does not ask again meanwhile: TOLD_TRUSTED);
- what a worker could not apply (an error, Redis away so nobody was told) the clock's sweep applies
  (`sweep`), up to MAX_ATTEMPTS tries; replies are unique by the provider's message id and statuses only
  move forward, so a retried body changes nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from webapp import logs, metrics
from webapp.extensions import db
from webapp.messaging import dispatch, inbound, status
from webapp.models import WebhookEvent, upsert, utcnow
from webapp.providers import registry
from webapp.providers.base import InboundMessage, StatusReport

log = logging.getLogger("relay.ingest")
QUEUE_NAME = "relay-webhooks"
KINDS = ("inbound", "status")
# Tries of the sweep before a body is left for an operator (its row stays, with the last error).
MAX_ATTEMPTS = 5
SWEEP_BATCH = 500


@dataclass(frozen=True)
class Applied:
    to_dispatch: list[int] = field(default_factory=list)  # messages the webhook made us send (STOP's reply)
    duplicate: bool = False  # an inbound message stored before (the provider's retry)


def queued(config: Mapping[str, Any]) -> bool:
    """Whether webhooks are stored first and applied by a worker (WEBHOOK_INGEST)."""
    return config.get("WEBHOOK_INGEST") == "queued"


def apply(session: Session, kind: str, parsed: InboundMessage | StatusReport) -> Applied:
    """What the webhook says, done (not committed)."""
    if kind == "inbound":
        assert isinstance(parsed, InboundMessage)
        result = inbound.receive(session, parsed)
        return Applied(list(result.to_dispatch), result.duplicate)
    assert isinstance(parsed, StatusReport)
    failure = None
    if parsed.status in ("rejected", "undeliverable"):
        title = parsed.error_title or "Not delivered"
        failure = status.Failure(parsed.error_code, title, parsed.error_detail or "")
    message = status.receive_report(
        session, parsed.message_uuid, parsed.status, parsed.timestamp, failure, parsed.client_ref
    )
    if message is None:
        # Not one of ours (or long gone): acknowledged all the same, so that the provider stops.
        log.info("status %s for unknown message %s", parsed.status, parsed.message_uuid)
    return Applied()


def store(session: Session, provider: str, kind: str, body: bytes, now: datetime) -> int | None:
    """The verified body stored (not committed); its row's id, or None when the same body waits already."""
    values = {
        "provider": provider,
        "kind": kind,
        "body": body.decode("utf-8"),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "received_at": now,
    }
    return session.execute(_STORE, values).scalar_one_or_none()


# Built once with bound parameters, of the table rather than the mapped class: the one statement of a
# stored webhook's request, which SQLAlchemy's ORM-enabled INSERT built, keyed and ran through its bulk
# persistence anew each time (profiled: a third of the request's own CPU).
_events = WebhookEvent.__table__
_STORE = upsert.on_conflict(
    sa.insert(_events).values(
        provider=sa.bindparam("provider"),
        kind=sa.bindparam("kind"),
        body=sa.bindparam("body"),
        body_sha256=sa.bindparam("body_sha256"),
        received_at=sa.bindparam("received_at"),
        attempts=0,
    ),
    "ON CONFLICT (provider, kind, body_sha256) DO NOTHING",
).returning(_events.c.id)


# A worker was told of a stored webhook less than TOLD_MS ago: a webhook stored meanwhile needs no job of
# its own, that worker gathers it (process_job). In a storm most webhooks then cost the web one INSERT and
# no Redis command at all (below), not an RQ job (several Redis commands here, a job's bookkeeping in the
# worker), and the worker applies them a few at a time, one commit each. A reply waits at most
# GATHER_SECONDS more, well within the open page's 2-second poll. Should the job be lost, the key expires
# all the same: the next webhook tells a worker again, and the sweep stays the net.
TOLD_KEY = "relay:webhooks:told"
TOLD_MS = 500
GATHER_SECONDS = 0.1
# A web process that told a worker, or found one told, knows how long the key has left: until then a
# webhook it stores is gathered by that worker, so it asks Redis nothing (a round trip per webhook was a
# tenth of the request's CPU, profiled). It trusts that for this share of the time left, counted from
# before it asked (the key lives at least that long), the rest kept back for the clocks' drift.
TOLD_TRUSTED = 0.8
_TOLD_UNTIL = "relay.webhooks.told_until"  # app.extensions: this process's monotonic clock
# SET NX, or else how long the standing key has left: one round trip either way. -3: this call set it.
_TELL = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -3 end
return redis.call('PTTL', KEYS[1])
"""


def enqueue(event_id: int) -> None:
    """Tell a worker, after the commit that stored it, unless one was told within TOLD_MS (TOLD_KEY): that
    one gathers it; if Redis cannot be told, the sweep applies it."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    asked = time.monotonic()
    if asked < app.extensions.get(_TOLD_UNTIL, 0.0):
        return  # the key stands still (this process saw it, and how long it had left)
    try:
        webhooks = queue(app)
        left = int(webhooks.connection.register_script(_TELL)(keys=[TOLD_KEY], args=[event_id, TOLD_MS]))
        if left != -3:
            if left > 0:
                app.extensions[_TOLD_UNTIL] = asked + left * TOLD_TRUSTED / 1000
            return
        try:
            webhooks.enqueue(
                "webapp.messaging.ingest.process_job",
                event_id,
                logs.request_id(),
                job_id=f"webhook-{event_id}",
            )
        except Exception:
            webhooks.connection.delete(TOLD_KEY)  # nobody was told: the next webhook tells a worker
            raise
        app.extensions[_TOLD_UNTIL] = asked + TOLD_MS * TOLD_TRUSTED / 1000
    except Exception:
        log.exception("could not hand webhook %s to a worker; the sweep applies it", event_id)


def queue(app: Flask):  # type: ignore[no-untyped-def]
    from rq import Queue

    if "relay.rq.webhooks" not in app.extensions:
        app.extensions["relay.rq.webhooks"] = Queue(QUEUE_NAME, connection=dispatch.queue(app).connection)
    return app.extensions["relay.rq.webhooks"]


def process_job(event_id: int, request_id: str | None = None) -> None:
    """The RQ job: its stored webhook applied, then every other that waits untried (`drain`), every
    GATHER_SECONDS while its told key is there (those stored meanwhile told nobody else), and once more
    after it went; with a session of its own."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        with logs.bound(request_id):
            process(event_id)
            ends = time.monotonic() + DRAIN_SECONDS
            while _told(app, event_id) and time.monotonic() < ends:
                drain()
                time.sleep(GATHER_SECONDS)
            drain()
    finally:
        db.session.remove()


def _told(app: Flask, event_id: int) -> bool:
    """Whether the told key is still this job's (not gone, nor another's since)."""
    try:
        return queue(app).connection.get(TOLD_KEY) == str(event_id).encode()
    except Exception:  # Redis away: nobody else can have been told either; the last drain follows
        return False


# A drain gives way to a new job after this long, so that a storm that never ends is not one job that
# never does.
DRAIN_SECONDS = 60.0


def drain(seconds: float = DRAIN_SECONDS) -> int:
    """The stored webhooks that wait untried applied, oldest first, BATCH at a time (`process`), until
    none is left; how many batches were applied. Those a worker holds are skipped, those that failed are
    the sweep's. Still some after `seconds`: a worker is told again."""
    ends = time.monotonic() + seconds
    applied = 0
    while True:
        first = db.session.scalar(
            sa.select(WebhookEvent.id)
            .where(WebhookEvent.attempts == 0)
            .order_by(WebhookEvent.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        db.session.rollback()
        if first is None:
            return applied
        if time.monotonic() >= ends:
            enqueue(first)
            return applied
        applied += process(first)


def process(event_id: int) -> bool:
    """The stored webhook applied and its row deleted, in one transaction; False when there was nothing
    to do (applied already, or another worker holds it now). A failure is counted on the row, for the
    sweep to try again.

    When more wait behind it (a storm), up to BATCH of them are applied with it in the same transaction:
    one commit and one stamp of the Inbox's markers for all instead of one each, which is most of what
    a status report costs. Their own jobs then find nothing to do. A batch that fails is rolled back
    whole and this webhook applied alone, so that one bad body holds back none of the others (each has
    its job, and the sweep)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    session = db.session
    batch = _lock(session, event_id, BATCH if _batching_is_ours(session) else 1)
    if len(batch) > 1:
        try:
            done = _apply_all(app, session, batch)
        except Exception:
            session.rollback()
            log.warning(
                "a batch of %s webhooks could not be applied; webhook %s alone now", len(batch), event_id
            )
        else:
            _after(done)
            return True
        batch = _lock(session, event_id, 1)
    if not batch:
        session.rollback()
        return False
    try:
        done = _apply_all(app, session, batch)
    except Exception as error:
        session.rollback()
        log.exception("webhook %s could not be applied; the sweep tries it again", event_id)
        session.execute(
            sa.update(WebhookEvent)
            .where(WebhookEvent.id == event_id)
            .values(attempts=WebhookEvent.attempts + 1, last_error=f"{type(error).__name__}: {error}"[:500])
        )
        session.commit()
        return False
    _after(done)
    return True


# Webhooks applied in one transaction at most: enough to share a commit among many in a storm, few enough
# that the conversations a batch locks are not held from the pages for long (a few milliseconds each).
BATCH = 25


# One worker at a time applies a batch (a PostgreSQL advisory lock held until its transaction ends). Each
# inbound reply locks its conversation until the commit, so two batches could each hold a conversation
# the other comes to next; a single webhook holds one only, and waits for nothing but the clock at commit.
BATCH_LOCK = 0x72656C6179_02


def _batching_is_ours(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: one writer at a time anyway
    return bool(session.execute(sa.select(sa.func.pg_try_advisory_xact_lock(BATCH_LOCK))).scalar())


def _lock(session: Session, event_id: int, most: int) -> list[WebhookEvent]:
    """This stored webhook, and up to most - 1 others that wait untried, oldest first, locked (those
    another worker holds are skipped), in the order they came."""
    wanted = WebhookEvent.id == event_id
    if most > 1:
        wanted = sa.or_(wanted, WebhookEvent.attempts == 0)
    found = session.scalars(
        sa.select(WebhookEvent)
        .where(wanted)
        .order_by(sa.case((WebhookEvent.id == event_id, 0), else_=1), WebhookEvent.id)
        .limit(most)
        .with_for_update(skip_locked=True)
    ).all()
    # In the order they came, so that a conversation's replies join it in that order.
    return sorted(found, key=lambda event: event.id)


@dataclass(frozen=True)
class _Done:
    kind: str
    received_at: datetime
    event_id: int
    applied: Applied


def _apply_all(app: Flask, session: Session, events: list[WebhookEvent]) -> list[_Done]:
    """The webhooks applied and their rows deleted, committed together; raises on the first failure."""
    done = []
    for event in events:
        provider = registry.texting(app, event.provider)
        body = event.body.encode("utf-8")
        parsed = provider.parse_inbound(body) if event.kind == "inbound" else provider.parse_status(body)
        done.append(_Done(event.kind, event.received_at, event.id, apply(session, event.kind, parsed)))
    session.execute(sa.delete(WebhookEvent).where(WebhookEvent.id.in_([d.event_id for d in done])))
    session.commit()
    return done


def _after(done: list[_Done]) -> None:
    """After the commit: how far behind the threads are (one line and one histogram per webhook, from
    its arrival to now), and the sends the webhooks made (the answer to STOP or HELP)."""
    now = utcnow()
    for one in done:
        delay = max(0.0, (now - one.received_at).total_seconds())
        metrics.webhook_applied(one.kind, delay)
        fields = logs.fields(event_id=one.event_id, kind=one.kind, delay_ms=round(delay * 1000, 1))
        log.info("webhook applied", extra=fields)
    for one in done:
        for message_id in one.applied.to_dispatch:
            dispatch.enqueue(message_id)


def sweep(now: datetime, older_than: timedelta) -> str:
    """Stored webhooks nobody applied within `older_than` (a worker failed, Redis was away), applied here;
    what was done, in a few words."""
    waiting = db.session.scalars(
        sa.select(WebhookEvent.id)
        .where(WebhookEvent.received_at <= now - older_than, WebhookEvent.attempts < MAX_ATTEMPTS)
        .order_by(WebhookEvent.id)
        .limit(SWEEP_BATCH)
    ).all()
    db.session.rollback()
    applied = sum(process(event_id) for event_id in waiting)
    if not waiting:
        return ""
    return f"{applied} of {len(waiting)} waiting webhook(s) applied"
