"""Reading the credit ledger: filtered pages, the CSV export and usage per month, channel, user and
destination country. Only reads; webapp.billing.credits is what writes it.

A ledger row's "by" is the user behind it: the author of the message for a debit or a refund, the member
of staff for a refill. Its "person" is whom the message was for: the candidate or prospect of its
conversation (None for a message in none, such as a HELP reply to a stranger).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from webapp import phones, zones
from webapp.models import (
    Application,
    Candidate,
    CommunityMembership,
    Conversation,
    CreditTransaction,
    Message,
    Prospect,
    User,
    utcnow,
)

KIND_LABELS = {"top_up": "Refill", "debit": "Message", "refund": "Refund"}
PER_PAGE = 50
USAGE_MONTHS = 6
CHANNELS = ("sms", "whatsapp")


@dataclass(frozen=True)
class Filters:
    kind: str | None = None
    user_id: int | None = None
    since: date | None = None  # days in the organisation's zone, both ends included
    until: date | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.kind, self.user_id, self.since, self.until))


@dataclass(frozen=True)
class Row:
    id: int
    created_at: datetime
    kind: str
    amount: int
    balance_after: int
    note: str
    message_id: int | None
    channel: str | None
    to_addr: str | None
    by: str | None
    first_name: str | None
    last_name: str | None

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def person(self) -> str | None:
        """The name of the candidate or prospect the message was for, when it was for one."""
        return f"{self.first_name or ''} {self.last_name or ''}".strip() or None


def _by() -> sa.ColumnElement[int | None]:
    return sa.func.coalesce(CreditTransaction.user_id, Message.author_id)


def _query(account_id: int, filters: Filters, zone: str) -> sa.Select:
    author = aliased(User)
    by = _by()
    query = (
        sa.select(
            CreditTransaction.id,
            CreditTransaction.created_at,
            CreditTransaction.kind,
            CreditTransaction.amount,
            CreditTransaction.balance_after,
            CreditTransaction.note,
            CreditTransaction.message_id,
            Message.channel,
            Message.to_addr,
            author.name,
            sa.func.coalesce(Candidate.first_name, Prospect.first_name),
            sa.func.coalesce(Candidate.last_name, Prospect.last_name),
        )
        .select_from(CreditTransaction)
        .outerjoin(Message, Message.id == CreditTransaction.message_id)
        .outerjoin(author, author.id == by)
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Application, Application.id == Conversation.application_id)
        .outerjoin(Candidate, Candidate.id == Application.candidate_id)
        .outerjoin(CommunityMembership, CommunityMembership.id == Conversation.community_membership_id)
        .outerjoin(Prospect, Prospect.id == CommunityMembership.prospect_id)
        .where(CreditTransaction.account_id == account_id)
    )
    if filters.kind is not None:
        query = query.where(CreditTransaction.kind == filters.kind)
    if filters.user_id is not None:
        query = query.where(by == filters.user_id)
    if filters.since is not None:
        query = query.where(CreditTransaction.created_at >= zones.start_of_day(filters.since, zone))
    if filters.until is not None:
        end = zones.start_of_day(filters.until + timedelta(days=1), zone)
        query = query.where(CreditTransaction.created_at < end)
    return query


def page(
    session: Session, account_id: int, filters: Filters, zone: str, number: int = 1
) -> tuple[list[Row], int]:
    """One page of the filtered ledger, newest first, and how many rows match in all."""
    query = _query(account_id, filters, zone)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(CreditTransaction.created_at.desc(), CreditTransaction.id.desc())
        .limit(PER_PAGE)
        .offset((max(number, 1) - 1) * PER_PAGE)
    )
    return [Row(*r) for r in rows], total


def users(session: Session, account_id: int) -> list[tuple[int, str]]:
    """The people who appear in the ledger, for its filter."""
    by = _by()
    query = (
        sa.select(User.id, User.name)
        .where(
            User.id.in_(
                sa.select(by)
                .select_from(CreditTransaction)
                .outerjoin(Message, Message.id == CreditTransaction.message_id)
                .where(CreditTransaction.account_id == account_id)
            )
        )
        .order_by(User.name)
    )
    return [(i, n) for i, n in session.execute(query)]


CSV_HEADER = [
    "time",
    "time zone",
    "type",
    "amount",
    "balance after",
    "by",
    "channel",
    "person",  # whom the message was for (the conversation's candidate or prospect)
    "to",
    "note",
]


def _cell(value: object) -> str:
    """Text as a spreadsheet shows it: a leading = + - @ would make it a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_chunks(session: Session, account_id: int, filters: Filters, zone: str) -> Iterator[str]:
    """The filtered ledger as CSV, oldest first, written as it is read."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    query = _query(account_id, filters, zone).order_by(CreditTransaction.created_at, CreditTransaction.id)
    for count, values in enumerate(session.execute(query.execution_options(yield_per=500)), start=1):
        row = Row(*values)
        writer.writerow(
            [
                zones.local(row.created_at, zone).strftime("%Y-%m-%d %H:%M:%S"),
                zone,
                row.kind_label,
                row.amount,  # numbers stay numbers: a negative amount is a debit
                row.balance_after,
                _cell(row.by),
                row.channel or "",
                _cell(row.person),
                _cell(row.to_addr),
                _cell(row.note),
            ]
        )
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- Usage -------------------------------------------------------------------------------------------


@dataclass
class Usage:
    """Credits spent (debits less their refunds) over the last months, in the organisation's zone."""

    months: list[str]  # "2026-06", oldest first
    by_month: dict[str, dict[str, int]]  # month → channel → credits
    by_user: list[tuple[str, int]] = field(default_factory=list)  # most first
    by_country: list[tuple[str, int]] = field(default_factory=list)  # ISO code (or "?"), most first

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_month.values())


def _months(now: datetime, zone: str, count: int) -> list[str]:
    local = zones.local(now, zone)
    year, month = local.year, local.month
    found = []
    for _ in range(count):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return found[::-1]


def usage(
    session: Session, account_id: int, zone: str, months: int = USAGE_MONTHS, now: datetime | None = None
) -> Usage:
    now = now or utcnow()
    labels = _months(now, zone, months)
    first = datetime.strptime(labels[0] + "-01", "%Y-%m-%d").date()
    refund = aliased(CreditTransaction)
    author = aliased(User)
    rows = session.execute(
        sa.select(
            CreditTransaction.created_at,
            Message.channel,
            author.name,
            Message.to_addr,
            -CreditTransaction.amount - sa.func.coalesce(refund.amount, 0),
        )
        .join(Message, Message.id == CreditTransaction.message_id)
        .outerjoin(author, author.id == Message.author_id)
        .outerjoin(
            refund, sa.and_(refund.message_id == CreditTransaction.message_id, refund.kind == "refund")
        )
        .where(
            CreditTransaction.account_id == account_id,
            CreditTransaction.kind == "debit",
            CreditTransaction.created_at >= zones.start_of_day(first, zone),
        )
        .execution_options(yield_per=1000)
    )
    by_month: dict[str, dict[str, int]] = {m: dict.fromkeys(CHANNELS, 0) for m in labels}
    by_user: dict[str, int] = defaultdict(int)
    by_country: dict[str, int] = defaultdict(int)
    countries: dict[str, str] = {}
    for at, channel, name, to_addr, spent in rows:
        if not spent:
            continue
        month = zones.local(at, zone).strftime("%Y-%m")
        if month not in by_month:
            continue
        by_month[month][channel] = by_month[month].get(channel, 0) + spent
        by_user[name or "Relay (automatic reply)"] += spent
        if to_addr not in countries:
            countries[to_addr] = phones.country_of(to_addr) or "?"
        by_country[countries[to_addr]] += spent
    ranked = lambda d: sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))  # noqa: E731
    return Usage(labels, by_month, ranked(by_user), ranked(by_country))


# --- The chart (server-rendered SVG: classes, no style attributes, for the CSP) ----------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    channel: str
    month: str
    value: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, str]]  # x of a month's label, its text
    gridlines: list[tuple[float, int]]  # y, the value it marks
    top: int


def month_label(month: str) -> str:
    return datetime.strptime(month + "-01", "%Y-%m-%d").strftime("%b %Y")


def chart(use: Usage, width: int = 560, height: int = 220) -> Chart:
    """Stacked bars of credits per month, SMS below WhatsApp."""
    left, bottom, top_pad = 44, 28, 10
    plot_h = height - bottom - top_pad
    totals = [sum(use.by_month[m].values()) for m in use.months]
    peak = max(totals, default=0)
    # A round top for the axis: 1, 2 or 5 times a power of ten, at least the peak.
    scale = 1
    while scale * 10 <= max(peak, 1):
        scale *= 10
    top = next(s * scale for s in (1, 2, 5, 10) if s * scale >= max(peak, 1))
    slot = (width - left) / max(len(use.months), 1)
    bar_w = min(48.0, slot * 0.6)
    bars, labels = [], []
    for i, month in enumerate(use.months):
        x = left + i * slot + (slot - bar_w) / 2
        y = top_pad + plot_h
        for channel in CHANNELS:
            value = use.by_month[month].get(channel, 0)
            if value:
                h = plot_h * value / top
                y -= h
                bars.append(
                    Bar(round(x, 1), round(y, 1), round(bar_w, 1), round(h, 1), channel, month, value)
                )
        labels.append((round(left + i * slot + slot / 2, 1), month_label(month)))
    gridlines = [(round(top_pad + plot_h * (1 - f), 1), round(top * f)) for f in (0, 0.5, 1)]
    return Chart(width, height, bars, labels, gridlines, top)
