"""The ATS pages: jobs, their applications, and the candidate-application page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, request
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from webapp.accounts import access
from webapp.extensions import db
from webapp.jobs import queries
from webapp.messaging import subjects
from webapp.models import Application, Job
from webapp.web.composer import ComposeForm
from webapp.web.conversation_panel import page_of, subject_panel
from webapp.web.interview_status import status_context as interview_context
from webapp.web.list_filters import ApplicationFilterForm
from webapp.web.pages import render

bp = Blueprint("jobs", __name__, template_folder="templates")


@bp.get("/jobs")
@login_required
def index() -> Response:
    rows = queries.jobs_for(db.session, current_user)
    return render("jobs/index.html", "jobs/index.html", rows=rows)


@bp.get("/jobs/<id:job_id>")
@login_required
def detail(job_id: int) -> Response:
    job = access.get_job(db.session, current_user, job_id) or abort(404)
    context, status = _applications(job, ApplicationFilterForm(request.args))
    return render("jobs/detail.html", "jobs/_applications.html", status=status, **context)


def _applications(job: Job, form: ApplicationFilterForm) -> tuple[dict[str, Any], int]:
    """The job's applications as the filter asks (none, and 400, for a filter that is not one)."""
    applications, total, status = [], 0, 400
    if form.validate():
        q, stage = form.q.data or "", form.stage.data or ""
        applications = queries.applications_for(db.session, current_user, job, q=q, stage=stage)
        # Under the cap, the rows are the count; over it, the true number (for "Message all N").
        total, status = len(applications), 200
        if total >= queries.MAX_ROWS:
            total = queries.count_matching(db.session, current_user, job.id, q, stage)
    return {
        "job": job,
        "form": form,
        "applications": applications,
        "total": total,
        "activity": queries.activity_for(db.session, current_user, applications),
    }, status


@bp.get("/applications/<id:application_id>")
@login_required
def application(application_id: int) -> Response:
    app_ = access.get_application(db.session, current_user, application_id) or abort(404)
    return application_page(app_, request.args.get("tab"))


@page_of("application")
def application_page(
    application: Application, tab: str | None, form: ComposeForm | None = None, status: int = 200
) -> Response:
    """The candidate-application page: the profile, and the conversation's panel."""
    about = subjects.of_application(application)
    others = access.other_applications(db.session, current_user, application)
    context = subject_panel(about, tab, form)
    context.update(interview_context(application))
    page = "jobs/application.html"
    response = render(page, page, status=status, application=application, others=others, **context)
    db.session.commit()  # the read marker of the tab on screen, after rendering (a commit expires all)
    return response
