"""The hiring team's interview pages: a job's slots, the invitation form (one application, or several
from the job's list) with its live counter, and the invitation state on the application page."""

from __future__ import annotations

from datetime import date, time
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
from flask_login import current_user, login_required
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from webapp import ids, zones
from webapp.accounts import access
from webapp.billing import credits
from webapp.extensions import db
from webapp.interviews import invitations, slots
from webapp.messaging import checks, compose, conversations, dispatch, reply_channel, subjects
from webapp.messaging import templates as message_templates
from webapp.messaging.checks import SendRefused
from webapp.models import CHANNEL_LABELS, Application, Invitation, Job, utcnow
from webapp.web import form_errors
from webapp.web.interviews.forms import InviteForm, SeriesForm, SlotForm
from webapp.web.pages import render, wants_fragment

bp = Blueprint("interviews", __name__, template_folder="templates")


# How many applications one bulk invitation takes (the job's list shows at most 500).
MAX_BULK = 200


@bp.app_template_filter("invitation_state")
def invitation_state(invitation: Invitation) -> str:
    org = current_user.organization if current_user.is_authenticated else None
    return invitations.describe(invitation, org.time_zone if org else None, utcnow())


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


def _prepare(job: Job, submitted: SlotForm | SeriesForm | None, *idle: SlotForm | SeriesForm) -> None:
    """The interviewer choices of both forms; the form not sent starts from the defaults."""
    team = slots.team(db.session, job)
    for form in (submitted, *idle):
        if form is None:
            continue
        form.interviewer_id.choices = [SelectChoice("", "Not named")] + [
            SelectChoice(str(u.id), u.name) for u in team
        ]
    for form in idle:
        if any(u.id == current_user.id for u in team):
            form.interviewer_id.data = current_user.id  # most often the one adding the slot
        form.time_zone.data = slots.default_zone(job)


def _slots_page(job: Job, form: SlotForm, series: SeriesForm, status: int = 200) -> Response:
    return render(
        "interviews/slots.html",
        "interviews/slots.html",
        status=status,
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


def _refuse_slot(form: SlotForm | SeriesForm, refused: slots.SlotRefused) -> None:
    db.session.rollback()
    form_errors.put(form, refused.message, refused.field)


@bp.route("/jobs/<id:job_id>/slots", methods=["GET", "POST"])
@login_required
def job_slots(job_id: int) -> Response:
    job = _job(job_id)
    if request.method == "GET":
        form, series = SlotForm(formdata=None), SeriesForm(prefix="series", formdata=None)
        _prepare(job, None, form, series)
        return _slots_page(job, form, series)
    form, series = SlotForm(), SeriesForm(prefix="series", formdata=None)
    _prepare(job, form, series)
    if form.validate_on_submit():
        draft = slots.Draft(
            day=_parse_day(form.day.data),
            at=_parse_time(form.at.data),
            minutes=form.minutes.data,
            place=form.place.data or "",
            interviewer_id=form.interviewer_id.data,
            time_zone=form.time_zone.data,
        )
        try:
            slot = slots.create(db.session, current_user, job, draft, utcnow())
        except slots.SlotRefused as refused:
            _refuse_slot(form, refused)
        else:
            when = zones.format_time(slot.starts_at, slots.zone_of(slot), "%a %d %b %H:%M")
            db.session.commit()
            flash(f"Slot added: {when}.", "success")
            return redirect(url_for("interviews.job_slots", job_id=job.id), 303)
    return _slots_page(job, form, series, status=422)


@bp.post("/jobs/<id:job_id>/slots/series")
@login_required
def add_series(job_id: int) -> Response:
    job = _job(job_id)
    form, series = SlotForm(formdata=None), SeriesForm(prefix="series")
    _prepare(job, series, form)
    if series.validate_on_submit():
        wanted = slots.Series(
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
        try:
            outcome = slots.add_series(db.session, current_user, job, wanted, utcnow())
        except slots.SlotRefused as refused:
            _refuse_slot(series, refused)
        else:
            zone = slots.zone_of(outcome.added[0])
            db.session.commit()
            flash(_series_report(outcome, zone), "success")
            if outcome.skipped:
                flash(_skipped_report(outcome, zone), "error")
            return redirect(url_for("interviews.job_slots", job_id=job.id), 303)
    return _slots_page(job, form, series, status=422)


def _series_report(outcome: slots.SeriesOutcome, zone: str) -> str:
    first, last = outcome.added[0].starts_at, outcome.added[-1].starts_at
    span = zones.format_time(first, zone, "%a %d %b %H:%M")
    if len(outcome.added) > 1:
        span += " to " + zones.format_time(last, zone, "%a %d %b %H:%M")
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
    slot = slots.get(db.session, job, slot_id) or abort(404)
    try:
        slots.delete(db.session, slot)
    except slots.SlotRefused as refused:
        db.session.rollback()
        flash(refused.message, "error")
    else:
        db.session.commit()
        flash("Slot removed.", "success")
    return redirect(url_for("interviews.job_slots", job_id=job.id), 303)


# --- Inviting ------------------------------------------------------------------------------------------


def _allowed(application: Application) -> list[str]:
    return checks.allowed_channels(current_user, subjects.of_application(application))


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


def counter_context(
    applications: list[Application], channel: str, body: str, subject: str | None = None
) -> dict[str, Any]:
    """The line under the text, for the first candidate: the text as they read it, the booking link
    counted at its real length, and what it costs (for all of them); or why it cannot go, with the
    one-click fix of a glued link."""
    first = applications[0]
    about = subjects.of_application(first)
    # The text's own problem is said here; a glued link in an email's subject is said at the subject.
    problem = invitations.link_problem(channel, body) if body.strip() else None
    text = body
    if channel in CHANNEL_LABELS and problem is None and body.strip():
        text = invitations.with_link(channel, body)
    link = invitations.sample_url(current_app.config["PUBLIC_BASE_URL"])
    preview = compose.preview(about, current_user, channel, text, invite_link=link)
    org = about.organization
    glued = problem is not None and problem.message == message_templates.GLUED
    return {
        "channel": channel,
        "preview": preview,
        "recipients": len(applications),
        "first_name": about.contact.first_name,
        "missing_link": problem.message if problem and not glued else None,
        "glued_link": problem.message if problem and glued else None,
        "link_fixes": message_templates.link_fixes(body, subject if channel == "email" else None),
        "link_length": len(link),
        "blocked": checks.recipient_refusal(db.session, about.contact, channel)
        if len(applications) == 1
        else None,
        "balance": credits.balance(db.session, org) if org.texts and channel != "email" else None,
    }


def _first_channel(applications: list[Application], allowed: list[str]) -> str:
    """The channel the form opens on: for one candidate, the one a reply to them would go out on (where
    they wrote last, never one that cannot reach them: messaging.reply_channel); for several, the first
    texting channel."""
    if len(applications) == 1:
        about = subjects.of_application(applications[0])
        conversation = conversations.for_subject(db.session, about)
        chosen = reply_channel.for_conversation(db.session, about, conversation, allowed)
        if chosen is not None:
            return chosen.channel
    texting = [c for c in allowed if c != "email"]
    return texting[0] if texting else "email"


def _invite_page(
    job: Job, applications: list[Application], form: InviteForm | None, status: int = 200
) -> Response:
    allowed = _allowed(applications[0])
    form = form or InviteForm(formdata=None)
    form.channel.choices = [SelectChoice(c, CHANNEL_LABELS[c]) for c in allowed]
    if form.channel.data not in allowed:
        form.channel.data = _first_channel(applications, allowed)
    templates = compose.templates_for(
        db.session, current_user, allowed, "candidates", kind="interview_invitation"
    )
    if not form.body.data and request.method == "GET":
        # Start from the channel's first invitation template, so the form opens ready to send.
        first = next((t for t in templates if t.channel == form.channel.data), None)
        if first is not None:
            form.template_id.data = str(first.id)
            form.body.data = first.body
            form.subject.data = first.subject or ""
    single = len(applications) == 1
    context = {
        "job": job,
        "applications": applications,
        "single": single,
        "form": form,
        "templates": templates,
        "free_slots": slots.free(db.session, job.id, utcnow()),
        "missing_right": checks.missing_right(current_user, subjects.of_application(applications[0])),
        "action": url_for("interviews.invite_one", application_id=applications[0].id)
        if single
        else url_for("interviews.invite_many", job_id=job.id),
    }
    context.update(
        counter_context(applications, form.channel.data or "email", form.body.data or "", form.subject.data)
    )
    context["refused"] = bool(form.body.errors)  # the counter's warning is then the field's error
    return render("interviews/invite.html", "interviews/invite.html", status=status, **context)


def _refuse(form: InviteForm, refused: SendRefused) -> None:
    if refused.field == "slots":
        return  # no free slots: the page's notice says so (and how to add some), once
    form_errors.put(form, refused.message, refused.field)


def _check_text(form: InviteForm, allowed: list[str]) -> bool:
    """What is wrong with the form for everyone at once (the channel, the text), before any send."""
    channel = form.channel.data or ""
    if channel not in allowed:
        form.channel.errors = [*form.channel.errors, "Choose how to send the invitation."]
        return False
    problem = invitations.link_problem(channel, form.body.data or "", form.subject.data)
    if problem:
        form_errors.put(form, problem.message, problem.field)
        return False
    return True


@bp.route("/applications/<id:application_id>/invite", methods=["GET", "POST"])
@login_required
def invite_one(application_id: int) -> Response:
    application = access.get_application(db.session, current_user, application_id) or abort(404)
    job = application.job
    if request.method == "GET":
        return _invite_page(job, [application], None)
    form = InviteForm()
    if form.validate_on_submit() and _check_text(form, _allowed(application)):
        channel = form.channel.data or ""
        try:
            invitation = invitations.invite(
                db.session,
                current_user,
                application,
                channel,
                form.body.data or "",
                form.subject.data,
                current_app.config["PUBLIC_BASE_URL"],
                utcnow(),
            )
        except SendRefused as refused:
            db.session.rollback()
            _refuse(form, refused)
        else:
            db.session.commit()
            dispatch.enqueue(invitation.message_id)
            flash(f"Invitation sent by {CHANNEL_LABELS[channel]}.", "success")
            return redirect(url_for("jobs.application", application_id=application.id, tab=channel), 303)
    return _invite_page(job, [application], form, status=422)


@bp.route("/jobs/<id:job_id>/invite", methods=["GET", "POST"])
@login_required
def invite_many(job_id: int) -> Response:
    job = _job(job_id)
    if request.method == "GET":
        applications = _applications(job, [ids.parse(v) for v in request.args.getlist("application")])
        if not applications:
            flash("Tick the candidates to invite first.", "error")
            return redirect(url_for("jobs.detail", job_id=job.id), 303)
        form = InviteForm(formdata=None, application=[a.id for a in applications])
        return _invite_page(job, applications, form)
    form = InviteForm()
    applications = _applications(job, form.application.data or [])
    if not applications:
        flash("Tick the candidates to invite first.", "error")
        return redirect(url_for("jobs.detail", job_id=job.id), 303)
    if not (form.validate_on_submit() and _check_text(form, _allowed(applications[0]))):
        return _invite_page(job, applications, form, status=422)
    outcomes = invitations.invite_many(
        db.session,
        current_user,
        applications,
        form.channel.data or "",
        form.body.data or "",
        form.subject.data,
        current_app.config["PUBLIC_BASE_URL"],
        utcnow(),
        dispatch.enqueue,
    )
    return render(
        "interviews/report.html",
        "interviews/report.html",
        job=job,
        outcomes=outcomes,
        channel=CHANNEL_LABELS[form.channel.data or "email"],
        sent=sum(1 for o in outcomes if o.sent),
    )


@bp.post("/interviews/preview")
@login_required
def preview() -> str:
    """The invitation form's counter, as the user types."""
    wanted = [ids.parse(v) for v in request.form.getlist("application")][:MAX_BULK]
    job_id = ids.parse(request.form.get("job"))
    job = access.get_job(db.session, current_user, job_id) if job_id else None
    applications = _applications(job, wanted) if job else []
    if not applications:
        abort(404)
    channel = request.form.get("channel", "email")
    if channel not in _allowed(applications[0]):
        channel = "email"
    body = request.form.get("body", "")[:60_000]
    subject = request.form.get("subject", "")[:300]
    return render_template(
        "interviews/_counter.html", **counter_context(applications, channel, body, subject)
    )


# --- The invitation's state on the application page -----------------------------------------------------


def status_context(application: Application) -> dict[str, Any]:
    return {
        "interview_application": application,
        "interview_invitations": invitations.of_application(db.session, application.id),
        "may_invite": checks.allowed_channels(current_user, subjects.of_application(application)) != [],
    }


@bp.get("/applications/<id:application_id>/interview")
@login_required
def interview_status(application_id: int) -> Response:
    """The Interview card, refreshed when the thread changes (a booking touches its message)."""
    application = access.get_application(db.session, current_user, application_id) or abort(404)
    if not wants_fragment():
        return redirect(url_for("jobs.application", application_id=application.id))
    response = make_response(render_template("interviews/_status.html", **status_context(application)))
    response.vary.add("HX-Request")
    return response
