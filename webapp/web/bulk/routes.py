"""Bulk messages: *Message N people* from a job's ticked applications → the one composer → Preview (a
line per recipient, the totals, the refusal when credits or the cap do not cover) → Send → a progress
page whose bar one htmx poll refreshes, *Cancel the rest*, and the report as CSV. The rules are
webapp.messaging.bulk's; these routes parse and render."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import partial

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response
from wtforms import SelectMultipleField
from wtforms.validators import Optional

from webapp import ids
from webapp.accounts import access
from webapp.crm import prospects
from webapp.extensions import db
from webapp.messaging import bulk, checks
from webapp.messaging.subjects import Kind, Subject
from webapp.models import CHANNEL_LABELS, Batch, Job
from webapp.web import composer, refusals
from webapp.web.forms import FlaskForm
from webapp.web.pages import render, wants_fragment

bp = Blueprint("bulk", __name__, template_folder="templates")
# Lines of the preview shown per page.
PAGE = 50


class BulkForm(composer.Composition):
    # The chosen people: a job's applications or a community's memberships (one of the two is used).
    application = SelectMultipleField(coerce=ids.parse, validate_choice=False, validators=[Optional()])
    membership = SelectMultipleField(coerce=ids.parse, validate_choice=False, validators=[Optional()])


@dataclass(frozen=True)
class Place:
    """Where the people were chosen: a job's application list or a community's member list."""

    kind: Kind
    owner_id: int
    title: str
    list_name: str  # the crumb before the title: "Jobs", "Communities"
    list_url: str
    back_url: str
    urls: dict[str, str]  # compose, counter, preview

    @property
    def field(self) -> str:
        return "application" if self.kind == "application" else "membership"


def _urls(prefix: str, **key: int) -> dict[str, str]:
    return {name: url_for(f"bulk.{prefix}_{name}", **key) for name in ("compose", "counter", "preview")}


def _job(job_id: int) -> Place:
    job: Job = access.get_job(db.session, current_user, job_id) or abort(404)
    back = url_for("jobs.detail", job_id=job.id)
    return Place(
        "application", job.id, job.title, "Jobs", url_for("jobs.index"), back, _urls("job", job_id=job.id)
    )


def _community(community_id: int) -> Place:
    community = prospects.get_community(db.session, current_user, community_id) or abort(404)
    back = url_for("crm.community", community_id=community.id)
    return Place(
        "membership",
        community.id,
        community.name,
        "Communities",
        url_for("crm.index"),
        back,
        _urls("community", community_id=community.id),
    )


def _people(place: Place, wanted: list[int | None]) -> list[Subject]:
    found = bulk.recipients(db.session, current_user, place.kind, [i for i in wanted if i is not None])
    if place.kind == "application":
        return [s for s in found if s.application is not None and s.application.job_id == place.owner_id]
    return [s for s in found if s.membership is not None and s.membership.community_id == place.owner_id]


def _setup(place: Place, people: list[Subject]) -> composer.Setup:
    about = people[0]
    return composer.Setup(
        about=about,
        allowed=checks.allowed_channels(current_user, about),
        ids=composer.Ids.of_page("bulk"),
        action=place.urls["preview"],
        preview_url=place.urls["counter"],
        css="card composer bulk-composer",
        recipients=len(people),
    )


def _compose_page(place: Place, people: list[Subject], form: BulkForm) -> Response:
    setup = _setup(place, people)
    channel = form.channel.data or ("sms" if "sms" in setup.allowed else setup.allowed[0])
    return render(
        "bulk/compose.html",
        "bulk/compose.html",
        place=place,
        chosen=form[place.field].data or [],
        people=people,
        **composer.context(form, setup, channel),
    )


def _chosen(place: Place, form: BulkForm) -> list[Subject]:
    people = _people(place, form[place.field].data or [])
    if not people:
        flash("Tick the people to message first.", "error")
        abort(redirect(place.back_url, 303))
    return people


def _compose(place: Place) -> Response:
    wanted = [i for i in (ids.parse(v) for v in request.args.getlist(place.field)) if i is not None]
    form = BulkForm(formdata=None, **{place.field: wanted})
    return _compose_page(place, _chosen(place, form), form)


def _counter(place: Place) -> str:
    people = _people(place, [ids.parse(v) for v in request.form.getlist(place.field)])
    if not people:
        abort(404)
    setup = _setup(place, people)
    return render_template(
        "composer/_counter.html", **composer.counter_as_typed(setup, request.form, setup.allowed)
    )


def _preview(place: Place) -> Response:
    """Check every recipient once, store the preview as a draft, and show it (a page of its own, which
    pages, searches and reloads without checking anyone again)."""
    form = BulkForm()
    people = _chosen(place, form)
    page_of = partial(_compose_page, place, people, form)
    draft = composer.ready(form, _setup(place, people), page_of)
    batch = refusals.submit(
        form,
        lambda: bulk.draft(
            db.session,
            current_user,
            place.kind,
            people,
            draft.channel,
            draft.body,
            draft.subject,
            None,
            form.template_id.data,
            draft.send_at,
        ),
        page_of,
    )
    return redirect(url_for("bulk.progress", batch_id=batch.id), 303)


def _place_of(batch: Batch) -> Place:
    owner = bulk.owner_of(db.session, batch) or abort(404)
    return _job(owner) if batch.kind == "application" else _community(owner)


def _draft_page(batch: Batch) -> Response:
    q = (request.args.get("q") or "").strip()
    number = max(1, ids.parse(request.args.get("page")) or 1)
    rows, matching = bulk.lines(db.session, batch, q.casefold(), number, PAGE)
    return render(
        "bulk/preview.html",
        "bulk/_lines.html",
        batch=batch,
        place=_place_of(batch),
        totals=bulk.totals(db.session, batch),
        form=FlaskForm(),
        lines=rows,
        matching=matching,
        page_number=number,
        pages=max(1, -(-matching // PAGE)),
        q=q,
        channel_label=CHANNEL_LABELS[batch.channel],
    )


@bp.get("/jobs/<id:job_id>/message")
@login_required
def job_compose(job_id: int) -> Response:
    return _compose(_job(job_id))


@bp.post("/jobs/<id:job_id>/message/counter")
@login_required
def job_counter(job_id: int) -> str:
    return _counter(_job(job_id))


@bp.post("/jobs/<id:job_id>/message/preview")
@login_required
def job_preview(job_id: int) -> Response:
    return _preview(_job(job_id))


@bp.get("/communities/<id:community_id>/message")
@login_required
def community_compose(community_id: int) -> Response:
    return _compose(_community(community_id))


@bp.post("/communities/<id:community_id>/message/counter")
@login_required
def community_counter(community_id: int) -> str:
    return _counter(_community(community_id))


@bp.post("/communities/<id:community_id>/message/preview")
@login_required
def community_preview(community_id: int) -> Response:
    return _preview(_community(community_id))


def _batch(batch_id: int) -> Batch:
    return bulk.get_batch(db.session, current_user, batch_id) or abort(404)


@bp.get("/batches/<id:batch_id>")
@login_required
def progress(batch_id: int) -> Response:
    """A draft's preview, or a sent batch's progress: one address for the batch, which a reload keeps."""
    batch = _batch(batch_id)
    if batch.state == "draft":
        return _draft_page(batch)
    return render(
        "bulk/progress.html",
        "bulk/_progress.html",
        batch=batch,
        progress=bulk.progress(db.session, batch),
        form=FlaskForm(),
        channel_label=CHANNEL_LABELS[batch.channel],
    )


@bp.post("/batches/<id:batch_id>/send")
@login_required
def send(batch_id: int) -> Response:
    batch = _batch(batch_id)
    if not FlaskForm().validate():
        abort(400)
    try:
        bulk.send(db.session, current_user, batch)
    except bulk.BulkRefused as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return redirect(url_for("bulk.progress", batch_id=batch.id), 303)
    bulk.launch(batch.id)
    return redirect(url_for("bulk.progress", batch_id=batch.id), 303)


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
