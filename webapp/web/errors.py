"""Error pages that fit the app: 400, 403, 404, 405, 413, 429, 500, the CSRF failure, and 503 while the
database cannot be reached."""

from __future__ import annotations

import contextlib
import json

import sqlalchemy as sa
from flask import Flask, Response, current_app, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.extensions import db
from webapp.web.pages import wants_fragment

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable for a moment",
}

EXPLANATIONS = {
    400: "The request could not be understood.",
    403: "You do not have the right to do this.",
    404: "It does not exist, or it is not shared with you.",
    405: "This address does not accept that kind of request.",
    413: "What was sent is larger than we accept: a file may be at most 10 MB. Scan it at a lower "
    "resolution, or save it as a PDF, and try again.",
    429: "Too many attempts in a short time. Wait a while and try again.",
    500: "We could not finish this. Nothing you typed was saved twice; try again in a moment.",
    503: "Relay cannot reach its database just now. Nothing was changed; try again in a moment.",
}

# What a client is told to wait before trying again while the database is away (a restart, a failover).
RETRY_AFTER_SECONDS = 5


# A request body larger than this is not read to its end after a 413: the connection is closed on it.
DRAIN_LIMIT = 256 * 1024 * 1024


def _drain_request_body() -> None:
    """Read and drop the rest of a body that was refused as too large (413), so that the client gets
    our page. Answering while the upload is still coming and then closing the socket with unread data
    makes the kernel send a reset, and the browser shows "connection reset" instead of the page."""
    stream = request.environ.get("wsgi.input")
    if stream is None:
        return
    length = request.content_length
    remaining = DRAIN_LIMIT if length is None else min(length, DRAIN_LIMIT)
    try:
        while remaining > 0:
            chunk = stream.read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            remaining -= len(chunk)
    except (OSError, ValueError):
        pass  # the client went away: nothing left to answer


def _page(code: int, detail: str | None = None) -> Response:
    text = detail or EXPLANATIONS.get(code, "")
    if wants_fragment():
        # An htmx request swaps into a part of the page: a whole error page there would be a page in
        # a page. Swap nothing and say it where the user looks (static/js/app.js shows it as a flash).
        response = make_response(text, code)
        response.headers["HX-Reswap"] = "none"
        response.headers["HX-Trigger"] = json.dumps({"relay-error": {"message": text}})
        response.vary.add("HX-Request")
        return response
    body = render_template("errors/error.html", code=code, title=TITLES.get(code, "Error"), text=text)
    return make_response(body, code)


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> Response:
        return _page(400, "The form had expired or was sent from elsewhere. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = error.code or 500
        if code == 413:
            _drain_request_body()
        if code >= 500:
            # Unhandled exceptions arrive here as InternalServerError (Flask logs them first).
            db.session.rollback()
        # Werkzeug's default descriptions are generic; ours are set explicitly with abort(..., description=).
        default = type(error).description
        detail = error.description if error.description != default else None
        response = _page(code, detail)
        if code == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(sa.exc.DBAPIError)
    def database_away(error: sa.exc.DBAPIError) -> Response:
        # OperationalError: the server cannot be reached, or closed the connection (a restart). Another
        # DBAPIError only when it broke the connection; anything else is a bug, answered 500 as before.
        if not isinstance(error, sa.exc.OperationalError) and not error.connection_invalidated:
            raise error
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            db.session.rollback()
        # The page's header asks who is signed in, which asks the database again: show it to no one.
        current_app.login_manager._update_request_context_with_user()  # type: ignore[attr-defined]
        response = _page(503)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
