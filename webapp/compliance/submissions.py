"""A submission's way: admins upload one document per requirement and submit; staff approve or reject
each document; approval activates the country's numbers, a later rejection or expiry suspends them.

    draft ──submit──► submitted ──every document approved──► approved ──expires_at passes──► expired
      ▲                  │  ▲                                   │
      │          a document rejected                    a document rejected
      │                  ▼  │ submit (rejected ones replaced)   ▼
      └──────────────── rejected ◄──────────────────────────────┘

Every function leaves an audit row, flushes, and lets the caller commit (one commit per action). A
decision on the submission's status (submitting, reviewing) is taken under its row lock and on what the
database holds once the lock is ours: two staff approving its last two documents at once take turns, and
the second sees the first's approval (tests/test_races.py).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from webapp.compliance import audit, catalogue
from webapp.compliance.files import FileStore, Upload
from webapp.database import lock_row
from webapp.models import (
    AcceptableDocument,
    ComplianceDocument,
    ComplianceRequirement,
    ComplianceSubmission,
    User,
    utcnow,
)
from webapp.models.upsert import insert_ignore
from webapp.numbers import pool
from webapp.refusals import Refused
from webapp.unique import refusing

MAX_VALUE = 500
MAX_REASON = 500
EDITABLE = ("draft", "rejected", "expired")


class ComplianceRefused(Refused):
    """The step cannot be taken."""


def get(session: Session, organization_id: int, country: str) -> ComplianceSubmission | None:
    return session.scalar(
        sa.select(ComplianceSubmission)
        .where(
            ComplianceSubmission.organization_id == organization_id, ComplianceSubmission.country == country
        )
        .options(selectinload(ComplianceSubmission.documents))
    )


def get_or_create(session: Session, organization_id: int, country: str) -> ComplianceSubmission:
    """The organisation's one submission for the country (two admins starting at once get the same)."""
    if not catalogue.requires_documents(session, country):
        raise ComplianceRefused(f"{country} numbers need no documents.")
    insert_ignore(
        session,
        ComplianceSubmission,
        {
            "organization_id": organization_id,
            "country": country,
            "status": "draft",
            "created_at": utcnow(),
            "updated_at": utcnow(),
        },
        ["organization_id", "country"],
    )
    submission = get(session, organization_id, country)
    assert submission is not None
    return submission


def upload(
    session: Session,
    store: FileStore,
    actor: User,
    submission: ComplianceSubmission,
    requirement_id: int,
    kind_id: int | None,
    value: str | None,
    file: Upload,
) -> ComplianceDocument:
    """Store the file (encrypted) and make it the requirement's current document; the one it replaces
    stays in the history. On any refusal nothing is written; if the caller's commit fails it must
    `store.remove(document.stored_name)`."""
    requirement = session.scalar(
        sa.select(ComplianceRequirement).where(
            ComplianceRequirement.id == requirement_id, ComplianceRequirement.country == submission.country
        )
    )
    if requirement is None:
        raise ComplianceRefused("That requirement is not one of this country's.")
    kind = (
        session.scalar(
            sa.select(AcceptableDocument).where(
                AcceptableDocument.id == kind_id, AcceptableDocument.requirement_id == requirement.id
            )
        )
        if kind_id is not None
        else None
    )
    if kind is None:
        raise ComplianceRefused("Choose which of the accepted documents this is.", "kind")
    clean_value = " ".join((value or "").split())
    if requirement.value_label:
        if not clean_value:
            raise ComplianceRefused(
                f"Enter the {requirement.value_label[0].lower()}{requirement.value_label[1:]}.", "value"
            )
        if len(clean_value) > MAX_VALUE:
            raise ComplianceRefused(f"At most {MAX_VALUE} characters.", "value")
    else:
        clean_value = ""
    if submission.status not in EDITABLE:
        raise ComplianceRefused(
            "The documents are waiting for review and cannot be changed now."
            if submission.status == "submitted"
            else "The documents are approved. Ask customer success if something changed."
        )
    current = submission.current_documents.get(requirement.id)
    if current is not None and current.status == "approved" and submission.status == "rejected":
        raise ComplianceRefused("This document is approved; only the rejected ones need replacing.")

    stored_name = store.write(file.data)
    # Two uploads for one requirement at once both found the same current document (or none): the
    # database keeps one current document, and the other upload is told.
    taken = ComplianceRefused(
        f"Someone has just uploaded a document for “{requirement.name}”: check it on this page, and "
        "upload yours again if it should replace that one.",
        "file",
    )
    try:
        with refusing(session, {"uq_compliance_document_current": taken}):
            if current is not None:
                current.status = "replaced"
                session.flush()  # the current one steps aside before the new one takes its place
            document = ComplianceDocument(
                submission=submission,
                requirement_id=requirement.id,
                kind_id=kind.id,
                value=clean_value or None,
                filename=file.filename,
                content_type=file.content_type,
                size=file.size,
                sha256=file.sha256,
                stored_name=stored_name,
                status="pending",
                uploaded_by_id=actor.id,
            )
            session.add(document)
        action = "replaced" if current is not None else "uploaded"
        audit.record(
            session,
            organization_id=submission.organization_id,
            country=submission.country,
            action=action,
            actor=actor,
            detail=f"{requirement.name}: {kind.name} — {file.filename} "
            f"({_size(file.size)}, sha256 {file.sha256[:12]}…)",
            submission=submission,
            document=document,
        )
    except BaseException:
        store.remove(stored_name)
        raise
    return document


def missing(session: Session, submission: ComplianceSubmission) -> list[str]:
    """What stops the submission from being submitted, one line per requirement."""
    current = submission.current_documents
    problems = []
    for requirement in catalogue.requirements(session, submission.country):
        document = current.get(requirement.id)
        if document is None:
            problems.append(f"{requirement.name}: no document yet")
        elif document.status == "rejected":
            problems.append(f"{requirement.name}: rejected, upload a new document")
    return problems


def _locked(session: Session, submission: ComplianceSubmission) -> ComplianceSubmission:
    """The submission and its documents as committed, under the submission's lock until the commit."""
    return lock_row(
        session, ComplianceSubmission, submission.id, selectinload(ComplianceSubmission.documents)
    )


def submit(session: Session, actor: User, submission: ComplianceSubmission) -> None:
    submission = _locked(session, submission)
    if submission.status == "submitted":
        raise ComplianceRefused("Already submitted: customer success is reviewing it.")
    if submission.status == "approved":
        raise ComplianceRefused("Already approved.")
    problems = missing(session, submission)
    if problems:
        raise ComplianceRefused(
            "Every requirement needs a document before submitting. " + "; ".join(problems) + "."
        )
    submission.status = "submitted"
    submission.submitted_at = utcnow()
    audit.record(
        session,
        organization_id=submission.organization_id,
        country=submission.country,
        action="submitted",
        actor=actor,
        submission=submission,
    )
    session.flush()


def review_document(
    session: Session,
    actor: User,
    submission: ComplianceSubmission,
    document_id: int,
    decision: str,
    reason: str | None = None,
    expires_at: datetime | None = None,
) -> ComplianceDocument:
    """Staff's decision on one current document of this submission: "approve" or "reject" (with a reason
    the admin reads). The last approval approves the submission and activates the country's numbers; a
    rejection of an approved submission suspends them."""
    if not actor.is_staff:
        raise ComplianceRefused("Only customer success reviews documents.")
    submission = _locked(session, submission)
    document = session.scalar(
        sa.select(ComplianceDocument).where(
            ComplianceDocument.id == document_id, ComplianceDocument.submission_id == submission.id
        )
    )
    if document is None or document.status == "replaced":
        raise ComplianceRefused("That document is not a current document of this submission.")
    if submission.status not in ("submitted", "rejected", "approved"):
        raise ComplianceRefused("The documents have not been submitted for review.")
    if decision == "approve":
        if document.status == "approved":
            raise ComplianceRefused("Already approved.")
        document.status, document.rejection_reason = "approved", None
        action, detail = "document_approved", document.requirement.name
    elif decision == "reject":
        text = " ".join((reason or "").split())
        if not text:
            raise ComplianceRefused("Say why, so that the admin knows what to upload instead.", "reason")
        if len(text) > MAX_REASON:
            raise ComplianceRefused(f"At most {MAX_REASON} characters.", "reason")
        document.status, document.rejection_reason = "rejected", text
        action, detail = "document_rejected", f"{document.requirement.name}: {text}"
    else:
        raise ComplianceRefused("Approve or reject.")
    document.reviewed_by_id, document.reviewed_at = actor.id, utcnow()
    audit.record(
        session,
        organization_id=submission.organization_id,
        country=submission.country,
        action=action,
        actor=actor,
        detail=detail,
        submission=submission,
        document=document,
    )
    session.flush()
    session.refresh(submission, ["documents"])
    _settle(session, actor, submission, expires_at)
    return document


def _settle(
    session: Session, actor: User, submission: ComplianceSubmission, expires_at: datetime | None
) -> None:
    """The submission's status after a decision on one of its documents."""
    current = submission.current_documents
    statuses = [
        current[r.id].status if r.id in current else None
        for r in catalogue.requirements(session, submission.country)
    ]
    if "rejected" in statuses and submission.status in ("submitted", "approved"):
        was_approved = submission.status == "approved"
        submission.status = "rejected"
        audit.record(
            session,
            organization_id=submission.organization_id,
            country=submission.country,
            action="rejected",
            actor=actor,
            detail="Approval withdrawn" if was_approved else "",
            submission=submission,
        )
        if was_approved:
            pool.suspend_country(
                session, actor, submission.organization_id, submission.country, "approval withdrawn"
            )
    elif (
        statuses and all(s == "approved" for s in statuses) and submission.status in ("submitted", "rejected")
    ):
        submission.status = "approved"
        submission.approved_at = utcnow()
        submission.expires_at = expires_at
        audit.record(
            session,
            organization_id=submission.organization_id,
            country=submission.country,
            action="approved",
            actor=actor,
            detail=f"Valid until {expires_at:%d %b %Y}" if expires_at else "",
            submission=submission,
        )
        pool.activate_country(
            session, actor, submission.organization_id, submission.country, "documents approved"
        )
    session.flush()


def expire_due(session: Session, now: datetime | None = None) -> list[ComplianceSubmission]:
    """Approvals whose expires_at has passed become `expired` and their numbers stop (run by the clock,
    webapp.scheduling, every COMPLIANCE_EXPIRY_SECONDS, and by `flask --app wsgi compliance expire`)."""
    moment = now or utcnow()
    due = list(
        session.scalars(
            sa.select(ComplianceSubmission)
            .where(ComplianceSubmission.status == "approved", ComplianceSubmission.expires_at <= moment)
            .with_for_update()
        )
    )
    for submission in due:
        submission.status = "expired"
        audit.record(
            session,
            organization_id=submission.organization_id,
            country=submission.country,
            action="expired",
            actor=None,
            detail=f"Approval ran out on {submission.expires_at:%d %b %Y}",
            submission=submission,
        )
        pool.suspend_country(
            session, None, submission.organization_id, submission.country, "approval expired"
        )
    session.flush()
    return due


def waiting_for_review(session: Session) -> list[ComplianceSubmission]:
    """Staff's queue: submitted, oldest first."""
    return list(
        session.scalars(
            sa.select(ComplianceSubmission)
            .where(ComplianceSubmission.status == "submitted")
            .options(selectinload(ComplianceSubmission.organization))
            .order_by(ComplianceSubmission.submitted_at, ComplianceSubmission.id)
        )
    )


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} KB"
