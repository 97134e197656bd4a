"""The audit trail of numbers and compliance: one row per step, who did it, when and what (requests for
numbers too: webapp.numbers.number_requests)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from webapp.models import (
    ComplianceDocument,
    ComplianceEvent,
    ComplianceSubmission,
    NumberRequest,
    SendingNumber,
    User,
)

# What each action reads as on the submission's history.
LABELS = {
    "uploaded": "Uploaded",
    "replaced": "Replaced",
    "submitted": "Submitted for review",
    "document_approved": "Document approved",
    "document_rejected": "Document rejected",
    "approved": "Submission approved",
    "rejected": "Changes requested",
    "expired": "Approval expired",
    "number_added": "Number added",
    "number_activated": "Number activated",
    "number_pending": "Number waits for documents",
    "number_suspended": "Number suspended",
    "number_resumed": "Number resumed",
    "number_released": "Number released",
    # An administrator's request for a number, and how customer success fulfilled it.
    "number_requested": "Number requested",
    "numbers_searched": "Numbers searched",
    "number_bought": "Number bought",
    "number_not_bought": "Purchase refused",
    "number_linked": "Number linked",
    "number_link_failed": "Link failed",
    "number_not_pooled": "Not added to the pool",
    "request_done": "Request done",
    "request_declined": "Request declined",
    "number_paused": "Number paused for new conversations (health)",
    "number_let_in": "Number takes new conversations again",
}


def record(
    session: Session,
    *,
    organization_id: int,
    country: str,
    action: str,
    actor: User | None,
    detail: str = "",
    submission: ComplianceSubmission | None = None,
    document: ComplianceDocument | None = None,
    number: SendingNumber | None = None,
    number_request: NumberRequest | None = None,
) -> ComplianceEvent:
    if action not in LABELS:
        raise ValueError(f"unknown audit action {action!r}")
    event = ComplianceEvent(
        organization_id=organization_id,
        country=country,
        action=action,
        actor_id=actor.id if actor is not None else None,
        detail=detail[:1000],
        submission_id=submission.id if submission is not None else None,
        document_id=document.id if document is not None else None,
        number_id=number.id if number is not None else None,
        number_request_id=number_request.id if number_request is not None else None,
    )
    session.add(event)
    session.flush()
    return event


def history(session: Session, organization_id: int, country: str) -> list[ComplianceEvent]:
    """Everything that happened to this organisation's documents and numbers in this country, newest first."""
    return list(
        session.scalars(
            sa.select(ComplianceEvent)
            .where(ComplianceEvent.organization_id == organization_id, ComplianceEvent.country == country)
            .options(selectinload(ComplianceEvent.actor))
            .order_by(ComplianceEvent.created_at.desc(), ComplianceEvent.id.desc())
        )
    )


def of_request(session: Session, request_id: int) -> list[ComplianceEvent]:
    """Every step of one request for a number, newest first."""
    return list(
        session.scalars(
            sa.select(ComplianceEvent)
            .where(ComplianceEvent.number_request_id == request_id)
            .options(selectinload(ComplianceEvent.actor))
            .order_by(ComplianceEvent.created_at.desc(), ComplianceEvent.id.desc())
        )
    )
