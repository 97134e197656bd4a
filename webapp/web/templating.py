"""What every template can use: filters for numbers and times, and the navigation rights."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from flask import Flask
from flask_login import current_user
from markupsafe import Markup, escape

from webapp import phones, zones
from webapp.accounts import access, landing
from webapp.extensions import db
from webapp.messaging import assignment, sms_words, status
from webapp.models import CHANNEL_LABELS, Organization
from webapp.notifications import waiting
from webapp.web import interview_status


def register(app: Flask) -> None:
    app.jinja_env.filters["phone"] = phones.display
    app.jinja_env.filters["region_name"] = phones.region_name
    app.jinja_env.filters["datetime"] = _datetime
    app.jinja_env.filters["localtime"] = _localtime
    app.jinja_env.filters["datetime_local"] = _datetime_local
    app.jinja_env.filters["status_label"] = lambda s: status.LABELS.get(s, s)
    app.jinja_env.filters["channel_label"] = lambda c: CHANNEL_LABELS.get(c, c)
    app.jinja_env.filters["failure_text"] = status.explain
    app.jinja_env.filters["invitation_state"] = interview_status.invitation_state
    app.jinja_env.filters["linkify"] = linkify
    app.jinja_env.filters["assignment_line"] = assignment.line

    app.jinja_env.globals["low_credits"] = _low_credits
    app.jinja_env.globals["sms_words"] = sms_words.describe
    app.jinja_env.globals["plain_words"] = sms_words.describe_plain

    @app.context_processor
    def navigation() -> dict[str, Any]:
        signed_in = current_user.is_authenticated
        return {
            "nav_admin": signed_in and access.sees_admin(current_user),
            "nav_staff": signed_in and current_user.is_staff,
            # Called by the page's header only (fragments skip the queries): Jobs, Inbox, Communities.
            "nav_sections": lambda: landing.sections(db.session, current_user) if signed_in else landing.NONE,
            # The top bar's count of what waits for the user (webapp.notifications.waiting).
            "waiting_now": lambda: waiting.waiting(db.session, current_user),
            "waiting_poll_seconds": f"{float(app.config['WAITING_POLL_SECONDS']):g}",
        }


def _datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M", zone: tzinfo | None = None) -> str:
    """The time in `zone`, or else in the signed-in reader's organisation's zone, named after it."""
    if not value:
        return ""
    if zone is None:
        zone = zones.of_reader(current_user) if current_user.is_authenticated else UTC
    local = value.astimezone(zone)
    if "%H" not in fmt and "%I" not in fmt:
        return local.strftime(fmt)  # a day needs no zone after it ("01 Dec 2026")
    return local.strftime(fmt) + " " + (local.tzname() or "UTC")


def _localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M", zone: str | None = None) -> str:
    """The time in `zone`, or else in the signed-in user's organisation's zone (UTC for staff)."""
    if zone is None:
        zone = zones.name_of_reader(current_user) if current_user.is_authenticated else zones.DEFAULT
    return zones.format_time(value, zone, fmt)


def _datetime_local(value: datetime | None, zone: str | None = None) -> str:
    """The time as an <input type="datetime-local"> holds it ("2026-12-08T09:00"), in `zone` or the
    reader's."""
    if value is None:
        return ""
    if zone is None:
        zone = zones.name_of_reader(current_user) if current_user.is_authenticated else zones.DEFAULT
    return f"{zones.local(value, zone):%Y-%m-%dT%H:%M}"


def _low_credits(organization: Organization | None) -> int | None:
    """The shared balance when it is at or below the threshold (for the banners), else None."""
    if organization is None or not organization.texts:
        return None
    from webapp.billing import credits

    return credits.low_balance(db.session, organization)


# A web address in text already escaped: http(s) only (never javascript: or data:), up to a space or an
# escaped quote or angle bracket; the punctuation that usually ends a sentence is left out of it.
_URL = re.compile(r"https?://[^\s<>\"]+?(?=[.,;:!?)\]]*(?:\s|$|&lt;|&gt;|&#34;|&#39;|&quot;))")


def linkify(text: str | None) -> Markup:
    """Plain text (a note) for HTML: everything escaped, then its web addresses made links that open
    without passing on where they came from."""
    escaped = str(escape(text or ""))
    return Markup(
        _URL.sub(lambda m: f'<a href="{m[0]}" rel="noopener noreferrer nofollow">{m[0]}</a>', escaped)
    )
