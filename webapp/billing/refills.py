"""Asking for credits and giving them: an admin's refill request, and customer success's refill.

The refill itself is webapp.billing.credits.top_up (the same rules as `flask credits top-up`); this
module adds what the pages need around it: a request stays open until staff refill that account.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from webapp.billing import credits
from webapp.models import CreditTransaction, Organization, RefillRequest, User, utcnow
from webapp.refusals import Refused

NOTE_LENGTH = 500


class RequestRefused(Refused):
    """The request cannot be made; said beside its note."""

    def __init__(self, message: str, field: str | None = "note") -> None:
        super().__init__(message, field)


def open_request(session: Session, organization: Organization) -> RefillRequest | None:
    """The account's request waiting for customer success, if any."""
    return session.scalar(
        sa.select(RefillRequest)
        .where(RefillRequest.organization_id == organization.top.id, RefillRequest.handled_at.is_(None))
        .order_by(RefillRequest.created_at)
        .limit(1)
    )


def request_refill(session: Session, user: User, note: str = "") -> RefillRequest:
    """An admin of the top organisation asks for credits; one open request per account is enough."""
    org = user.organization
    if org is None or org.parent_id is not None:
        raise RequestRefused("Credits are held by the parent organisation: its administrators ask for them.")
    note = (note or "").strip()
    if len(note) > NOTE_LENGTH:
        raise RequestRefused(f"The note is {len(note)} characters long; at most {NOTE_LENGTH} fit.")
    existing = open_request(session, org)
    if existing is not None:
        return existing
    request = RefillRequest(organization_id=org.id, requested_by_id=user.id, note=note)
    session.add(request)
    session.flush()
    return request


def waiting(session: Session) -> list[RefillRequest]:
    """Every open request, oldest first: the staff page's queue."""
    return list(
        session.scalars(
            sa.select(RefillRequest)
            .where(RefillRequest.handled_at.is_(None))
            .options(joinedload(RefillRequest.organization), joinedload(RefillRequest.requested_by))
            .order_by(RefillRequest.created_at)
        )
    )


def refill(
    session: Session, staff: User, organization: Organization, amount_text: str, note: str
) -> CreditTransaction:
    """Staff add credits to the organisation's (top) account and close its open requests.

    Raises credits.RefillRefused (with the field to show it next to) and changes nothing then.
    """
    if not staff.is_staff:
        raise PermissionError("only Relay's staff refill an account")
    amount = credits.parse_amount(amount_text)
    row = credits.top_up(session, organization, amount, note, staff)
    session.execute(
        sa.update(RefillRequest)
        .where(RefillRequest.organization_id == organization.top.id, RefillRequest.handled_at.is_(None))
        .values(handled_at=utcnow(), handled_by_id=staff.id, transaction_id=row.id)
        .execution_options(synchronize_session=False)
    )
    return row
