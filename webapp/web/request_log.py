"""One log line per request, its request id, and its counts (webapp.logs, webapp.metrics).

The request id is the client's (or the proxy's) X-Request-ID when it is sane, else a new one; it is
answered in X-Request-ID, carried by every line logged during the request and into the jobs that send
what the request queued. The line names the route's rule (/book/<token>), never the path or the query,
which can hold a booking link's token; the user is named by ids only.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request

from webapp import logs, metrics

log = logging.getLogger("relay.request")
HEADER = "X-Request-ID"
# The webhooks' endpoints and the kind each receives (relay_webhooks_total).
WEBHOOK_KINDS = {"webhooks.receive_inbound": "inbound", "webhooks.receive_status": "status"}


def register(app: Flask) -> None:
    """Before every other hook, so that their lines (and an early refusal's) carry the request id."""
    providers = app.config["TEXTING_PROVIDERS"]

    @app.before_request
    def start() -> None:
        g.relay_started = time.perf_counter()
        g.relay_request_id = logs.request_id_from(request.headers.get(HEADER))
        logs.REQUEST_ID.set(g.relay_request_id)

    @app.after_request
    def finish(response: Response) -> Response:
        request_id = g.get("relay_request_id") or logs.new_request_id()
        response.headers[HEADER] = request_id
        started = g.get("relay_started")
        ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
        rule = request.url_rule.rule if request.url_rule is not None else None
        endpoint = request.endpoint or "none"
        user_id, organization_id = _who()
        log.info(
            "request",
            extra=logs.fields(
                method=request.method,
                route=rule,
                endpoint=request.endpoint,
                status=response.status_code,
                ms=ms,
                user_id=user_id,
                organization_id=organization_id,
            ),
        )
        metrics.http_request(request.method, endpoint, response.status_code)
        kind = WEBHOOK_KINDS.get(endpoint)
        if kind is not None:
            named = (request.view_args or {}).get("provider")
            metrics.webhook(named if named in providers else "other", kind, response.status_code)
        return response

    @app.teardown_request
    def forget(_error: BaseException | None) -> None:
        # The thread serves other requests next: none of their lines may carry this one's id.
        logs.REQUEST_ID.set(None)

    def log_exception(exc_info: Any) -> None:
        # Flask's own says "Exception on <path>": the path may hold a token. The rule instead.
        rule = request.url_rule.rule if request.url_rule is not None else None
        app.logger.error("Exception on %s [%s]", rule, request.method, exc_info=exc_info)

    app.log_exception = log_exception  # type: ignore[method-assign]


def _who() -> tuple[int | None, int | None]:
    """The signed-in user's id and organisation's id, if this request loaded a user (a request nobody
    signed in to, a webhook, a static file: none, and no query)."""
    user = g.get("_login_user")  # Flask-Login's: set once something asked for current_user
    # Only our User is mapped (the anonymous user is not); asking is_authenticated could load it.
    state = sa.inspect(user, raiseerr=False) if user is not None else None
    if state is None or state.identity is None:
        return None, None
    if "organization_id" in state.dict:
        return state.identity[0], state.dict["organization_id"]
    session = state.session
    try:
        # The request expired it (expire_all) and nothing read it since: one look-up by primary key (and
        # no flush of whatever the request left unsaved: that is for its own commit or rollback).
        if session is None:
            return state.identity[0], None
        with session.no_autoflush:
            return state.identity[0], user.organization_id
    except Exception:  # the row went (a deleted account), the database is down: the line still goes
        return state.identity[0], None
