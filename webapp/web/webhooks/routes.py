"""Providers call these: `POST /webhooks/<provider>/inbound` and `/status`, for every texting provider
the registry knows (webapp.providers.registry). The only JSON endpoints, the only CSRF-exempt ones.
Each request is verified by its provider or refused with 401, and read by it into the port's types or
refused with 400; nothing is stored from a refused request. What a verified webhook says is applied
here, or stored and applied by a worker (webapp.messaging.ingest, WEBHOOK_INGEST)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, Flask, Request, Response, abort, current_app, jsonify, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin

from webapp.extensions import csrf, db
from webapp.messaging import dispatch, ingest
from webapp.models import utcnow
from webapp.providers import registry
from webapp.providers.base import BadPayload, InboundMessage, Provider, StatusReport

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)


class _CookieSessionsButWebhooks(SecureCookieSessionInterface):
    """Flask's signed-cookie session (the server-side session's token) for every request but a
    provider's webhook: a provider sends no cookie and nothing of a webhook is anyone's session, so its
    session starts empty, is not read from a cookie and is never saved (that was a tenth of the
    request's own CPU, profiled). Empty rather than Flask's null session, which refuses writes: an error
    page for a webhook (404, 503) still renders the base template and its CSRF token."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if _is_webhook(request):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if _is_webhook(request):
            return
        super().save_session(app, session, response)


def _is_webhook(request: Request) -> bool:
    return request.path.startswith(f"{bp.url_prefix}/")


def register(app: Flask) -> None:
    """The webhooks' blueprint, and the app's sessions that leave them out."""
    app.register_blueprint(bp)
    app.session_interface = _CookieSessionsButWebhooks()


log = logging.getLogger("relay.webhooks")
MAX_BODY = 64 * 1024
T = TypeVar("T")
Parsed = InboundMessage | StatusReport


def _provider(name: str) -> Provider:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if name not in app.config["TEXTING_PROVIDERS"]:
        abort(404)
    return registry.texting(app, name)


def _body() -> bytes | Response:
    """The raw body, if it is small enough; else the 413 to answer."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _error(413, "body over 64 KB")
    # Read one byte more than allowed, so that a body without a Content-Length is measured too.
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _error(413, "body over 64 KB")
    return body


def _error(code: int, reason: str) -> Response:
    response = jsonify(error=reason)
    response.status_code = code
    return response


def _verified(name: str, parse: Callable[[Provider, bytes], T]) -> tuple[bytes, T] | Response:
    """The body, verified and parsed by the provider; else the 404, 413, 401 or 400 to answer."""
    provider = _provider(name)
    body = _body()
    if isinstance(body, Response):
        return body
    if not provider.verify(request.headers, body):
        log.warning("%s webhook refused from %s", name, request.remote_addr)
        return _error(401, "invalid signature")
    try:
        return body, parse(provider, body)
    except BadPayload as exc:
        return _error(400, str(exc))


def _receive(name: str, kind: str, parse: Callable[[Provider, bytes], Parsed]) -> Response:
    verified = _verified(name, parse)
    if isinstance(verified, Response):
        return verified
    body, parsed = verified
    if ingest.queued(current_app.config):
        # Stored and committed before the answer; a worker applies it (webapp.messaging.ingest).
        event_id = ingest.store(db.session, name, kind, body, utcnow())
        db.session.commit()
        if event_id is None:
            return Response(status=204)  # the same body waits already: the provider's retry
        ingest.enqueue(event_id)
        return Response(status=200 if kind == "inbound" else 204)
    applied = ingest.apply(db.session, kind, parsed)
    db.session.commit()
    for message_id in applied.to_dispatch:
        dispatch.enqueue(message_id)
    return Response(status=200 if kind == "inbound" and not applied.duplicate else 204)


@bp.post("/<provider>/inbound")
def receive_inbound(provider: str) -> Response:
    return _receive(provider, "inbound", lambda p, body: p.parse_inbound(body))


@bp.post("/<provider>/status")
def receive_status(provider: str) -> Response:
    return _receive(provider, "status", lambda p, body: p.parse_status(body))
