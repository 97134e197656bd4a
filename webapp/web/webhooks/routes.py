"""Vonage calls these: inbound messages and delivery receipts. The only JSON endpoints, the only
CSRF-exempt ones; each request is signed (webapp.webhooks.signature) or refused with 401."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, Response, current_app, jsonify, request

from webapp.extensions import csrf, db
from webapp.messaging import dispatch, inbound, status
from webapp.providers import vonage_signature as signature
from webapp.web.webhooks import payloads

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)


log = logging.getLogger("relay.webhooks")
MAX_BODY = 64 * 1024
T = TypeVar("T")


def _signed_body() -> bytes | Response:
    """The raw body, if it is small enough and signed by Vonage; else the error response."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _error(413, "body over 64 KB")
    # Read one byte more than allowed, so that a body without a Content-Length is measured too.
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _error(413, "body over 64 KB")
    try:
        signature.verify(
            request.headers.get("Authorization"), body, current_app.config["VONAGE_SIGNATURE_SECRET"]
        )
    except signature.InvalidSignature as exc:
        log.warning("webhook refused from %s: %s", request.remote_addr, exc)
        return _error(401, "invalid signature")
    return body


def _error(code: int, reason: str) -> Response:
    response = jsonify(error=reason)
    response.status_code = code
    return response


def _verified(parse: Callable[[bytes], T]) -> T | Response:
    """The signed body, parsed; else the 413, 401 or 400 to answer (and nothing stored)."""
    body = _signed_body()
    if isinstance(body, Response):
        return body
    try:
        return parse(body)
    except payloads.BadPayload as exc:
        return _error(400, str(exc))


@bp.post("/vonage/inbound")
def vonage_inbound() -> Response:
    parsed = _verified(payloads.inbound)
    if isinstance(parsed, Response):
        return parsed
    result = inbound.receive(db.session, parsed)
    db.session.commit()
    for message_id in result.to_dispatch:
        dispatch.enqueue(message_id)
    return Response(status=204 if result.duplicate else 200)


@bp.post("/vonage/status")
def vonage_status() -> Response:
    report = _verified(payloads.status)
    if isinstance(report, Response):
        return report
    failure = None
    if report.status in ("rejected", "undeliverable"):
        failure = status.Failure(
            report.error_code, report.error_title or "Not delivered", report.error_detail or ""
        )
    message = status.receive_report(
        db.session, report.message_uuid, report.status, report.timestamp, failure, report.client_ref
    )
    db.session.commit()
    if message is None:
        # Not one of ours (or long gone): acknowledge, so that Vonage does not send it again and again.
        log.info("status %s for unknown message %s", report.status, report.message_uuid)
    return Response(status=204)
