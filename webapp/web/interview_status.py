"""The Interview card of an application: each invitation's state, live, and the way to invite
(templates/interview_status/_status.html).

Who includes it: the application page (webapp.web.jobs) draws it; the interview routes
(webapp.web.interviews) answer its refresh. The state of an invitation in words (`invitation_state`, a
template filter) is also what the conversation panel's thread shows on an invitation's message.
"""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from webapp.extensions import db
from webapp.interviews import invitations
from webapp.messaging import checks, subjects
from webapp.models import Application, Invitation, utcnow


def status_context(application: Application) -> dict[str, Any]:
    return {
        "interview_application": application,
        "interview_invitations": invitations.of_application(db.session, application.id),
        "may_invite": checks.allowed_channels(current_user, subjects.of_application(application)) != [],
    }


def invitation_state(invitation: Invitation) -> str:
    """The invitation's state in words, for the signed-in team (at its organisation's clock)."""
    org = current_user.organization if current_user.is_authenticated else None
    return invitations.describe(invitation, org.time_zone if org else None, utcnow())
