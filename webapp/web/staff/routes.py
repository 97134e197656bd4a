"""Customer-success pages: every customer's number pool, credits and products, a new set-password link
for a customer's user, the review of compliance documents, and the requests for numbers (search the
provider's offer, buy, link and pool in one step, or decline)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import phonenumbers
import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp import phones
from webapp.accounts import access, link_email, people
from webapp.billing import credits, ledger, refills
from webapp.compliance import audit, catalogue, files, submissions
from webapp.extensions import db
from webapp.models import (
    ComplianceDocument,
    ComplianceSubmission,
    NumberRequest,
    Organization,
    SendingNumber,
    User,
)
from webapp.numbers import accounts, number_requests, pool
from webapp.organizations import settings as organizations
from webapp.providers import registry
from webapp.web import refusals
from webapp.web.downloads import attachment
from webapp.web.guards import staff_required
from webapp.web.staff.forms import (
    AddNumberForm,
    BuyNumberForm,
    DeclineRequestForm,
    EntitlementsForm,
    FinishRequestForm,
    LinkForm,
    NumberActionForm,
    NumberSearchForm,
    RefillForm,
    ReviewForm,
)

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates")


@bp.get("/")
@staff_required
def index() -> str:
    return render_template(
        "staff/index.html",
        orgs=db.session.scalars(sa.select(Organization).order_by(Organization.name)).all(),
        counts=pool.status_counts(db.session),
        queue=submissions.waiting_for_review(db.session),
        refill_requests=refills.waiting(db.session),
        number_requests=number_requests.waiting(db.session),
    )


def _organization(org_id: int) -> Organization:
    return db.session.get(Organization, org_id) or abort(404)


def _add_form(formdata: Any = None) -> tuple[AddNumberForm, list[accounts.Offer], str | None]:
    """The form, offering the providers' numbers not yet in a pool (or saying why there are none)."""
    form = AddNumberForm(formdata=formdata) if formdata is not None else AddNumberForm()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    offers, note = accounts.unpooled(db.session, registry.every(app))
    form.owned.choices = [("", "— type it below —")] + [
        (n.e164, f"{phones.display(n.e164)} · {n.country} · {', '.join(n.features) or 'no features listed'}")
        for n in (offer.number for offer in offers)
    ]
    regions = sorted(phonenumbers.SUPPORTED_REGIONS, key=phones.region_name)
    form.country.choices = [("", "— from the number —")] + [
        (r, f"{phones.region_name(r)} ({r})") for r in regions
    ]
    return form, offers, note


def _organization_page(
    org: Organization,
    status: int = 200,
    form: AddNumberForm | None = None,
    refill_form: RefillForm | None = None,
    entitlements_form: EntitlementsForm | None = None,
    new_link: link_email.Handed | None = None,
    people_error: str | None = None,
) -> tuple[str, int]:
    add_form, owned, note = _add_form()
    countries = catalogue.countries(db.session)
    top = org.top
    account = credits.account_for(db.session, top)
    recent, _total = ledger.page(db.session, account.id, ledger.Filters(), top.time_zone)
    return render_template(
        "staff/organization.html",
        number_requests=number_requests.of_organization(db.session, org.id),
        top=top,
        balance=account.balance,
        recent=recent[:10],
        open_request=refills.open_request(db.session, top),
        refill_form=refill_form or RefillForm(formdata=None),
        entitlements_form=entitlements_form
        or EntitlementsForm(
            formdata=None,
            has_messaging=org.has_messaging,
            has_crm=org.has_crm,
            whatsapp_price=str(org.whatsapp_price),
        ),
        org=org,
        entries=pool.with_usage(db.session, org),
        usage_days=pool.USAGE_DAYS,
        form=form or add_form,
        owned=owned,
        owned_note=note,
        action_form=NumberActionForm(),
        countries=countries,
        submissions={c: submissions.get(db.session, org.id, c) for c in countries},
        members=people.members(db.session, org.id),
        is_invited=people.is_invited,
        new_link=new_link,
        people_error=people_error,
    ), status


@bp.get("/organizations/<id:org_id>")
@staff_required
def organization(org_id: int) -> tuple[str, int]:
    return _organization_page(_organization(org_id))


@bp.post("/organizations/<id:org_id>/numbers")
@staff_required
def add_number(org_id: int) -> Response:
    org = _organization(org_id)
    form, offers, _note = _add_form(request.form)
    page = lambda: _organization_page(org, 422, form)  # noqa: E731
    number = refusals.submit(form, lambda: _add_to_pool(org, form, offers), page)
    label = number.status_label.lower()
    flash(f"{phones.display(number.e164)} added to {org.name}'s pool ({label}).", "success")
    return redirect(url_for("staff.organization", org_id=org.id), 303)


def _add_to_pool(org: Organization, form: AddNumberForm, offers: list[accounts.Offer]) -> SendingNumber:
    """The number picked from a provider's account (which then carries it) or typed (the default
    provider carries it), in the organisation's pool."""
    picked, typed = (form.owned.data or "").strip(), (form.number.data or "").strip()
    provider = next((o.provider for o in offers if o.number.e164 == picked), None) if picked else None
    return pool.add(
        db.session,
        current_user,
        org,
        picked or typed,
        sms=form.sms.data,
        whatsapp=form.whatsapp.data,
        country=form.country.data or None,
        provider=provider,
    )


@bp.post("/organizations/<id:org_id>/numbers/<id:number_id>/<any(suspend, resume, release):action>")
@staff_required
def number_action(org_id: int, number_id: int, action: str) -> Response:
    org = _organization(org_id)
    number = pool.get_number(db.session, org.id, number_id) or abort(404)
    form = NumberActionForm()
    if not form.validate():
        abort(400)
    change = {
        "suspend": lambda: pool.suspend(db.session, current_user, number, form.reason.data or ""),
        "resume": lambda: pool.resume(db.session, current_user, number),
        "release": lambda: pool.release(db.session, current_user, number),
    }[action]
    refusals.submit(form, change, lambda: _told(org, form), status=303)
    flash(f"{phones.display(number.e164)}: {number.status_label.lower()}.", "success")
    return redirect(url_for("staff.organization", org_id=org.id), 303)


def _told(org: Organization, form: NumberActionForm) -> Response:
    """A refused change of a number is said on the organisation's page, as its other news are."""
    flash(refusals.first_error(form) or "", "error")
    return redirect(url_for("staff.organization", org_id=org.id), 303)


def _submission(submission_id: int) -> ComplianceSubmission:
    return db.session.get(ComplianceSubmission, submission_id) or abort(404)


def _review_page(submission: ComplianceSubmission, **extra: Any) -> str:
    forms = {d.id: ReviewForm(prefix=f"d{d.id}", formdata=None) for d in submission.documents}
    forms.update(extra.pop("forms", {}))
    return render_template(
        "staff/submission.html",
        submission=submission,
        org=submission.organization,
        country_name=phones.region_name(submission.country),
        requirements=catalogue.requirements(db.session, submission.country),
        current=submission.current_documents,
        history=audit.history(db.session, submission.organization_id, submission.country),
        labels=audit.LABELS,
        forms=forms,
        numbers=[
            n
            for n in pool.numbers_of(db.session, submission.organization_id, False)
            if n.country == submission.country
        ],
        **extra,
    )


@bp.get("/submissions/<id:submission_id>")
@staff_required
def submission(submission_id: int) -> str:
    return _review_page(_submission(submission_id))


@bp.post("/submissions/<id:submission_id>/documents/<id:document_id>/<any(approve, reject):decision>")
@staff_required
def review(submission_id: int, document_id: int, decision: str) -> Response:
    document, form = _document(submission_id, document_id), ReviewForm(prefix=f"d{document_id}")
    refusals.submit(
        form,
        lambda: _review(document, decision, form),
        lambda: _review_page(document.submission, forms={document.id: form}),
    )
    return _reviewed(document, decision)


def _document(submission_id: int, document_id: int) -> ComplianceDocument:
    """The document, through the one access rule for identity documents; 404 for one of another
    submission (or organisation) through a forged address."""
    document = access.get_compliance_document(db.session, current_user, document_id)
    if document is None or document.submission_id != submission_id:
        abort(404)
    return document


def _review(document: ComplianceDocument, decision: str, form: ReviewForm) -> None:
    """The decision; an approval is valid until the end of the day the form gives, if it gives one."""
    until = form.valid_until.data if decision == "approve" else None
    submissions.review_document(
        db.session,
        current_user,
        document.submission,
        document.id,
        decision,
        form.reason.data,
        expires_at=datetime.combine(until, time.max, tzinfo=UTC) if until else None,
    )


def _reviewed(document: ComplianceDocument, decision: str) -> Response:
    submission = document.submission
    verb = "approved" if decision == "approve" else "rejected"
    flash(
        f"{document.requirement.name}: {verb}. The submission is now “{submission.status_label}”.", "success"
    )
    return redirect(
        url_for("staff.submission", submission_id=submission.id) + f"#document-{document.id}", 303
    )


@bp.get("/submissions/<id:submission_id>/documents/<id:document_id>")
@staff_required
def document_file(submission_id: int, document_id: int) -> Response:
    return attachment(files.store_for(current_app), _document(submission_id, document_id))


# --- Credits and entitlements (issue #12) ------------------------------------------------------------


@bp.post("/organizations/<id:org_id>/credits")
@staff_required
def refill(org_id: int) -> Response:
    """Add credits to the organisation's (top) account: the rules of `flask credits top-up`."""
    org, form = _organization(org_id), RefillForm()
    row = refusals.submit(
        form,
        lambda: refills.refill(db.session, current_user, org, form.amount.data or "", form.note.data or ""),
        lambda: _organization_page(org, refill_form=form),
    )
    return _to_organization(
        org, f"{org.top.name}: +{row.amount} credits, balance {row.balance_after}.", "#credits"
    )


@bp.post("/organizations/<id:org_id>/entitlements")
@staff_required
def entitlements(org_id: int) -> Response:
    org, form = _organization(org_id), EntitlementsForm()
    price = form.whatsapp_price.data or ""
    refusals.submit(
        form,
        lambda: organizations.set_entitlements(org, form.has_messaging.data, form.has_crm.data, price),
        lambda: _organization_page(org, entitlements_form=form),
    )
    return _to_organization(org, f"{org.name}: products saved.", "#entitlements")


def _to_organization(org: Organization, message: str, anchor: str) -> Response:
    flash(message, "success")
    return redirect(url_for("staff.organization", org_id=org.id) + anchor, 303)


# --- A customer's people (issue 17) ---------------------------------------------------------------------


@bp.post("/organizations/<id:org_id>/people/<id:user_id>/link")
@staff_required
def person_link(org_id: int, user_id: int) -> tuple[str, int]:
    """A new set-password link for one of the customer's people (e.g. an organisation left with nobody
    who can manage users): emailed to them, and shown once to staff."""
    org, form = _organization(org_id), LinkForm()
    user = people.get_member(db.session, org.id, user_id) or abort(404)
    token = refusals.submit(
        form,
        lambda: people.new_link(db.session, current_user, user),
        lambda: _organization_page(org, people_error=refusals.first_error(form)),
    )
    return _organization_page(org, new_link=_hand_over(user, token))


def _hand_over(user: User, token: str) -> link_email.Handed:
    """The email of a new link (not an invitation, even for someone invited: staff did not invite them)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return link_email.hand_over(app, db.session, user, current_user, token, invited=False)


# --- Requests for numbers (issue 23) ----------------------------------------------------------------------


def _number_request(request_id: int) -> NumberRequest:
    return number_requests.get(db.session, request_id) or abort(404)


def _request_page(
    number_request: NumberRequest,
    search: number_requests.Search | None = None,
    search_form: NumberSearchForm | None = None,
    decline_form: DeclineRequestForm | None = None,
) -> str:
    return render_template(
        "staff/number_request.html",
        r=number_request,
        org=number_request.organization,
        search=search,
        search_form=search_form
        or NumberSearchForm(formdata=None, pattern=number_requests.suggested_pattern(number_request)),
        decline_form=decline_form or DeclineRequestForm(formdata=None),
        history=audit.of_request(db.session, number_request.id),
        labels=audit.LABELS,
    )


def _numbers_account() -> tuple[str, Any]:
    """The default provider's name and numbers account: where staff buy."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return registry.default_name(app), registry.texting(app).numbers


@bp.get("/number-requests/<id:request_id>")
@staff_required
def number_request(request_id: int) -> str:
    return _request_page(_number_request(request_id))


@bp.post("/number-requests/<id:request_id>/search")
@staff_required
def search_numbers(request_id: int) -> str:
    """The provider's offer for the request (a POST: it asks the provider and is recorded)."""
    found, form = _number_request(request_id), NumberSearchForm()
    _name, account = _numbers_account()
    search = refusals.submit(
        form,
        lambda: number_requests.search(db.session, current_user, found, account, form.pattern.data),
        lambda: _request_page(found, search_form=form),
    )
    return _request_page(found, search, form)


@bp.post("/number-requests/<id:request_id>/buy")
@staff_required
def buy_number(request_id: int) -> Response:
    """Buy, link and pool in one step; whatever went wrong is said on the request's page."""
    found, form = _number_request(request_id), BuyNumberForm()
    name, account = _numbers_account()
    e164, cost = form.e164.data or "", form.monthly_cost.data or None
    buy = lambda: number_requests.buy(db.session, current_user, found, account, name, e164, cost)  # noqa: E731
    refusals.submit(form, buy, lambda: _told_request(found, form), status=303)
    return _fulfilled(found)


@bp.post("/number-requests/<id:request_id>/finish")
@staff_required
def finish_request(request_id: int) -> Response:
    """Link the number bought for the request and pool it, after a link that failed."""
    found, form = _number_request(request_id), FinishRequestForm()
    name, account = _numbers_account()
    finish = lambda: number_requests.finish(db.session, current_user, found, account, name)  # noqa: E731
    refusals.submit(form, finish, lambda: _told_request(found, form), status=303)
    return _fulfilled(found)


@bp.post("/number-requests/<id:request_id>/decline")
@staff_required
def decline_request(request_id: int) -> Response:
    found, form = _number_request(request_id), DeclineRequestForm()
    refusals.submit(
        form,
        lambda: number_requests.decline(db.session, current_user, found, form.reason.data or ""),
        lambda: _request_page(found, decline_form=form),
    )
    flash(f"Declined: {found.organization.name} reads why on their Sending numbers page.", "success")
    return redirect(url_for("staff.number_request", request_id=found.id), 303)


def _fulfilled(found: NumberRequest) -> Response:
    number = found.number
    assert number is not None
    pooled = f"{found.organization.name}'s pool ({number.status_label.lower()})"
    flash(f"{phones.display(number.e164)} bought, linked and added to {pooled}.", "success")
    return redirect(url_for("staff.number_request", request_id=found.id), 303)


def _told_request(found: NumberRequest, form: Any) -> Response:
    """A step that failed is said on the request's page, which shows where the request stands now."""
    flash(refusals.first_error(form) or "", "error")
    return redirect(url_for("staff.number_request", request_id=found.id), 303)
