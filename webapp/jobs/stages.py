"""An application's stage (webapp.models.ats.STAGES) and what moving it sets off.

The one place a stage changes: reaching a final stage (hired, rejected) closes the application, which
cancels the follow-ups still waiting in its conversation (webapp.messaging.follow_ups), refunded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from webapp.messaging import follow_ups
from webapp.models import Application
from webapp.models.ats import STAGES
from webapp.refusals import Refused


class StageRefused(Refused):
    """A stage that is not one."""


def move(session: Session, application: Application, stage: str, now: datetime | None = None) -> list[int]:
    """Put the application at `stage`, in the caller's transaction; the follow-ups it cancelled."""
    if stage not in STAGES:
        raise StageRefused("Choose one of the stages.", "stage")
    application.stage = stage
    if stage in follow_ups.FINAL_STAGES:
        session.flush()
        return follow_ups.application_closed(session, application.id, now)
    return []
