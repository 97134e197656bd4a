"""What every template can use: filters for numbers and times, and the navigation rights."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from flask import Flask
from flask_login import current_user

from webapp import access, phones
from webapp.messaging import status
from webapp.models import CHANNEL_LABELS


def register(app: Flask) -> None:
    app.jinja_env.filters["phone"] = phones.display
    app.jinja_env.filters["region_name"] = phones.region_name
    app.jinja_env.filters["datetime"] = _datetime
    app.jinja_env.filters["status_label"] = lambda s: status.LABELS.get(s, s)
    app.jinja_env.filters["channel_label"] = lambda c: CHANNEL_LABELS.get(c, c)
    app.jinja_env.filters["failure_text"] = status.explain

    @app.context_processor
    def navigation() -> dict[str, Any]:
        signed_in = current_user.is_authenticated
        return {
            "nav_admin": signed_in and access.sees_admin(current_user),
            "nav_staff": signed_in and current_user.is_staff,
        }


def _datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M", zone: tzinfo | None = None) -> str:
    """The time in the reader's zone (UTC until users have one), named after it."""
    if not value:
        return ""
    local = value.astimezone(zone or UTC)
    return local.strftime(fmt) + " " + (local.tzname() or "UTC")
