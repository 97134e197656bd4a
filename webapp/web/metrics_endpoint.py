"""GET /metrics: the Prometheus scrape (webapp.metrics says what it holds and who may read it).

Anyone else gets 404, as for an address that does not exist: the endpoint does not tell a stranger
that there is something to guess a token for (a 403 would)."""

from __future__ import annotations

import logging

from flask import Flask, Response, abort, request

from webapp import metrics
from webapp.extensions import db

log = logging.getLogger("relay.metrics")


def register(app: Flask) -> None:
    @app.get("/metrics")
    def scrape() -> Response:
        if not metrics.allowed(app.config, request.remote_addr, request.headers.get("Authorization")):
            abort(404)
        counts = metrics.message_counts(db.session)
        db.session.rollback()  # a read: nothing to keep, and no transaction left open
        body = metrics.render(counts, _rq_length(app))
        return Response(body, content_type=metrics.CONTENT_TYPE)


def _rq_length(app: Flask) -> int | None:
    """Jobs waiting in the RQ queue; None without Redis (or when it does not answer: the database's
    count still tells how much waits)."""
    if app.config.get("DISPATCH_MODE") != "rq" or not app.config.get("REDIS_URL"):
        return None
    from webapp.messaging import dispatch

    try:
        return int(dispatch.queue(app).count)
    except Exception as error:
        log.warning("metrics: the RQ queue's length could not be read (%s)", type(error).__name__)
        return None
