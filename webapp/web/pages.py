"""Deciding between a whole page and a fragment, in one place."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request


def wants_fragment() -> bool:
    """An htmx swap wants the fragment; boosted links and history restores want the whole page."""
    hx = getattr(request, "htmx", None)
    return bool(hx) and not hx.boosted and not hx.history_restore_request


def render(page: str, fragment: str, status: int = 200, **context: Any) -> Response:
    """Render the page, or the partial that the page includes, for the same context."""
    body = render_template(fragment if wants_fragment() else page, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response
