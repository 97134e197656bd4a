"""The inbox: every conversation the user may see, in one list, newest first, live."""

from flask import Blueprint

bp = Blueprint("inbox", __name__)

from webapp.inbox import routes  # noqa: E402,F401  (routes attach themselves to bp)
