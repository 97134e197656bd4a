"""Proof-of-business documents for sending numbers, modelled on the carriers' bundles.

The catalogue (ComplianceRequirement, AcceptableDocument) is data, loaded from
webapp/compliance/requirements.json: adding a country is adding rows. An organisation has one
ComplianceSubmission per country, reused by every number of that country; it holds one current
ComplianceDocument per requirement (older ones stay, marked `replaced`), and every step leaves a
ComplianceEvent.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.organization import Organization
    from webapp.models.user import User

# draft: being filled in · submitted: waiting for review · approved: the country's numbers send ·
# rejected: a document was refused, the admin replaces it and submits again · expired: the approval ran
# out (expires_at), the admin submits fresh documents.
SUBMISSION_STATUSES = ("draft", "submitted", "approved", "rejected", "expired")
SUBMISSION_LABELS = {
    "draft": "Not submitted",
    "submitted": "Waiting for review",
    "approved": "Approved",
    "rejected": "Changes needed",
    "expired": "Expired",
}
# pending: waiting for review · approved · rejected (with a reason) · replaced: kept for the history.
DOCUMENT_STATUSES = ("pending", "approved", "rejected", "replaced")
DOCUMENT_LABELS = {
    "pending": "Waiting for review",
    "approved": "Approved",
    "rejected": "Rejected",
    "replaced": "Replaced",
}


class ComplianceRequirement(Base):
    """One thing a country's carriers ask for (the business name, its address …)."""

    __tablename__ = "compliance_requirement"
    __table_args__ = (sa.UniqueConstraint("country", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(sa.String(2), index=True)
    code: Mapped[str] = mapped_column(sa.String(50))
    name: Mapped[str] = mapped_column(sa.String(200))
    # A requirement that is also a value (the business name, the registration number) asks for it in a
    # text field labelled so; None: the document alone.
    value_label: Mapped[str | None] = mapped_column(sa.String(200))
    position: Mapped[int] = mapped_column(default=0)

    documents: Mapped[list[AcceptableDocument]] = relationship(
        back_populates="requirement", order_by="AcceptableDocument.position"
    )


class AcceptableDocument(Base):
    """A kind of document that proves a requirement (an Extrait K-bis, a utility bill …)."""

    __tablename__ = "acceptable_document"
    __table_args__ = (sa.UniqueConstraint("requirement_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    requirement_id: Mapped[int] = mapped_column(sa.ForeignKey("compliance_requirement.id"))
    code: Mapped[str] = mapped_column(sa.String(50))
    name: Mapped[str] = mapped_column(sa.String(300))
    position: Mapped[int] = mapped_column(default=0)

    requirement: Mapped[ComplianceRequirement] = relationship(back_populates="documents")


class ComplianceSubmission(Base):
    __tablename__ = "compliance_submission"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "country"),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'approved', 'rejected', 'expired')", name="status_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"))
    country: Mapped[str] = mapped_column(sa.String(2))
    status: Mapped[str] = mapped_column(sa.String(20), default="draft")
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by staff on approval when the documents run out (a K-bis is taken as valid for three months
    # by some carriers); `flask compliance expire` suspends the numbers after it.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    organization: Mapped[Organization] = relationship()
    documents: Mapped[list[ComplianceDocument]] = relationship(
        back_populates="submission", order_by="ComplianceDocument.id"
    )

    @property
    def status_label(self) -> str:
        return SUBMISSION_LABELS.get(self.status, self.status)

    @property
    def current_documents(self) -> dict[int, ComplianceDocument]:
        """The document that counts for each requirement, by requirement id (replaced ones left out)."""
        return {d.requirement_id: d for d in self.documents if d.status != "replaced"}


class ComplianceDocument(Base):
    """One uploaded proof for one requirement. The file is Fernet-encrypted under UPLOAD_DIR with a
    random name (`stored_name`); `sha256` and `size` are of the file as uploaded."""

    __tablename__ = "compliance_document"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected', 'replaced')", name="status_known"),
        sa.CheckConstraint(
            "content_type IN ('application/pdf', 'image/png', 'image/jpeg')", name="type_known"
        ),
        # One current document per requirement; replaced ones are history.
        sa.Index(
            "uq_compliance_document_current",
            "submission_id",
            "requirement_id",
            unique=True,
            sqlite_where=sa.text("status != 'replaced'"),
            postgresql_where=sa.text("status != 'replaced'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(sa.ForeignKey("compliance_submission.id"), index=True)
    requirement_id: Mapped[int] = mapped_column(sa.ForeignKey("compliance_requirement.id"))
    kind_id: Mapped[int] = mapped_column(sa.ForeignKey("acceptable_document.id"))
    value: Mapped[str | None] = mapped_column(sa.String(500))
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(50))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    stored_name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    rejection_reason: Mapped[str | None] = mapped_column(sa.String(500))
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    submission: Mapped[ComplianceSubmission] = relationship(back_populates="documents")
    requirement: Mapped[ComplianceRequirement] = relationship()
    kind: Mapped[AcceptableDocument] = relationship()
    uploaded_by: Mapped[User | None] = relationship(foreign_keys=[uploaded_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])

    @property
    def status_label(self) -> str:
        return DOCUMENT_LABELS.get(self.status, self.status)


class ComplianceEvent(Base):
    """The audit trail: who did what, when, to a submission, one of its documents, a number or a
    request for one."""

    __tablename__ = "compliance_event"
    __table_args__ = (sa.Index("ix_compliance_event_org_country", "organization_id", "country", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"))
    country: Mapped[str] = mapped_column(sa.String(2))
    submission_id: Mapped[int | None] = mapped_column(sa.ForeignKey("compliance_submission.id"))
    document_id: Mapped[int | None] = mapped_column(sa.ForeignKey("compliance_document.id"))
    number_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sending_number.id"))
    # A step of an administrator's request for a number (webapp.numbers.number_requests).
    number_request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("number_request.id"), index=True)
    # None: Relay itself (an approval that expired).
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    action: Mapped[str] = mapped_column(sa.String(40))
    detail: Mapped[str] = mapped_column(sa.String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship()
