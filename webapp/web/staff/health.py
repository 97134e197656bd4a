"""Customer-success pages of number health (issue 23 §2): every customer's numbers, riskiest first;
letting a paused number take new conversations again; a customer's own daily cap per number."""

from __future__ import annotations

import math

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp import ids, phones
from webapp.extensions import db
from webapp.models import Organization, SendingNumber, utcnow
from webapp.numbers import guidance, health, health_report
from webapp.web import refusals
from webapp.web.guards import staff_required
from webapp.web.staff.forms import LetInForm, NumberCapForm
from webapp.web.staff.routes import bp

PER_PAGE = 25  # the riskiest first: what staff act on fits one screen


@bp.get("/numbers/health")
@staff_required
def number_health() -> tuple[str, int]:
    return _page()


def _page(
    cap_form: NumberCapForm | None = None, status: int = 200, org_id: int | None = None
) -> tuple[str, int]:
    sort = request.args.get("sort", "share")
    sort = sort if sort in health_report.SORTS else "share"
    org_id = org_id or ids.parse(request.args.get("org"))
    org = db.session.get(Organization, org_id) if org_id else None
    page = max(1, ids.parse(request.args.get("page")) or 1)
    rows, total = health_report.overview(
        db.session, organization_id=org.id if org else None, sort=sort, page=page, per_page=PER_PAGE
    )
    return render_template(
        "staff/number_health.html",
        staff=True,
        rows=rows,
        total=total,
        sort=sort,
        org=org,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        notices=health_report.notices_today(db.session, utcnow(), org.id if org else None),
        near=health.NEAR,
        failure_rate=health.FAILURE_RATE,
        failure_min_sent=health.FAILURE_MIN_SENT,
        guidance=guidance.table(),
        let_in_form=LetInForm(),
        cap_form=cap_form or NumberCapForm(formdata=None, cap=str(org.number_daily_cap or "") if org else ""),
    ), status


@bp.post("/numbers/<id:number_id>/let-in")
@staff_required
def let_number_in(number_id: int) -> Response:
    number = db.session.get(SendingNumber, number_id) or abort(404)
    form = LetInForm()
    refusals.submit(
        form,
        lambda: health.let_in(db.session, current_user, number, utcnow()),
        lambda: _told(refusals.first_error(form) or ""),
        status=303,
    )
    flash(f"{phones.display(number.e164)} takes new conversations again.", "success")
    return redirect(url_for("staff.number_health", **request.args), 303)


def _told(message: str) -> Response:
    flash(message, "error")
    return redirect(url_for("staff.number_health", **request.args), 303)


@bp.post("/organizations/<id:org_id>/number-cap")
@staff_required
def number_cap(org_id: int) -> Response:
    org = db.session.get(Organization, org_id) or abort(404)
    form = NumberCapForm()
    cap = refusals.submit(
        form, lambda: health.set_cap(org, form.cap.data or ""), lambda: _page(form, 422, org.id)
    )
    said = f"at most {cap:,} SMS per number and day" if cap else "the country's guidance per number"
    flash(f"{org.name}: {said}. The figures follow at the clock's next pass.", "success")
    return redirect(url_for("staff.number_health", org=org.id), 303)
