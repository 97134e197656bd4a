"""Bulk messages: *Message N people* from a job's applications or a community's members → the one
composer → Preview (a line per recipient, the totals, the refusal when credits or the cap do not cover)
→ Send → a progress page whose bar one htmx poll refreshes, *Cancel the rest*, and the report as CSV.
The people are the ticked ids, or "all matching": the list's filter, carried instead of the ids and
resolved with the list's own query (webapp.jobs.queries / webapp.crm.prospects `matching`), uncapped.
The rules are webapp.messaging.bulk's; these routes parse and render."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import partial

from flask import Blueprint, abort, flash, make_response, redirect, request, url_for
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from webapp import ids, zones
from webapp.accounts import access
from webapp.crm import prospects
from webapp.extensions import db
from webapp.jobs import queries
from webapp.messaging import bulk, checks, whatsapp
from webapp.messaging.subjects import Kind, Subject
from webapp.models import CHANNEL_LABELS, Batch, Job
from webapp.web import composer, refusals
from webapp.web.forms import FlaskForm
from webapp.web.list_filters import ApplicationFilterForm, MemberFilterForm
from webapp.web.pages import render, wants_fragment

bp = Blueprint("bulk", __name__, template_folder="templates")
# Lines of the preview shown per page.
PAGE = 50


class BulkForm(composer.Composition):
    # The chosen people: a job's applications or a community's memberships (one of the two is used).
    application = SelectMultipleField(coerce=ids.parse, validate_choice=False, validators=[Optional()])
    membership = SelectMultipleField(coerce=ids.parse, validate_choice=False, validators=[Optional()])
    # For those whose WhatsApp window is closed (the others get the text): an approved template.
    whatsapp_template_id = SelectField(
        "Approved WhatsApp template, for those whose 24-hour window is closed",
        coerce=ids.parse,
        validate_choice=False,
        validators=[Optional()],
    )
    # Or "all matching": the list's filter instead of ids, resolved again at each step (the ticks are then
    # ignored). Carried as typed; the list's own form checks it (`_filter`).
    all = BooleanField(validators=[Optional()])
    filter_q = StringField(validators=[Optional()])
    filter_stage = StringField(validators=[Optional()])


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
    filter_form: type[ApplicationFilterForm] | type[MemberFilterForm]  # the list's

    @property
    def field(self) -> str:
        return "application" if self.kind == "application" else "membership"


def _urls(prefix: str, **key: int) -> dict[str, str]:
    return {name: url_for(f"bulk.{prefix}_{name}", **key) for name in ("compose", "counter", "preview")}


def _job(job_id: int) -> Place:
    job: Job = access.get_job(db.session, current_user, job_id) or abort(404)
    back = url_for("jobs.detail", job_id=job.id)
    urls = _urls("job", job_id=job.id)
    return Place(
        "application", job.id, job.title, "Jobs", url_for("jobs.index"), back, urls, ApplicationFilterForm
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
        MemberFilterForm,
    )


def _filter(place: Place, form: BulkForm) -> ApplicationFilterForm | MemberFilterForm:
    """The list's filter that "all matching" carries, checked by the list's own form. Our links and
    forms only carry good ones: a bad one is an edited address, answered 400 with the reason."""
    if place.kind == "membership" and form.filter_stage.data:
        abort(400, description="A community's members have no stage to filter by.")
    found = place.filter_form(
        MultiDict({"q": form.filter_q.data or "", "stage": form.filter_stage.data or ""})
    )
    if not found.validate():
        reasons = (f"{found[name].label.text}: {e}" for name, errors in found.errors.items() for e in errors)
        abort(400, description=" ".join(reasons))
    return found


def _wanted(place: Place, form: BulkForm) -> list[int]:
    """The ids chosen: the ticked ones, or every one the list's filter matches (the list's own query,
    uncapped, scoped to the user)."""
    if not form.all.data:
        return [i for i in form[place.field].data or [] if i is not None]
    found = _filter(place, form)
    q = found.q.data or ""
    if isinstance(found, ApplicationFilterForm):
        return queries.matching_ids(db.session, current_user, place.owner_id, q, found.stage.data or "")
    return prospects.matching_ids(db.session, current_user, place.owner_id, q)


def _people(place: Place, form: BulkForm) -> list[Subject]:
    found = bulk.recipients(db.session, current_user, place.kind, _wanted(place, form))
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
    wa_templates = (
        whatsapp.approved_templates(db.session, setup.about.organization.id, setup.about.audience)
        if "whatsapp" in setup.allowed
        else []
    )
    form.whatsapp_template_id.choices = [SelectChoice("", "None: skip them")] + [
        SelectChoice(str(t.id), f"{t.name} ({t.locale})") for t in wa_templates
    ]
    return render(
        "bulk/compose.html",
        "bulk/compose.html",
        place=place,
        chosen=[p.id for p in people],
        people=people,
        # "all matching": the filter in words (' matching “ada” in Interview'); None for ticked people.
        matching=_filter(place, form).described() if form.all.data else None,
        cap=current_user.organization.bulk_cap,
        wa_templates=wa_templates,
        **composer.context(form, setup, channel),
    )


def _chosen(place: Place, form: BulkForm) -> list[Subject]:
    people = _people(place, form)
    if not people:
        flash(
            "Nobody matches this filter." if form.all.data else "Tick the people to message first.", "error"
        )
        abort(redirect(place.back_url, 303))
    return people


def _compose(place: Place) -> Response:
    args = request.args
    if args.get("draft"):
        return _compose_page(place, *_again(place, ids.parse(args.get("draft"))))
    wanted = [i for i in (ids.parse(v) for v in args.getlist(place.field)) if i is not None]
    form = BulkForm(
        formdata=None,
        all=args.get("all", "") not in BooleanField.false_values,
        filter_q=args.get("filter_q", ""),
        filter_stage=args.get("filter_stage", ""),
        **{place.field: wanted},
    )
    return _compose_page(place, _chosen(place, form), form)


def _again(place: Place, draft_id: int | None) -> tuple[list[Subject], BulkForm]:
    """The composer as the writer left it for their draft's preview: its people and its message (so that
    "Change the message" loses nothing they typed)."""
    batch = bulk.get_batch(db.session, current_user, draft_id) if draft_id else None
    if batch is None or batch.state != "draft" or batch.author_id != current_user.id:
        abort(404)
    if batch.kind != place.kind or bulk.owner_of(db.session, batch) != place.owner_id:
        abort(404)
    zone = zones.zone(zones.name_of_reader(current_user))
    form = BulkForm(
        formdata=None,
        channel=batch.channel,
        body=batch.body,
        subject=batch.subject or "",
        template_id=batch.template_id,
        send_at=f"{batch.send_at.astimezone(zone):%Y-%m-%dT%H:%M}" if batch.send_at else "",
        **{place.field: bulk.chosen(db.session, batch)},
    )
    return _chosen(place, form), form


def _counter(place: Place) -> str:
    people = _people(place, BulkForm())
    if not people:
        abort(404)
    setup = _setup(place, people)
    return composer.counter_response(setup, request.form, setup.allowed)


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
            draft.whatsapp_template_id,
            ids.parse(form.template_id.data),
            draft.send_at,
        ),
        page_of,
    )
    return redirect(url_for("bulk.progress", batch_id=batch.id), 303)


def _place_of(batch: Batch) -> Place:
    owner = bulk.owner_of(db.session, batch) or abort(404)
    return _job(owner) if batch.kind == "application" else _community(owner)


def _draft_page(batch: Batch, form: FlaskForm | None = None) -> Response:
    q = (request.args.get("q") or "").strip()
    number = max(1, ids.parse(request.args.get("page")) or 1)
    rows, matching = bulk.lines(db.session, batch, q.casefold(), number, PAGE)
    return render(
        "bulk/preview.html",
        "bulk/_lines.html",
        batch=batch,
        place=_place_of(batch),
        totals=bulk.totals(db.session, batch),
        form=form or FlaskForm(),
        lines=rows,
        their_clock=bulk.their_clocks(db.session, batch, rows, zones.name_of_reader(current_user)),
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
    progress = bulk.progress(db.session, batch)
    if wants_fragment() and request.args.get("seen") == progress.stamp:
        return make_response("", 204)  # nothing moved: the bar stays as it is
    return render(
        "bulk/progress.html",
        "bulk/_progress.html",
        batch=batch,
        progress=progress,
        form=FlaskForm(),
        channel_label=CHANNEL_LABELS[batch.channel],
    )


@bp.post("/batches/<id:batch_id>/send")
@login_required
def send(batch_id: int) -> Response:
    """Send the draft: refused (the preview again, the reason on top) when the totals no longer allow
    it, or when it was sent already (a second click, another tab)."""
    batch = _batch(batch_id)
    form = FlaskForm()
    refusals.submit(
        form, lambda: bulk.send(db.session, current_user, batch), partial(_draft_page, batch, form)
    )
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
