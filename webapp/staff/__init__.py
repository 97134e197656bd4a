"""Relay's customer-success pages (users with is_staff, who belong to no organisation)."""

from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff")

from webapp.staff import routes  # noqa: E402,F401
