"""An organisation's pool of sending numbers: adding, suspending, releasing, and the one rule that decides
whether a number may send (a number in a country that asks for documents sends only while its
organisation's submission for that country is approved).

Routing reads the result, never this module: `webapp.messaging.compose.sender_number` picks among
`status == "active"` numbers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp import phones, unique
from webapp.compliance import audit, catalogue
from webapp.models import (
    ComplianceSubmission,
    Conversation,
    Message,
    Organization,
    SendingNumber,
    User,
    utcnow,
)
from webapp.models.organization import family_below
from webapp.refusals import Refused

USAGE_DAYS = 30


class NumberRefused(Refused):
    """The change cannot be made; about the number unless it says otherwise."""

    def __init__(self, message: str, field: str | None = "number") -> None:
        super().__init__(message, field)


def cleared(session: Session, organization_id: int, country: str) -> bool:
    """True when numbers of this organisation in this country may send as far as documents go."""
    if not catalogue.requires_documents(session, country):
        return True
    status = session.scalar(
        sa.select(ComplianceSubmission.status).where(
            ComplianceSubmission.organization_id == organization_id, ComplianceSubmission.country == country
        )
    )
    return status == "approved"


def status_for(session: Session, organization_id: int, country: str) -> str:
    """The status a number that nobody stopped has: active, or pending documents."""
    return "active" if cleared(session, organization_id, country) else "pending_documents"


def parse(raw: str, chosen_country: str | None) -> tuple[str, str]:
    """E.164 and country of a typed number; the country comes from the number, or, for numbers that
    belong to no region (+800, +882 …), from the choice. Raises NumberRefused."""
    try:
        e164 = phones.normalise(raw)
    except phones.InvalidPhoneNumber as error:
        raise NumberRefused(str(error)) from None
    region = phones.country_of(e164)
    if region and region in phonenumbers.SUPPORTED_REGIONS:
        return e164, region
    country = (chosen_country or "").strip().upper()
    if not country:
        raise NumberRefused(
            f"{phones.display(e164)} belongs to no country: choose the country it sends for.", "country"
        )
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise NumberRefused(f"{country} is not a country code.", "country")
    return e164, country


def add(
    session: Session,
    actor: User,
    organization: Organization,
    raw_number: str,
    *,
    sms: bool,
    whatsapp: bool,
    country: str | None = None,
    provider: str | None = None,
) -> SendingNumber:
    """Put a number in the organisation's pool (or back in it, if it was released from this pool).
    `provider` names the provider whose account holds it (None: the one the app sends through)."""
    e164, number_country = parse(raw_number, country)
    if not (sms or whatsapp):
        raise NumberRefused("Choose what the number sends: SMS, WhatsApp or both.", "capabilities")
    existing = session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == e164))
    if existing is not None:
        if existing.organization_id != organization.id:
            # Conversations of the other customer keep pointing at this row; it cannot change hands.
            raise NumberRefused(
                f"{phones.display(e164)} belongs to another customer ({existing.organization.name})."
            )
        if existing.status != "released":
            raise NumberRefused(f"{phones.display(e164)} is already in this pool.")
        number = existing
        status = status_for(session, organization.id, number.country)
        number.released_at = None
        number.sms, number.whatsapp = sms, whatsapp
        number.status = status
        number.provider = provider or number.provider
        detail = "Taken back into the pool after its release"
    else:
        number = SendingNumber(organization_id=organization.id, sms=sms, whatsapp=whatsapp)
        if provider:
            number.provider = provider
        number.e164 = e164
        number.country = number_country  # for a number of no region, the country chosen for it
        number.status = status_for(session, organization.id, number_country)
        # Added by someone else between our look-up and this insert: refused like the look-up would.
        taken = NumberRefused(f"{phones.display(e164)} is already in a pool.")
        with unique.refusing(session, {"uq_sending_number_e164": taken}):
            session.add(number)
        detail = ", ".join(number.capabilities)
    audit.record(
        session,
        organization_id=organization.id,
        country=number.country,
        action="number_added",
        actor=actor,
        detail=f"{phones.display(e164)} ({detail})",
        number=number,
    )
    if number.status == "pending_documents":
        audit.record(
            session,
            organization_id=organization.id,
            country=number.country,
            action="number_pending",
            actor=actor,
            detail=f"{phones.display(e164)} sends once the {number.country} documents are approved",
            number=number,
        )
    return number


def suspend(session: Session, actor: User, number: SendingNumber, reason: str = "") -> None:
    if number.status in ("suspended", "released"):
        raise NumberRefused(
            f"{phones.display(number.e164)} is {number.status_label.lower()} already.", "status"
        )
    number.status, number.suspension = "suspended", "staff"
    _event(session, actor, number, "number_suspended", reason or "By customer success")


def resume(session: Session, actor: User, number: SendingNumber) -> None:
    """Undo a suspension by staff; the number becomes active, or pending documents if they are missing."""
    if number.status != "suspended" or number.suspension != "staff":
        raise NumberRefused(
            f"{phones.display(number.e164)} is not suspended by customer success"
            + (" (its documents are)." if number.suspension == "compliance" else "."),
            "status",
        )
    # Status and reason change together (a check constraint ties them), after the look-up's autoflush.
    status = status_for(session, number.organization_id, number.country)
    number.status, number.suspension = status, None
    _event(session, actor, number, "number_resumed", number.status_label)


def release(session: Session, actor: User, number: SendingNumber) -> None:
    """Take the number out of the pool for good. The row stays: old conversations and late replies still
    name it, and routing skips it (compose re-routes a conversation whose number is not active)."""
    if number.status == "released":
        raise NumberRefused(f"{phones.display(number.e164)} is released already.", "status")
    number.status, number.suspension, number.released_at = "released", None, utcnow()
    _event(session, actor, number, "number_released", "")


def activate_country(
    session: Session, actor: User | None, organization_id: int, country: str, why: str
) -> list[SendingNumber]:
    """The country's documents were approved: its waiting numbers, and those its documents had
    suspended, send again. Numbers staff suspended stay suspended."""
    numbers = _in_country(session, organization_id, country)
    changed = [
        n
        for n in numbers
        if n.status == "pending_documents" or (n.status == "suspended" and n.suspension == "compliance")
    ]
    for number in changed:
        number.status, number.suspension = "active", None
        _event(session, actor, number, "number_activated", why)
    return changed


def suspend_country(
    session: Session, actor: User | None, organization_id: int, country: str, why: str
) -> list[SendingNumber]:
    """The country's approval was withdrawn or expired: its active numbers stop until a new approval."""
    changed = [n for n in _in_country(session, organization_id, country) if n.status == "active"]
    for number in changed:
        number.status, number.suspension = "suspended", "compliance"
        _event(session, actor, number, "number_suspended", why)
    return changed


def _in_country(session: Session, organization_id: int, country: str) -> list[SendingNumber]:
    return list(
        session.scalars(
            sa.select(SendingNumber)
            .where(SendingNumber.organization_id == organization_id, SendingNumber.country == country)
            .order_by(SendingNumber.id)
            .with_for_update()
        )
    )


def _event(session: Session, actor: User | None, number: SendingNumber, action: str, detail: str) -> None:
    text = phones.display(number.e164) + (f": {detail}" if detail else "")
    audit.record(
        session,
        organization_id=number.organization_id,
        country=number.country,
        action=action,
        actor=actor,
        detail=text,
        number=number,
    )


@dataclass(frozen=True)
class PoolEntry:
    number: SendingNumber
    conversations: int  # in the last USAGE_DAYS days
    messages: int  # sent from it or received on it, in the last USAGE_DAYS days
    last_used_at: datetime | None


def numbers_of(session: Session, organization_id: int, include_released: bool = True) -> list[SendingNumber]:
    query = sa.select(SendingNumber).where(SendingNumber.organization_id == organization_id)
    if not include_released:
        query = query.where(SendingNumber.status != "released")
    return list(session.scalars(query.order_by(SendingNumber.country, SendingNumber.e164)))


def status_counts(session: Session) -> dict[int, dict[str, int]]:
    """How many numbers every organisation has in each status: {organisation id: {status: count}}."""
    counts: dict[int, dict[str, int]] = {}
    for org_id, status, n in session.execute(
        sa.select(SendingNumber.organization_id, SendingNumber.status, sa.func.count()).group_by(
            SendingNumber.organization_id, SendingNumber.status
        )
    ):
        counts.setdefault(org_id, {})[status] = n
    return counts


def get_number(session: Session, organization_id: int, number_id: int) -> SendingNumber | None:
    return session.scalar(
        sa.select(SendingNumber).where(
            SendingNumber.id == number_id, SendingNumber.organization_id == organization_id
        )
    )


def with_usage(session: Session, organization: Organization, now: datetime | None = None) -> list[PoolEntry]:
    """The pool with each number's use: conversations and messages in the last 30 days, last message.

    A parent's numbers also carry its sub-organisations' conversations (compose falls back to them), so
    those count; any other organisation's messages never do.
    """
    numbers = numbers_of(session, organization.id)
    if not numbers:
        return []
    since = (now or utcnow()) - timedelta(days=USAGE_DAYS)
    owners = list(session.scalars(sa.select(family_below(organization.id).c.id)))
    ours = sa.case((Message.direction == "outbound", Message.from_addr), else_=Message.to_addr)
    recent = Message.created_at >= since
    rows = session.execute(
        sa.select(
            ours.label("e164"),
            sa.func.count(sa.case((recent, Message.id))),
            sa.func.count(sa.distinct(sa.case((recent, Message.conversation_id)))),
            sa.func.max(Message.created_at),
        )
        .select_from(Message)
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.channel.in_(("sms", "whatsapp")),
            ours.in_([n.e164 for n in numbers]),
            sa.or_(Conversation.organization_id.in_(owners), Message.organization_id.in_(owners)),
        )
        .group_by(ours)
    ).all()
    usage = {row[0]: row[1:] for row in rows}
    entries = []
    for number in numbers:
        messages, conversations, last = usage.get(number.e164, (0, 0, None))
        entries.append(PoolEntry(number, conversations, messages, last))
    return entries
