"""The ATS pages: jobs, their applications, and the candidate-application page."""

from flask import Blueprint

bp = Blueprint("jobs", __name__)

from webapp.jobs import routes  # noqa: E402,F401
