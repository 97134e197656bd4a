"""The organisation's admin area."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from webapp.admin import compliance, routes  # noqa: E402,F401
