"""Handing a queued message to its provider, once.

`enqueue` runs after the commit that stored the message: through RQ on Redis when REDIS_URL is set
(`flask --app wsgi worker`), else on a thread pool in this process. `deliver` claims the message with
one conditional UPDATE (queued → sending, under the row lock), so a job that runs twice sends once.
Temporary failures are retried with backoff; a rejection or the last failed try refunds the credits.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, current_app

from webapp.extensions import db
from webapp.messaging import credits, optouts, status
from webapp.models import Message, utcnow
from webapp.providers import registry
from webapp.providers.base import Outbound, ProviderError, Rejected, TemporaryFailure

log = logging.getLogger("relay.dispatch")
QUEUE_NAME = "relay"


def enqueue(message_id: int) -> Future[None] | None:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    mode = app.config["DISPATCH_MODE"]
    if mode == "inline":
        deliver(message_id)
        return None
    try:
        if mode == "rq":
            queue(app).enqueue(
                "webapp.messaging.dispatch.deliver_job", message_id, job_id=f"message-{message_id}"
            )
            return None
        return _executor(app).submit(_deliver_in_app, app, message_id)
    except Exception:
        # The message is stored and paid for; `flask --app wsgi dispatch requeue` sends it later.
        log.exception("could not hand message %s to the dispatcher; it stays queued", message_id)
        return None


def deliver_job(message_id: int) -> None:
    """The RQ job: one delivery, with a session of its own whatever happened to the previous job's."""
    try:
        deliver(message_id)
    finally:
        db.session.remove()


def requeue_stale(older_than_seconds: float) -> list[int]:
    """Queued messages nobody picked up (the dispatcher was down): hand them over again."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    ids = list(
        db.session.scalars(
            sa.select(Message.id).where(
                Message.status == "queued", Message.direction == "outbound", Message.created_at < cutoff
            )
        )
    )
    for message_id in ids:
        enqueue(message_id)
    return ids


def queue(app: Flask):  # type: ignore[no-untyped-def]
    from redis import Redis
    from rq import Queue

    if "relay.rq" not in app.extensions:
        app.extensions["relay.rq"] = Queue(QUEUE_NAME, connection=Redis.from_url(app.config["REDIS_URL"]))
    return app.extensions["relay.rq"]


def _executor(app: Flask) -> ThreadPoolExecutor:
    if "relay.executor" not in app.extensions:
        app.extensions["relay.executor"] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="relay-send")
    return app.extensions["relay.executor"]


def _deliver_in_app(app: Flask, message_id: int) -> None:
    with app.app_context():
        try:
            deliver(message_id)
        except Exception:
            log.exception("delivering message %s failed", message_id)
            raise


def claim(message_id: int) -> bool:
    """queued → sending, atomically; False when another run has it already."""
    result = db.session.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.status == "queued")
        .values(status="sending", attempts=Message.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


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


def deliver(message_id: int) -> None:
    if not claim(message_id):
        log.info("message %s is not queued any more; not sending it again", message_id)
        return
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    message = db.session.get(Message, message_id)
    assert message is not None
    # A STOP may have arrived while the message waited in the queue. (Automatic replies, which have no
    # author — the answer to HELP — still go: carriers expect HELP answered even after STOP.)
    texted = message.channel != "email" and message.author_id is not None and message.conversation is not None
    if texted and optouts.active(db.session, message.conversation.organization_id, message.to_addr):
        _fail(
            message,
            Rejected("Not sent: the number opted out", "It texted STOP before this left."),
            refund_note="Recipient opted out",
        )
        return
    outbound = outbound_for(message)
    provider = registry.for_channel(app, message.channel)
    attempts = max(1, app.config["SEND_MAX_ATTEMPTS"])
    backoff = app.config["SEND_BACKOFF_SECONDS"]
    last: ProviderError | None = None
    for attempt in range(1, attempts + 1):
        try:
            provider_id = provider.send(outbound)
        except Rejected as exc:
            _fail(message, exc, refund_note="Refused by the provider")
            return
        except Exception as exc:
            # A 429, 5xx or timeout, or something we did not foresee: never leave it "sending" for ever.
            if not isinstance(exc, TemporaryFailure):
                log.exception("message %s: unexpected error from the provider", message_id)
                exc = TemporaryFailure("Unexpected error", str(exc)[:500])
            last = exc
            log.warning("message %s attempt %s/%s: %s", message_id, attempt, attempts, exc)
            if attempt < attempts:
                time.sleep(backoff * 2 ** (attempt - 1))
            continue
        # A delivery receipt may have overtaken us (found the message by client_ref): read the row
        # again under its lock, so that we only ever move its status forward.
        db.session.refresh(message, with_for_update=True)
        message.provider_id = message.provider_id or provider_id
        status.apply(message, "sent" if message.channel == "email" else "submitted")
        db.session.commit()
        return
    assert last is not None
    _fail(
        message,
        TemporaryFailure(f"Not sent after {attempts} attempts: {last.title}", last.detail, last.code),
        refund_note="Provider unavailable",
    )


def _fail(message: Message, error: ProviderError, refund_note: str) -> None:
    db.session.refresh(message, with_for_update=True)
    status.apply(message, "rejected", failure=status.Failure(error.code, error.title, error.detail))
    credits.refund(db.session, message.conversation.organization, message, refund_note)
    db.session.commit()
