"""/book/<token>: the candidate picks, changes or cancels their interview. Public, no sign-in; the token
is the only key, so every answer is about that invitation alone, and a link that does not work says so
kindly without saying whose it was."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from webapp import zones
from webapp.extensions import db
from webapp.interviews import booking, invitations, slots
from webapp.messaging import dispatch
from webapp.models import InterviewSlot, Invitation, Message, utcnow
from webapp.models.interviews import MAX_CONFIRMATIONS
from webapp.web import refusals
from webapp.web.booking.forms import BookForm

bp = Blueprint("booking", __name__, template_folder="templates")


@bp.before_request
def rate_limit() -> Response | None:
    limit = booking.Limit(
        per_address=current_app.config["BOOKING_MAX_REQUESTS_PER_ADDRESS"],
        window=timedelta(seconds=current_app.config["BOOKING_WINDOW_SECONDS"]),
        per_token=current_app.config["BOOKING_MAX_REQUESTS_PER_TOKEN"],
    )
    token = (request.view_args or {}).get("token")
    if booking.visit(db.session, request.remote_addr or "", limit, utcnow(), token):
        return None
    response = make_response(render_template("booking/closed.html", reason="busy", company=None), 429)
    response.headers["Retry-After"] = str(current_app.config["BOOKING_WINDOW_SECONDS"])
    return response


@bp.after_request
def private(response: Response) -> Response:
    # Not for search engines, and the token in the address goes nowhere else (a link on the page, a
    # video call's site, must not learn it from the Referer).
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _zone(invitation: Invitation) -> tuple[str, str]:
    org = invitation.application.job.organization
    return booking.candidate_zone(invitation, request.values.get("tz"), org.time_zone)


def _page(token: str, invitation: Invitation, error: str | None = None) -> Response:
    now = utcnow()
    zone, source = _zone(invitation)
    job = invitation.application.job
    offered = booking.offered(db.session, invitation, now)
    booked = invitation.slot if invitation.state == "booked" else None
    days = _by_day(offered, zone)
    context: dict[str, Any] = {
        "token": token,
        "invitation": invitation,
        "company": job.organization.display_sender,
        "job": job,
        "first_name": invitation.application.candidate.first_name,
        "booked": booked,
        "booked_when": booking.when(booked, zone, "%A %d %B %Y, %H:%M") if booked else None,
        "days": days,
        # Some times are on another clock than the candidate's (in person, elsewhere): the note says so.
        "elsewhere": any(t.different for _, choices in days for _, t in choices),
        "video": any(s.is_link for s in offered),
        "zone": zone,
        "zone_source": source,
        "tz": request.values.get("tz") if source == "browser" else None,
        "error": error,
    }
    return make_response(render_template("booking/page.html", **context))


Day = tuple[str, list[tuple[InterviewSlot, slots.Shown]]]


def _by_day(offered: list[InterviewSlot], zone: str) -> list[Day]:
    """The slots under their day as their clock reads it: the place's for an interview in person, the
    candidate's for a video call."""
    days: list[Day] = []
    this_year = zones.local(utcnow(), zone).year
    for slot in offered:
        shown = booking.when(slot, zone, "%H:%M")
        local = zones.local(slot.starts_at, slots.zone_of(slot) if shown.different else zone)
        label = local.strftime("%A %d %B" if local.year == this_year else "%A %d %B %Y")
        if not days or days[-1][0] != label:
            days.append((label, []))
        days[-1][1].append((slot, shown))
    return days


def _closed(invitation: Invitation | None, reason: str) -> Response:
    company = invitation.application.job.organization.display_sender if invitation else None
    body = render_template("booking/closed.html", reason=reason, company=company)
    return make_response(body, 404 if reason in ("unknown", "unsent") else 200)


def _invitation(token: str) -> Invitation:
    """The link's invitation while it books; else the page says why it does not (raised)."""
    invitation = booking.find(db.session, token)
    reason = booking.closed_reason(invitation, utcnow())
    if reason or invitation is None:
        abort(_closed(invitation, reason or "unknown"))
    return invitation


def _back(token: str) -> Response:
    tz = request.values.get("tz")
    return redirect(url_for("booking.page", token=token, tz=tz if zones.is_known(tz) else None), 303)


def _confirming(token: str, invitation: Invitation) -> tuple[datetime, str, str]:
    """Now, the zone a confirmation gives the time in, and the link it gives to change it."""
    zone, _ = _zone(invitation)
    return utcnow(), zone, invitations.booking_url(current_app.config["PUBLIC_BASE_URL"], token)


@bp.get("/book/<token>")
def page(token: str) -> Response:
    return _page(token, _invitation(token))


@bp.post("/book/<token>")
def book(token: str) -> Response:
    invitation, form = _invitation(token), BookForm()
    slot, message = refusals.submit(
        form,
        lambda: booking.book_and_confirm(
            db.session, invitation, form.slot_id, *_confirming(token, invitation)
        ),
        lambda: _page(token, invitation, refusals.first_error(form)),
        status=409,  # someone else was first, or the time was taken off
    )
    if slot is None:  # the time the link holds already: nothing changed, nothing to confirm
        flash("This time is already yours: nothing changed.", "success")
        return _back(token)
    return _told(token, invitation, message, "Your interview is booked.")


@bp.post("/book/<token>/cancel")
def cancel(token: str) -> Response:
    invitation = _invitation(token)
    slot, message = booking.cancel_and_confirm(db.session, invitation, *_confirming(token, invitation))
    db.session.commit()
    if slot is None:  # nothing was booked: a second cancel changes nothing, and sends nothing
        return _back(token)
    return _told(token, invitation, message, "Your interview is cancelled. You can pick another time below.")


def _told(token: str, invitation: Invitation, message: Message | None, what: str) -> Response:
    """The committed confirmation on its way, and back to the page, which says what happened."""
    if message is not None:
        dispatch.enqueue(message.id)
    flash(_done(what, invitation, message), "success")
    return _back(token)


def _done(what: str, invitation: Invitation, message: Message | None) -> str:
    if message is None and not booking.confirmations_left(invitation):
        return (
            f"{what} This page is your confirmation: we send at most {MAX_CONFIRMATIONS} messages about "
            "one invitation."
        )
    return what
