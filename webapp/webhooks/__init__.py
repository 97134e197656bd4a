"""Vonage calls these: inbound messages and delivery receipts. The only JSON endpoints, the only
CSRF-exempt ones; each request is signed (webapp.webhooks.signature) or refused with 401."""

from flask import Blueprint

from webapp.extensions import csrf

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)

from webapp.webhooks import routes  # noqa: E402,F401
