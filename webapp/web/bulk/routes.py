"""Bulk messages: *Message N people* from a job's ticked applications → the one composer → Preview (a
line per recipient, the totals, the refusal when credits or the cap do not cover) → Send → a progress
page whose bar one htmx poll refreshes, *Cancel the rest*, and the report as CSV. The rules are
webapp.messaging.bulk's; these routes parse and render."""

from __future__ import annotations

import csv
import io
from functools import partial

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response
from wtforms import SelectMultipleField
from wtforms.validators import Optional

from webapp import ids
from webapp.accounts import access
from webapp.extensions import db
from webapp.messaging import bulk, checks
from webapp.messaging.subjects import Subject
from webapp.models import CHANNEL_LABELS, Job
from webapp.web import composer, refusals
from webapp.web.forms import FlaskForm
from webapp.web.pages import render, wants_fragment

bp = Blueprint("bulk", __name__, template_folder="templates")
# Lines of the preview shown per page.
PAGE = 50


class BulkForm(composer.Composition):
    application = SelectMultipleField(coerce=ids.parse, validate_choice=False, validators=[Optional()])


def _job(job_id: int) -> Job:
    return access.get_job(db.session, current_user, job_id) or abort(404)


def _people(job: Job, wanted: list[int | None]) -> list[Subject]:
    found = bulk.recipients(db.session, current_user, "application", [i for i in wanted if i is not None])
    return [s for s in found if s.application is not None and s.application.job_id == job.id]


def _setup(job: Job, people: list[Subject]) -> composer.Setup:
    about = people[0]
    return composer.Setup(
        about=about,
        allowed=checks.allowed_channels(current_user, about),
        ids=composer.Ids.of_page("bulk"),
        action=url_for("bulk.preview", job_id=job.id),
        preview_url=url_for("bulk.counter", job_id=job.id),
        css="card composer bulk-composer",
        recipients=len(people),
    )


def _compose_page(job: Job, people: list[Subject], form: BulkForm) -> Response:
    setup = _setup(job, people)
    channel = form.channel.data or ("sms" if "sms" in setup.allowed else setup.allowed[0])
    return render(
        "bulk/compose.html",
        "bulk/compose.html",
        job=job,
        people=people,
        **composer.context(form, setup, channel),
    )


def _chosen(job: Job, form: BulkForm) -> list[Subject]:
    people = _people(job, form.application.data or [])
    if not people:
        flash("Tick the people to message first.", "error")
        abort(redirect(url_for("jobs.detail", job_id=job.id), 303))
    return people


@bp.get("/jobs/<id:job_id>/message")
@login_required
def compose(job_id: int) -> Response:
    job = _job(job_id)
    wanted = [ids.parse(v) for v in request.args.getlist("application")]
    form = BulkForm(formdata=None, application=[i for i in wanted if i is not None])
    return _compose_page(job, _chosen(job, form), form)


@bp.post("/jobs/<id:job_id>/message/counter")
@login_required
def counter(job_id: int) -> str:
    job = _job(job_id)
    people = _people(job, [ids.parse(v) for v in request.form.getlist("application")])
    if not people:
        abort(404)
    setup = _setup(job, people)
    return render_template(
        "composer/_counter.html", **composer.counter_as_typed(setup, request.form, setup.allowed)
    )


@bp.post("/jobs/<id:job_id>/message/preview")
@login_required
def preview(job_id: int) -> Response:
    job, form = _job(job_id), BulkForm()
    people = _chosen(job, form)
    page_of = partial(_compose_page, job, people, form)
    draft = composer.ready(form, _setup(job, people), page_of)
    plan = bulk.preview(
        db.session, current_user, people, draft.channel, draft.body, draft.subject, None, draft.send_at
    )
    q = (request.form.get("q") or "").strip().casefold()
    lines = [line for line in plan.lines if q in line.name.casefold()] if q else plan.lines
    number = max(1, ids.parse(request.form.get("page")) or 1)
    shown = lines[(number - 1) * PAGE : number * PAGE]
    return render(
        "bulk/preview.html",
        "bulk/_lines.html",
        job=job,
        form=form,
        plan=plan,
        lines=shown,
        matching=len(lines),
        page_number=number,
        pages=max(1, -(-len(lines) // PAGE)),
        q=q,
        channel_label=CHANNEL_LABELS[plan.channel],
    )


@bp.post("/jobs/<id:job_id>/message/send")
@login_required
def send(job_id: int) -> Response:
    job, form = _job(job_id), BulkForm()
    people = _chosen(job, form)
    page_of = partial(_compose_page, job, people, form)
    draft = composer.ready(form, _setup(job, people), page_of)
    batch = refusals.submit(
        form,
        lambda: bulk.start(
            db.session,
            current_user,
            "application",
            [p.id for p in people],
            draft.channel,
            draft.body,
            draft.subject,
            send_at=draft.send_at,
        ),
        page_of,
    )
    bulk.launch(batch.id)
    return redirect(url_for("bulk.progress", batch_id=batch.id), 303)


def _batch(batch_id: int):  # type: ignore[no-untyped-def]
    return bulk.get_batch(db.session, current_user, batch_id) or abort(404)


@bp.get("/batches/<id:batch_id>")
@login_required
def progress(batch_id: int) -> Response:
    batch = _batch(batch_id)
    return render(
        "bulk/progress.html",
        "bulk/_progress.html",
        batch=batch,
        progress=bulk.progress(db.session, batch),
        form=FlaskForm(),
        channel_label=CHANNEL_LABELS[batch.channel],
    )


@bp.post("/batches/<id:batch_id>/cancel")
@login_required
def cancel(batch_id: int) -> Response:
    batch = _batch(batch_id)
    if not FlaskForm().validate():
        abort(400)
    cancelled = bulk.cancel(db.session, batch)
    flash(f"Cancelled: {cancelled} message(s) will not be sent. Those already sent stay sent.", "success")
    if wants_fragment():
        return progress(batch_id)
    return redirect(url_for("bulk.progress", batch_id=batch.id), 303)


@bp.get("/batches/<id:batch_id>/report.csv")
@login_required
def report(batch_id: int) -> Response:
    batch = _batch(batch_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Name", "Outcome", "Reason"])
    for name, outcome, reason in bulk.report(db.session, batch):
        # A name starting with = + - @ would be a formula in a spreadsheet.
        writer.writerow(["'" + name if name[:1] in "=+-@" else name, outcome, reason])
    response = make_response(out.getvalue())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="bulk-{batch.id}.csv"'
    return response
