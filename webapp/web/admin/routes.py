"""The organisation's admin area: one module per area (settings, people and roles, credits, templates,
sending numbers and compliance documents, unmatched messages)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from webapp import ids
from webapp.accounts import access, permissions
from webapp.billing import credits, refills
from webapp.extensions import db
from webapp.messaging import unmatched
from webapp.models import Message, MessageTemplate, Organization, Role, User
from webapp.numbers import pool
from webapp.web import refusals
from webapp.web.admin.forms import SubmitForm
from webapp.web.guards import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


@bp.context_processor
def admin_navigation() -> dict[str, Any]:
    signed_in = current_user.is_authenticated
    return {"admin_rights": access.admin_rights(current_user) if signed_in else {}}


@bp.get("/")
@admin_required
def index() -> str:
    return render_template("admin/index.html", **_overview(current_user.organization))


def _overview(org: Organization) -> dict[str, Any]:
    """The admin area's front page: members, numbers, what waits, the balance, the templates."""
    users = db.session.scalars(
        sa.select(User)
        .where(User.organization_id == org.id)
        .options(selectinload(User.roles).selectinload(Role.permissions))
        .order_by(User.name)
    ).all()
    numbers = pool.numbers_of(db.session, org.id, include_released=False)
    return {
        "org": org,
        "users": users,
        "numbers": numbers,
        "pending": sum(n.status == "pending_documents" for n in numbers),
        "catalogue": permissions.CATALOGUE,
        "unmatched_count": len(unmatched.waiting(db.session, org.id)),
        "balance": credits.balance(db.session, org),
        "open_request": refills.open_request(db.session, org),
        "template_count": db.session.scalar(
            sa.select(sa.func.count()).where(MessageTemplate.organization_id == org.id)
        ),
    }


def _may_handle_unmatched() -> None:
    if not (
        access.is_org_admin(current_user) or access.has_permission(current_user, permissions.ADMIN_UNMATCHED)
    ):
        abort(
            403, description="Unmatched messages are for administrators with the right “Unmatched messages”."
        )


@bp.get("/unmatched")
@admin_required
def unmatched_messages() -> str:
    _may_handle_unmatched()
    org_id = current_user.organization_id
    messages = unmatched.waiting(db.session, org_id)
    by_sender = unmatched.suggestions(db.session, org_id, [m.from_addr for m in messages])
    suggestions = {m.id: by_sender[m.from_addr] for m in messages}
    return render_template("admin/unmatched.html", messages=messages, suggestions=suggestions)


@bp.post("/unmatched/<id:message_id>/assign")
@admin_required
def assign_unmatched(message_id: int) -> Response:
    _may_handle_unmatched()
    form = SubmitForm()
    message = refusals.submit(form, lambda: _assign(message_id), lambda: _refused_on_list(form), status=303)
    return _to_unmatched(f"Message from {message.from_addr} assigned.", "success")


def _assign(message_id: int) -> Message:
    chosen = request.form.get("application_id") or request.form.get("other_application_id")
    return unmatched.assign_to_application(db.session, current_user, message_id, ids.parse(chosen))


def _refused_on_list(form: SubmitForm) -> Response:
    """A refusal is said on the list, as its other news are."""
    return _to_unmatched(refusals.first_error(form) or "", "error")


def _to_unmatched(message: str, category: str) -> Response:
    flash(message, category)
    return redirect(url_for("admin.unmatched_messages"), 303)
