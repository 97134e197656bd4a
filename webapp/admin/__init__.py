"""The organisation's admin area: one module per area (settings, people and roles, credits, templates,
sending numbers and compliance documents, unmatched messages)."""

from typing import Any

from flask import Blueprint
from flask_login import current_user

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.context_processor
def admin_navigation() -> dict[str, Any]:
    from webapp import access

    signed_in = current_user.is_authenticated
    return {"admin_rights": access.admin_rights(current_user) if signed_in else {}}


from webapp.admin import (  # noqa: E402,F401
    compliance,
    credits,
    people,
    routes,
    settings,
    templates,
)
