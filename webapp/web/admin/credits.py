"""Admin → Organisation → Credits: the shared balance, the ledger with its filters and CSV export,
usage by month, user and destination country, and asking customer success for a refill."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, abort, flash, redirect, request, stream_with_context, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from webapp import ids
from webapp.accounts import permissions
from webapp.billing import credits, ledger, refills
from webapp.extensions import db
from webapp.web import refusals
from webapp.web.admin.forms import RefillRequestForm
from webapp.web.admin.routes import bp
from webapp.web.guards import permission_required
from webapp.web.pages import render

credits_right = permission_required(permissions.ADMIN_CREDITS)


def _date(name: str) -> tuple[date | None, str | None]:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None, None
    try:
        return date.fromisoformat(raw), None
    except ValueError:
        return None, "Pick a date (YYYY-MM-DD)."


def _filters() -> tuple[ledger.Filters, dict[str, str]]:
    """The ledger's filters from the address; a value that is not one is ignored and said so."""
    errors: dict[str, str] = {}
    kind = request.args.get("kind") or None
    if kind is not None and kind not in ledger.KIND_LABELS:
        errors["kind"], kind = "Choose a type from the list.", None
    user_raw = request.args.get("user") or ""
    user_id = ids.parse(user_raw) if user_raw else None
    if user_raw and user_id is None:
        errors["user"] = "Choose a person from the list."
    since, error = _date("since")
    if error:
        errors["since"] = error
    until, error = _date("until")
    if error:
        errors["until"] = error
    if since and until and since > until:
        errors["until"] = "The end is before the start."
    return ledger.Filters(kind, user_id, since, until), errors


def _page_number() -> int:
    return ids.parse(request.args.get("page") or "1") or 1


def _context(request_form: RefillRequestForm | None = None) -> dict[str, Any]:
    org = current_user.organization
    top = org.top
    context: dict[str, Any] = {
        "org": org,
        "top": top,
        "balance": credits.balance(db.session, org),
        "threshold": top.low_credit_threshold,
        "read_only": org.parent_id is not None,
        "zone": org.time_zone,
        "request_form": request_form or RefillRequestForm(formdata=None),
    }
    if org.parent_id is not None:
        # A sub-organisation's admins see the shared balance, not the parent's ledger.
        return context
    account = credits.account_for(db.session, org)
    filters, errors = _filters()
    number = _page_number()
    rows, total = ledger.page(db.session, account.id, filters, org.time_zone, number)
    use = ledger.usage(db.session, account.id, org.time_zone)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    context.update(
        filters=filters,
        filter_errors=errors,
        filter_args=args,
        people=ledger.users(db.session, account.id),
        kinds=ledger.KIND_LABELS,
        rows=rows,
        total=total,
        page_number=number,
        pages=max(1, -(-total // ledger.PER_PAGE)),
        usage=use,
        chart=ledger.chart(use),
        month_label=ledger.month_label,
        open_request=refills.open_request(db.session, org),
        in_sync=credits.ledger_sum(db.session, account.id) == account.balance,
    )
    return context


@bp.get("/credits", endpoint="credits")
@credits_right
def credits_page() -> Response:
    return render("admin/credits.html", "admin/_ledger.html", **_context())


@bp.get("/credits/ledger.csv")
@credits_right
def ledger_csv() -> Response:
    org = current_user.organization
    if org.parent_id is not None:
        abort(404)
    filters, errors = _filters()
    if errors:
        abort(400, description="The ledger's filters are not valid: " + " ".join(errors.values()))
    # Read inside this request's app context, written out as the rows come.
    rows = ledger.csv_chunks(db.session, credits.account_for(db.session, org).id, filters, org.time_zone)
    name = f"relay-credits-{date.today().isoformat()}.csv"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(stream_with_context(rows), mimetype="text/csv", headers=disposition)


@bp.post("/credits/request")
@credits_right
def request_refill() -> BaseResponse:
    form = RefillRequestForm()
    refusals.submit(
        form,
        lambda: refills.request_refill(db.session, current_user, form.note.data or ""),
        lambda: render("admin/credits.html", "admin/credits.html", **_context(form)),
    )
    flash("Customer success has been asked to refill your credits.", "success")
    return redirect(url_for("admin.credits") + "#refill", 303)
