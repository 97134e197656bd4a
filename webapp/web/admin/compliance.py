"""Admin pages for sending numbers and compliance documents: the pool with its use, a country's
checklist with uploads, submitting, and downloading one's own documents."""

from __future__ import annotations

import io
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp import phones
from webapp.accounts import access
from webapp.compliance import audit, catalogue, files, submissions
from webapp.extensions import db
from webapp.models import ComplianceDocument, ComplianceRequirement, utcnow
from webapp.numbers import health, health_report, pool
from webapp.web import refusals
from webapp.web.admin import number_requests
from webapp.web.admin.forms import DocumentForm, NumberRequestForm, SubmitForm
from webapp.web.admin.routes import bp
from webapp.web.downloads import attachment
from webapp.web.guards import numbers_admin_required


@bp.get("/numbers")
@numbers_admin_required
def numbers() -> str:
    return numbers_page()


def numbers_page(request_form: NumberRequestForm | None = None) -> str:
    """The pool, and the requests for numbers with the form to ask for one (as sent, when refused)."""
    org = current_user.organization
    return render_template(
        "admin/numbers.html",
        org=org,
        entries=pool.with_usage(db.session, org),
        usage_days=pool.USAGE_DAYS,
        document_countries=catalogue.countries(db.session),
        **number_requests.context(request_form),
        # Number health (issue 23): this pool's numbers only, and today's notices about them.
        rows=health_report.overview(db.session, organization_id=org.id, per_page=health_report.POOL_MAX)[0],
        notices=health_report.notices_today(db.session, utcnow(), org.id),
        near=health.NEAR,
    )


@bp.post("/numbers/requests")
@numbers_admin_required
def request_number() -> Response:
    form = number_requests.request_form(posted=True)
    refusals.submit(form, lambda: number_requests.create(form), lambda: numbers_page(form))
    flash("Requested. Customer success looks for a number that fits and tells you here.", "success")
    return redirect(url_for("admin.numbers") + "#number-requests", 303)


@bp.get("/compliance")
@numbers_admin_required
def compliance() -> str:
    org = current_user.organization
    countries = catalogue.countries(db.session)
    return render_template(
        "admin/compliance.html",
        countries=countries,
        submissions={c: submissions.get(db.session, org.id, c) for c in countries},
        numbers=pool.numbers_of(db.session, org.id, include_released=False),
    )


def _country(code: str) -> str:
    country = code.upper()
    if country != code or country not in catalogue.countries(db.session):
        abort(404)
    return country


def _document_form(requirement: ComplianceRequirement, posted: bool = False) -> DocumentForm:
    prefix = f"r{requirement.id}"
    form = DocumentForm(prefix=prefix) if posted else DocumentForm(prefix=prefix, formdata=None)
    form.kind.choices = [(k.id, k.name) for k in requirement.documents]
    form.value.label.text = requirement.value_label or "Value"
    return form


def _page(country: str, **extra: Any) -> str:
    org = current_user.organization
    requirements = catalogue.requirements(db.session, country)
    submission = submissions.get(db.session, org.id, country)
    forms = {r.id: _document_form(r) for r in requirements}
    forms.update(extra.pop("forms", {}))
    context = {
        "country": country,
        "country_name": phones.region_name(country),
        "requirements": requirements,
        "submission": submission,
        "current": submission.current_documents if submission else {},
        "history": audit.history(db.session, org.id, country),
        "labels": audit.LABELS,
        "forms": forms,
        "submit_form": SubmitForm(),
        "missing": submissions.missing(db.session, submission) if submission else None,
        "numbers": [n for n in pool.numbers_of(db.session, org.id, False) if n.country == country],
        "submit_error": None,
        "card_errors": {},
        **extra,
    }
    return render_template("admin/compliance_country.html", **context)


@bp.get("/compliance/<country>")
@numbers_admin_required
def compliance_country(country: str) -> str:
    return _page(_country(country))


@bp.post("/compliance/<country>/requirements/<id:requirement_id>")
@numbers_admin_required
def upload_document(country: str, requirement_id: int) -> Response:
    country = _country(country)
    requirement = _requirement(country, requirement_id)
    form = _document_form(requirement, posted=True)
    document = refusals.submit(
        form, lambda: _upload(country, requirement, form), lambda: _card(country, requirement, form)
    )
    flash(f"{requirement.name}: {document.filename} uploaded.", "success")
    return redirect(
        url_for("admin.compliance_country", country=country) + f"#requirement-{requirement.id}", 303
    )


def _upload(country: str, requirement: ComplianceRequirement, form: DocumentForm) -> ComplianceDocument:
    """The file checked, stored and made the requirement's current document, committed: a stored file
    whose commit fails is removed again."""
    file = form.file.data
    # No file at all: accept() says "Choose a file." before it reads anything.
    upload = files.accept(getattr(file, "filename", None), file.stream if file else io.BytesIO())
    submission = submissions.get_or_create(db.session, current_user.organization_id, country)
    store = files.store_for(current_app)
    document = submissions.upload(
        db.session, store, current_user, submission, requirement.id, form.kind.data, form.value.data, upload
    )
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        store.remove(document.stored_name)
        raise
    return document


def _requirement(country: str, requirement_id: int) -> ComplianceRequirement:
    requirement = db.session.get(ComplianceRequirement, requirement_id)
    if requirement is None or requirement.country != country:
        abort(404)
    return requirement


def _card(country: str, requirement: ComplianceRequirement, form: DocumentForm) -> str:
    """The page with the requirement's form as it was sent; a reason about the requirement as a whole
    (it is locked, say) is said on its card."""
    card_errors = {requirement.id: form.form_errors[0]} if form.form_errors else {}
    return _page(country, forms={requirement.id: form}, card_errors=card_errors)


@bp.post("/compliance/<country>/submit")
@numbers_admin_required
def submit(country: str) -> Response:
    country, form = _country(country), SubmitForm()
    refusals.submit(
        form, lambda: _submit(country), lambda: _page(country, submit_error=refusals.first_error(form))
    )
    flash("Submitted. Customer success reviews the documents, usually within one working day.", "success")
    return redirect(url_for("admin.compliance_country", country=country), 303)


def _submit(country: str) -> None:
    submission = submissions.get_or_create(db.session, current_user.organization_id, country)
    submissions.submit(db.session, current_user, submission)


@bp.get("/compliance/documents/<id:document_id>")
@numbers_admin_required
def document_file(document_id: int) -> Response:
    document = access.get_compliance_document(db.session, current_user, document_id) or abort(404)
    return attachment(files.store_for(current_app), document)
