"""The hiring team's interview pages: a job's slots, the invitation form (one application, or several
from the job's list; the composer of webapp.web.composer with the booking-link rule) with its live
counter, and the refresh of an application's Interview card (webapp.web.interview_status)."""

from __future__ import annotations

from datetime import date, time
from functools import partial

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
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from webapp import ids, zones
from webapp.accounts import access
from webapp.extensions import db
from webapp.interviews import invitations, slots
from webapp.messaging import checks, conversations, dispatch, reply_channel, subjects
from webapp.models import CHANNEL_LABELS, Application, Job, Message, utcnow
from webapp.web import composer, refusals
from webapp.web.forms import FlaskForm
from webapp.web.interview_status import status_context
from webapp.web.interviews.forms import InviteForm, SeriesForm, SlotForm
from webapp.web.pages import render, wants_fragment

bp = Blueprint("interviews", __name__, template_folder="templates")

# A slot's time in the page's reports.
_SHORT = "%a %d %b %H:%M"
# How many applications one bulk invitation takes (the job's list shows at most 500).
MAX_BULK = 200


# --- Slots ---------------------------------------------------------------------------------------------


def _job(job_id: int) -> Job:
    return access.get_job(db.session, current_user, job_id) or abort(404)


def _parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        return None


def _parse_time(text: str | None) -> time | None:
    try:
        return time.fromisoformat((text or "").strip())
    except ValueError:
        return None


def _forms(job: Job, sent: str | None = None) -> tuple[SlotForm, SeriesForm]:
    """The page's two forms, the one sent (`sent`: "slot" or "series") read from the request; the
    interviewer choices of both, and the form not sent starting from the defaults."""
    form = SlotForm() if sent == "slot" else SlotForm(formdata=None)
    series = SeriesForm(prefix="series") if sent == "series" else SeriesForm(prefix="series", formdata=None)
    team = slots.team(db.session, job)
    for f in (form, series):
        f.interviewer_id.choices = [SelectChoice("", "Not named")] + [
            SelectChoice(str(u.id), u.name) for u in team
        ]
    idle = [f for f, name in ((form, "slot"), (series, "series")) if name != sent]
    for f in idle:
        if any(u.id == current_user.id for u in team):
            f.interviewer_id.data = current_user.id  # most often the one adding the slot
        f.time_zone.data = slots.default_zone(job)
    return form, series


def _slots_page(job: Job, form: SlotForm, series: SeriesForm) -> Response:
    return render(
        "interviews/slots.html",
        "interviews/slots.html",
        job=job,
        form=form,
        series=series,
        slots=slots.of_job(db.session, job),
        now=utcnow(),
        zone=job.organization.time_zone,
        job_zone=slots.default_zone(job),
        zone_names=zones.names(),
        weekdays=slots.WEEKDAYS,
        shown=lambda slot, fmt="%a %d %b %Y, %H:%M": slots.shown(slot, job.organization.time_zone, fmt),
        city=zones.city(job.organization.time_zone),
    )


def _to_slots(job: Job) -> Response:
    return redirect(url_for("interviews.job_slots", job_id=job.id), 303)


@bp.get("/jobs/<id:job_id>/slots")
@login_required
def job_slots(job_id: int) -> Response:
    job = _job(job_id)
    return _slots_page(job, *_forms(job))


@bp.post("/jobs/<id:job_id>/slots")
@login_required
def add_slot(job_id: int) -> Response:
    job = _job(job_id)
    form, series = _forms(job, "slot")
    slot = refusals.submit(
        form,
        lambda: slots.create(db.session, current_user, job, _draft(form), utcnow()),
        lambda: _slots_page(job, form, series),
    )
    flash(f"Slot added: {zones.format_time(slot.starts_at, slots.zone_of(slot), _SHORT)}.", "success")
    return _to_slots(job)


def _draft(form: SlotForm) -> slots.Draft:
    return slots.Draft(
        day=_parse_day(form.day.data),
        at=_parse_time(form.at.data),
        minutes=form.minutes.data,
        place=form.place.data or "",
        interviewer_id=form.interviewer_id.data,
        time_zone=form.time_zone.data,
    )


@bp.post("/jobs/<id:job_id>/slots/series")
@login_required
def add_series(job_id: int) -> Response:
    job = _job(job_id)
    form, series = _forms(job, "series")
    outcome = refusals.submit(
        series,
        lambda: slots.add_series(db.session, current_user, job, _series(series), utcnow()),
        lambda: _slots_page(job, form, series),
    )
    _report_series(outcome)
    return _to_slots(job)


def _series(series: SeriesForm) -> slots.Series:
    return slots.Series(
        first_day=_parse_day(series.first_day.data),
        last_day=_parse_day(series.last_day.data),
        weekdays=frozenset(d for d in series.weekdays.data or [] if d is not None),
        start=_parse_time(series.start.data),
        end=_parse_time(series.end.data),
        every=series.every.data,
        minutes=series.minutes.data,
        place=series.place.data or "",
        interviewer_id=series.interviewer_id.data,
        time_zone=series.time_zone.data,
    )


def _report_series(outcome: slots.SeriesOutcome) -> None:
    zone = slots.zone_of(outcome.added[0])
    flash(_series_report(outcome, zone), "success")
    if outcome.skipped:
        flash(_skipped_report(outcome, zone), "error")


def _series_report(outcome: slots.SeriesOutcome, zone: str) -> str:
    first, last = outcome.added[0].starts_at, outcome.added[-1].starts_at
    span = zones.format_time(first, zone, _SHORT)
    if len(outcome.added) > 1:
        span += " to " + zones.format_time(last, zone, _SHORT)
    count = len(outcome.added)
    return f"{count} slot{'s' if count != 1 else ''} added: {span}."


def _skipped_report(outcome: slots.SeriesOutcome, zone: str) -> str:
    count = len(outcome.skipped)
    listed = outcome.skipped_words(zone, 5)
    return f"{count} time{'s' if count != 1 else ''} skipped, the others added. {listed}."


@bp.post("/jobs/<id:job_id>/slots/<id:slot_id>/delete")
@login_required
def delete_slot(job_id: int, slot_id: int) -> Response:
    job = _job(job_id)
    slot, form = slots.get(db.session, job, slot_id) or abort(404), FlaskForm()
    refusals.submit(form, lambda: slots.delete(db.session, slot), lambda: _told(job, form), status=303)
    flash("Slot removed.", "success")
    return _to_slots(job)


def _told(job: Job, form: FlaskForm) -> Response:
    """A refused removal is said on the slots page, as its other news are."""
    flash(refusals.first_error(form) or "", "error")
    return _to_slots(job)


# --- Inviting ------------------------------------------------------------------------------------------


def _application(application_id: int) -> Application:
    return access.get_application(db.session, current_user, application_id) or abort(404)


def _applications(job: Job, wanted: list[int | None]) -> list[Application]:
    """The job's applications among these ids that the user may see, in the order given."""
    chosen = [i for i in dict.fromkeys(wanted) if i is not None][:MAX_BULK]
    if not chosen:
        return []
    found = {
        a.id: a
        for a in db.session.scalars(
            access.visible_applications(current_user).where(
                Application.job_id == job.id, Application.id.in_(chosen)
            )
        )
    }
    return [found[i] for i in chosen if i in found]


def _setup(job: Job, applications: list[Application]) -> composer.Setup:
    """The invitation's composer: for the first candidate (the counter speaks of them), with the
    booking-link rule, offering the invitation templates."""
    about = subjects.of_application(applications[0])
    single = len(applications) == 1
    return composer.Setup(
        about=about,
        allowed=checks.allowed_channels(current_user, about),
        ids=composer.Ids.of_page("invite"),
        action=url_for("interviews.invite_one", application_id=applications[0].id)
        if single
        else url_for("interviews.invite_many", job_id=job.id),
        preview_url=url_for("interviews.preview"),
        css="card composer interview-invite",
        kind="interview_invitation",
        prefill=True,
        booking_link=True,
        recipients=len(applications),
        # No free slots: the page's notice says so (and how to add some), once.
        said_by_page=("slots",),
    )


def _first_channel(applications: list[Application], allowed: list[str]) -> str:
    """The channel the form opens on: for one candidate, the one a reply to them would go out on (where
    they wrote last, never one that cannot reach them: messaging.reply_channel); for several, the first
    texting channel (reply_channel.first_texting)."""
    if len(applications) == 1:
        about = subjects.of_application(applications[0])
        conversation = conversations.for_subject(db.session, about)
        chosen = reply_channel.for_conversation(db.session, about, conversation, allowed)
        if chosen is not None:
            return chosen.channel
    return reply_channel.first_texting(allowed)


def _invite_page(job: Job, applications: list[Application], form: InviteForm) -> Response:
    setup = _setup(job, applications)
    return render(
        "interviews/invite.html",
        "interviews/invite.html",
        job=job,
        applications=applications,
        single=len(applications) == 1,
        free_slots=slots.free(db.session, job.id, utcnow()),
        **composer.context(form, setup, _first_channel(applications, setup.allowed)),
    )


def _no_one_ticked(job: Job) -> Response:
    flash("Tick the candidates to invite first.", "error")
    return redirect(url_for("jobs.detail", job_id=job.id), 303)


@bp.get("/applications/<id:application_id>/invite")
@login_required
def invite_one(application_id: int) -> Response:
    application = _application(application_id)
    return _invite_page(application.job, [application], InviteForm(formdata=None))


@bp.post("/applications/<id:application_id>/invite")
@login_required
def send_invitation(application_id: int) -> Response:
    application, form = _application(application_id), InviteForm()
    job, invited = application.job, [application]
    page = partial(_invite_page, job, invited, form)
    message_id = composer.send(form, _setup(job, invited), _invitation_of(application), page)
    message, by = db.session.get(Message, message_id), CHANNEL_LABELS[form.channel.data]
    if message is not None and message.status == "scheduled" and message.send_at is not None:
        at = zones.format_time(message.send_at, zones.name_of_reader(current_user), "%a %d %b %H:%M")
        waits = f"Invitation by {by} scheduled for {at} (your time): it waits in the thread until then."
        flash(waits, "success")
    else:
        flash(f"Invitation sent by {by}.", "success")
    return redirect(url_for("jobs.application", application_id=application.id, tab=form.channel.data), 303)


def _invitation_of(application: Application) -> composer.Write:
    """Writing the invitation: webapp.interviews.invitations.invite, its booking link in the message it
    composes (webapp.messaging.compose)."""

    def write(d: composer.Draft) -> int:
        base_url = current_app.config["PUBLIC_BASE_URL"]
        args = (d.channel, d.body, d.subject, base_url, utcnow())
        return invitations.invite(
            db.session, current_user, application, *args, send_at=d.send_at, override_reason=d.override_reason
        ).message_id

    return write


@bp.get("/jobs/<id:job_id>/invite")
@login_required
def invite_many(job_id: int) -> Response:
    job = _job(job_id)
    applications = _applications(job, [ids.parse(v) for v in request.args.getlist("application")])
    if not applications:
        return _no_one_ticked(job)
    return _invite_page(
        job, applications, InviteForm(formdata=None, application=[a.id for a in applications])
    )


@bp.post("/jobs/<id:job_id>/invite")
@login_required
def send_invitations(job_id: int) -> Response:
    job, form = _job(job_id), InviteForm()
    applications = _applications(job, form.application.data or [])
    if not applications:
        return _no_one_ticked(job)
    draft = composer.ready(form, _setup(job, applications), lambda: _invite_page(job, applications, form))
    return _report(job, applications, draft)


def _report(job: Job, applications: list[Application], d: composer.Draft) -> Response:
    """Each candidate invited in a transaction of their own, and the page saying who got it."""
    base_url = current_app.config["PUBLIC_BASE_URL"]
    args = (d.channel, d.body, d.subject, base_url, utcnow(), dispatch.enqueue)
    outcomes = invitations.invite_many(
        db.session, current_user, applications, *args, send_at=d.send_at, override_reason=d.override_reason
    )
    return render(
        "interviews/report.html",
        "interviews/report.html",
        job=job,
        outcomes=outcomes,
        channel=CHANNEL_LABELS[d.channel or "email"],
        sent=sum(1 for o in outcomes if o.sent),
        scheduled=sum(1 for o in outcomes if o.send_at is not None),
        reader_zone=zones.name_of_reader(current_user),
    )


def _invited(data: MultiDict[str, str]) -> tuple[Job, list[Application]]:
    """The job and the applications the invitation form names, those the user may see; else 404."""
    job_id = ids.parse(data.get("job"))
    job = access.get_job(db.session, current_user, job_id) if job_id else None
    wanted = [ids.parse(v) for v in data.getlist("application")][:MAX_BULK]
    applications = _applications(job, wanted) if job else []
    if job is None or not applications:
        abort(404)
    return job, applications


@bp.post("/interviews/preview")
@login_required
def preview() -> str:
    """The invitation form's counter, as the user types."""
    job, applications = _invited(request.form)
    setup = _setup(job, applications)
    return composer.counter_response(setup, request.form, setup.allowed)


# --- The Interview card on the application page ----------------------------------------------------------


@bp.get("/applications/<id:application_id>/interview")
@login_required
def interview_status(application_id: int) -> Response:
    """The Interview card, refreshed when the thread changes (a booking touches its message)."""
    application = _application(application_id)
    if not wants_fragment():
        return redirect(url_for("jobs.application", application_id=application.id))
    response = make_response(render_template("interview_status/_status.html", **status_context(application)))
    response.vary.add("HX-Request")
    return response
