"""The CRM's pages: talent communities, their members (prospects), and the prospect-community page."""

from flask import Blueprint

bp = Blueprint("crm", __name__)

from webapp.crm import routes  # noqa: E402,F401
