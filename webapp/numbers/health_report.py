"""Number health as admins and staff see it (issue 23 §2): the numbers with their figures, riskiest
first, in one statement over one row per number (webapp.numbers.health writes them); today's notices;
and the email that tells staff about them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp import phones
from webapp.models import NumberHealth, NumberNotice, Organization, SendingNumber, User
from webapp.models.numbers import STATUS_LABELS
from webapp.numbers.health import NEAR, day_of
from webapp.providers.base import Outbound, ProviderError, Sender

POOL_MAX = 1000  # an admin's page shows its whole pool (a pool is tens of numbers, not thousands)
SORTS = {
    "share": NumberHealth.share,
    "failures": NumberHealth.failure_rate,
    "opt_outs": NumberHealth.opt_out_rate,
}


@dataclass(frozen=True)
class Shown:
    """A number as the health pages show it."""

    id: int
    e164: str
    country: str
    status: str
    paused_at: datetime | None
    pause_reason: str | None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class Customer:
    id: int
    name: str


@dataclass(frozen=True)
class Figures:
    sms_today: int
    guidance: int
    share: float
    sent_7d: int
    failed_7d: int
    failure_rate: float
    sent_30d: int
    opt_outs_30d: int
    opt_out_rate: float


@dataclass(frozen=True)
class Row:
    number: Shown
    organization: Customer
    health: Figures | None  # None: not counted yet
    failures: list[tuple[str, int]]  # error code, count over 7 days, most first (the first three)

    @property
    def near(self) -> bool:
        return self.health is not None and self.health.share >= NEAR


_SHOWN = (
    SendingNumber.id,
    SendingNumber.e164,
    SendingNumber.country,
    SendingNumber.status,
    SendingNumber.paused_at,
    SendingNumber.pause_reason,
)
_FIGURES = (
    NumberHealth.sms_today,
    NumberHealth.guidance,
    NumberHealth.share,
    NumberHealth.sent_7d,
    NumberHealth.failed_7d,
    NumberHealth.failure_rate,
    NumberHealth.sent_30d,
    NumberHealth.opt_outs_30d,
    NumberHealth.opt_out_rate,
)


def overview(
    session: Session,
    *,
    organization_id: int | None = None,
    sort: str = "share",
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Row], int]:
    """Numbers not released with their figures, riskiest first by `sort` (paused first of all); one
    organisation's pool only when `organization_id` is given (an admin's page). And how many in all.
    One statement over one row per number (the clock added the days up), its columns only."""
    key = SORTS.get(sort, SORTS["share"])
    query = (
        sa.select(
            *_SHOWN,
            Organization.id,
            Organization.name,
            NumberHealth.number_id,
            *_FIGURES,
            NumberHealth.failure_codes,
            sa.func.count().over(),
        )
        .join(Organization, Organization.id == SendingNumber.organization_id)
        .outerjoin(NumberHealth, NumberHealth.number_id == SendingNumber.id)
        .where(SendingNumber.status != "released")
        .order_by(
            SendingNumber.paused_at.is_(None),
            sa.func.coalesce(key, 0).desc(),
            NumberHealth.share.desc().nulls_last(),
            SendingNumber.id,
        )
        .limit(per_page)
        .offset((max(page, 1) - 1) * per_page)
    )
    if organization_id is not None:
        query = query.where(SendingNumber.organization_id == organization_id)
    rows, total, n = [], 0, len(_SHOWN)
    for found in session.execute(query):
        counted = found[n + 2] is not None
        rows.append(
            Row(
                Shown(*found[:n]),
                Customer(*found[n : n + 2]),
                Figures(*found[n + 3 : n + 3 + len(_FIGURES)]) if counted else None,
                _codes(found[-2]) if counted else [],
            )
        )
        total = found[-1]
    if not rows and page > 1:  # past the last page: still say how many there are
        counting = (
            sa.select(sa.func.count()).select_from(SendingNumber).where(SendingNumber.status != "released")
        )
        if organization_id is not None:
            counting = counting.where(SendingNumber.organization_id == organization_id)
        total = session.scalar(counting)
    return rows, total or 0


def _codes(text: str) -> list[tuple[str, int]]:
    """ "1320:6 1240:5" → [("1320", 6), ("1240", 5)]; "" stands for a failure the provider gave no
    code for."""
    found = []
    for part in text.split():
        code, _, count = part.rpartition(":")
        found.append((code or "no code", int(count)))
    return found


def notices_today(
    session: Session, now: datetime, organization_id: int | None = None
) -> list[tuple[NumberNotice, SendingNumber]]:
    """Today's notices (near the guidance, paused), for the numbers of one organisation or all."""
    query = (
        sa.select(NumberNotice, SendingNumber)
        .join(SendingNumber, SendingNumber.id == NumberNotice.number_id)
        .where(NumberNotice.day == day_of(now))
        .order_by(NumberNotice.id)
    )
    if organization_id is not None:
        query = query.where(SendingNumber.organization_id == organization_id)
    return [(n, s) for n, s in session.execute(query).all()]


# --- Telling staff by email --------------------------------------------------------------------------

KIND_WORDS = {"near_guidance": "near its daily guidance", "paused": "paused for new conversations"}


def email_staff(session: Session, now: datetime, sender: Sender, base_url: str) -> int:
    """Today's notices nobody emailed yet, claimed (a conditional UPDATE: two clocks email each once) and
    sent to every active staff member in one email. How many notices went."""
    waiting = list(
        session.scalars(
            sa.select(NumberNotice.id).where(
                NumberNotice.day == day_of(now),
                NumberNotice.emailed_at.is_(None),
                NumberNotice.email_error.is_(None),
            )
        )
    )
    if not waiting:
        return 0
    claimed = [
        row[0]
        for row in session.execute(
            sa.update(NumberNotice)
            .where(NumberNotice.id.in_(waiting), NumberNotice.emailed_at.is_(None))
            .values(emailed_at=now)
            .returning(NumberNotice.id)
            .execution_options(synchronize_session=False)
        )
    ]
    session.commit()
    if not claimed:
        return 0
    notices = session.execute(
        sa.select(NumberNotice, SendingNumber, Organization)
        .join(SendingNumber, SendingNumber.id == NumberNotice.number_id)
        .join(Organization, Organization.id == SendingNumber.organization_id)
        .where(NumberNotice.id.in_(claimed))
        .order_by(NumberNotice.id)
    ).all()
    lines = [
        f"- {phones.display(s.e164)} ({o.name}, {s.country}): {KIND_WORDS[n.kind]}: {n.detail}"
        for n, s, o in notices
    ]
    body = (
        "Sending numbers that need a look today:\n\n"
        + "\n".join(lines)
        + f"\n\nNumber health: {base_url.rstrip('/')}/staff/numbers/health\n"
        "A paused number keeps its conversations; it takes new ones again when you let it.\n"
    )
    subject = f"Relay: {len(notices)} sending number{'s' if len(notices) != 1 else ''} need a look"
    error = None
    for email in session.scalars(sa.select(User.email).where(User.is_staff.is_(True), User.active.is_(True))):
        try:
            sender.send(Outbound(None, "email", email, "Relay", body, subject=subject))
        except ProviderError as failure:
            error = f"{failure.title}: {failure.detail}" if failure.detail else failure.title
    if error:
        session.execute(
            sa.update(NumberNotice)
            .where(NumberNotice.id.in_(claimed))
            .values(email_error=error[:300])
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return len(notices)
