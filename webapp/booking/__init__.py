"""The public booking page (/book/<token>): no sign-in, the candidate's side of an invitation. The rules
are webapp.interviews.booking's; this blueprint parses, calls them and renders."""

from flask import Blueprint

bp = Blueprint("booking", __name__)

from webapp.booking import routes  # noqa: E402,F401
