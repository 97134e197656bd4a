"""WhatsApp's 24-hour customer-care window, and the approved templates that may go outside it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.messaging import placeholders, templates
from webapp.models import Conversation, WhatsappTemplate, utcnow

_SLOT = re.compile(r"\{\{(\d+)\}\}")


def time_left(conversation: Conversation | None, now: datetime | None = None) -> timedelta | None:
    """How long free text may still be sent; None when the window is closed (or never opened)."""
    if conversation is None or conversation.whatsapp_window_ends_at is None:
        return None
    left = conversation.whatsapp_window_ends_at - (now or utcnow())
    return left if left > timedelta(0) else None


def describe(left: timedelta) -> str:
    minutes = int(left.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def approved_templates(
    session: Session, organization_id: int, audience: str | None = None
) -> list[WhatsappTemplate]:
    """The approved templates, those written for `audience` ("candidates" or "prospects") when given."""
    query = sa.select(WhatsappTemplate).where(
        WhatsappTemplate.organization_id == organization_id, WhatsappTemplate.approved.is_(True)
    )
    if audience is not None:
        query = query.where(WhatsappTemplate.audience.in_(templates.offered_to(audience)))
    return list(session.scalars(query.order_by(WhatsappTemplate.name, WhatsappTemplate.locale)))


def approved_template(session: Session, organization_id: int, template_id: int) -> WhatsappTemplate | None:
    """One of the organisation's approved templates by its id; None for any other id."""
    template = session.get(WhatsappTemplate, template_id)
    if template is None or template.organization_id != organization_id or not template.approved:
        return None
    return template


def render(template: WhatsappTemplate, recipient: placeholders.Recipient) -> tuple[str, list[str]]:
    """The text the candidate will read, and the parameter values the provider fills into {{1}}, {{2}}…"""
    values = [placeholders.render(p, recipient) for p in template.parameter_list]

    def fill(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        return values[index] if 0 <= index < len(values) else match.group(0)

    return _SLOT.sub(fill, template.body), values
