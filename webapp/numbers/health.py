"""Number health (issue 23 §2): per sending number, the SMS of today against its daily guidance, the
failure rate by error code over 7 days and the opt-out rate over 30 days; the notice at 80 % of the
guidance; the pause of a number over its guidance or past the failure threshold; and what routing reads.

Where the figures come from. A daily rollup (`NumberDay`, `NumberDayFailure`) that the clock recounts
from the messages and opt-outs themselves, for a window of recent days, replacing what it held for them
(`refresh`). Why the clock and not a counter moved where a message is queued, a status arrives or a STOP
comes in:
- a message's outcome reaches us by many ways (the send's answer, the status webhook, the sweep giving
  up an unknown outcome, a late report that confirms an unconfirmed one), some as raw UPDATEs, some more
  than once; a recount is right whichever of them ran, how often, and in which order, where a counter
  would have to be kept right in each of them, under retries;
- a counter row per number and day would be written by every send from that number, a hot row that
  makes concurrent sends from one number wait for each other's commits;
- the health pages (webapp.numbers.health_report) read one row per number (`NumberHealth`, written by
  the same pass), so they cost the same at 10,000 messages or 10 million.
What the recount costs is an index range per number and day (`ix_message_from_created`). Today lags
by at most one pass (HEALTH_EVERY_SECONDS); routing adds today's messages since the pass to it
(`today_sms`), so a number cannot run far past its guidance between two passes.

Days are UTC days. A message counts on the day it was written (queued or scheduled, not cancelled or
held), from the number it names; it failed when it ended rejected or undeliverable. The opt-out rate is
the STOPs that reached the number over the messages it sent, over 30 days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp import phones
from webapp.compliance import audit
from webapp.database import write_lock
from webapp.models import (
    Message,
    NumberDay,
    NumberDayFailure,
    NumberHealth,
    NumberNotice,
    OptOut,
    Organization,
    SendingNumber,
    User,
)
from webapp.models.upsert import insert_ignore
from webapp.numbers import guidance

NEAR = 0.8  # share of the daily guidance at which admins and staff are told
FAILURE_RATE = 0.10  # failed / sent over 7 days past which a number is paused …
FAILURE_MIN_SENT = 50  # … once it sent at least this many in those days (a few failures prove nothing)
FAILURE_DAYS = 7
OPT_OUT_DAYS = 30
RECENT_DAYS = 2  # recounted every pass: today, and yesterday (its last reports)
# Recounted every hour: the opt-out window. Its last 7 days take late delivery reports; the whole of it
# fills the rollup for days no pass counted yet (a new installation, a clock that was stopped).
RECOUNT_DAYS = 30
COUNTED = ("sms", "whatsapp")
NOT_SENT = ("scheduled", "cancelled", "held")
FAILED = ("rejected", "undeliverable")
_LOCK = 23_0002  # PostgreSQL advisory lock: one recount at a time (two clocks' passes may meet)


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _day(value: object) -> date:
    # SQLite's date() answers text, PostgreSQL's a date.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- The rollup --------------------------------------------------------------------------------------


@dataclass
class Refreshed:
    days: int = 0
    numbers: int = 0
    near: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        said = []
        if self.near:
            said.append(f"near their guidance: {', '.join(self.near)}")
        if self.paused:
            said.append(f"paused: {', '.join(self.paused)}")
        return "; ".join(said)


def refresh(session: Session, now: datetime, days: int = RECENT_DAYS) -> Refreshed:
    """Recount the last `days` days (today included) of every number, then every number's figures,
    the notices and the pauses they call for; committed. Safe to run twice at once: a lock (PostgreSQL's
    advisory lock, SQLite's write lock) makes the second wait, then recount the same (the result of a
    recount does not depend on what was there)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
    else:
        write_lock(session)  # SQLite: the database's one write lock, from before the first read
    today = day_of(now)
    first = today - timedelta(days=days - 1)
    _recount(session, first, today)
    numbers = _figures(session, now, today)
    done = Refreshed(days=days, numbers=numbers)
    _act(session, now, today, done)
    session.commit()
    return done


def _recount(session: Session, first: date, last: date) -> None:
    since, until = _start(first), _start(last + timedelta(days=1))
    day = sa.func.date(Message.created_at)
    # Grouped by plain columns: an expression with bound values (a CASE, a COALESCE) in both the SELECT
    # and the GROUP BY reaches PostgreSQL as two different expressions. Failed or not is decided here.
    rows = session.execute(
        sa.select(SendingNumber.id, day, Message.channel, Message.status, Message.error_code, sa.func.count())
        .select_from(SendingNumber)
        .join(Message, Message.from_addr == SendingNumber.e164)
        .where(
            Message.created_at >= since,
            Message.created_at < until,
            Message.direction == "outbound",
            Message.channel.in_(COUNTED),
            Message.status.not_in(NOT_SENT),
        )
        .group_by(SendingNumber.id, day, Message.channel, Message.status, Message.error_code)
    ).all()
    days: dict[tuple[int, date], dict[str, int]] = defaultdict(
        lambda: {"sent": 0, "sms": 0, "failed": 0, "opt_outs": 0}
    )
    failures: dict[tuple[int, date, str], int] = defaultdict(int)
    for number_id, on, channel, status, error_code, n in rows:
        key = (number_id, _day(on))
        days[key]["sent"] += n
        if channel == "sms":
            days[key]["sms"] += n
        if status in FAILED:
            days[key]["failed"] += n
            failures[(*key, (error_code or "")[:50])] += n
    # A STOP reached the number the person wrote to: the inbound message's to_addr.
    stop = sa.func.date(OptOut.created_at)
    for number_id, on, n in session.execute(
        sa.select(SendingNumber.id, stop, sa.func.count())
        .select_from(OptOut)
        .join(Message, Message.id == OptOut.source_message_id)
        .join(SendingNumber, SendingNumber.e164 == Message.to_addr)
        .where(OptOut.created_at >= since, OptOut.created_at < until)
        .group_by(SendingNumber.id, stop)
    ):
        days[(number_id, _day(on))]["opt_outs"] += n
    window = (first, last)
    session.execute(sa.delete(NumberDayFailure).where(NumberDayFailure.day.between(*window)))
    session.execute(sa.delete(NumberDay).where(NumberDay.day.between(*window)))
    if days:
        session.execute(
            sa.insert(NumberDay), [{"number_id": k[0], "day": k[1], **v} for k, v in days.items()]
        )
    if failures:
        session.execute(
            sa.insert(NumberDayFailure),
            [{"number_id": k[0], "day": k[1], "error_code": k[2], "count": n} for k, n in failures.items()],
        )


def _figures(session: Session, now: datetime, today: date) -> int:
    """Every number's figures from the rollup, replacing the last pass's (one row per number)."""
    week, month = today - timedelta(days=FAILURE_DAYS - 1), today - timedelta(days=OPT_OUT_DAYS - 1)
    D = NumberDay

    def total(column: sa.ColumnElement[int], since: date) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((D.day >= since, column), else_=0)), 0)

    sums = {
        number_id: rest
        for number_id, *rest in session.execute(
            sa.select(
                D.number_id,
                total(D.sms, today),
                total(D.sent, week),
                total(D.failed, week),
                total(D.sent, month),
                total(D.opt_outs, month),
            )
            .where(D.day >= month, D.day <= today)
            .group_by(D.number_id)
        )
    }
    codes: dict[int, list[tuple[str, int]]] = defaultdict(list)
    F = NumberDayFailure
    for number_id, code, n in session.execute(
        sa.select(F.number_id, F.error_code, sa.func.sum(F.count))
        .where(F.day >= week, F.day <= today)
        .group_by(F.number_id, F.error_code)
    ):
        codes[number_id].append((code, int(n)))
    numbers = session.execute(
        sa.select(SendingNumber.id, SendingNumber.country, Organization.number_daily_cap)
        .join(Organization, Organization.id == SendingNumber.organization_id)
        .where(SendingNumber.status != "released")
    ).all()
    rows = []
    for number_id, country, cap in numbers:
        sms_today, sent_7d, failed_7d, sent_30d, opt_outs_30d = sums.get(number_id, (0, 0, 0, 0, 0))
        daily = guidance.daily(country, cap)
        rows.append(
            {
                "number_id": number_id,
                "computed_at": now,
                "day": today,
                "sms_today": sms_today,
                "guidance": daily,
                "share": sms_today / daily if daily else 0.0,
                "sent_7d": sent_7d,
                "failed_7d": failed_7d,
                "failure_rate": failed_7d / sent_7d if sent_7d else 0.0,
                "sent_30d": sent_30d,
                "opt_outs_30d": opt_outs_30d,
                "opt_out_rate": opt_outs_30d / sent_30d if sent_30d else 0.0,
                "failure_codes": _top_codes(codes.get(number_id, [])),
            }
        )
    session.execute(sa.delete(NumberHealth))
    if rows:
        session.execute(sa.insert(NumberHealth), rows)
    return len(rows)


def _top_codes(counts: list[tuple[str, int]]) -> str:
    """The three commonest error codes with their counts, as the pages show them: "1320:6 1240:5"."""
    ranked = sorted(counts, key=lambda c: (-c[1], c[0]))[:3]
    return " ".join(f"{code.replace(' ', '_')}:{n}" for code, n in ranked)


# --- Notices and pauses ------------------------------------------------------------------------------


def pause_reason(h: NumberHealth) -> str | None:
    """Why a number with these figures takes no new conversations, or None."""
    if h.guidance and h.sms_today >= h.guidance:
        return f"over its daily guidance: {h.sms_today:,} SMS today of {h.guidance:,}"
    if h.sent_7d >= FAILURE_MIN_SENT and h.failure_rate >= FAILURE_RATE:
        return (
            f"failure rate {h.failure_rate:.0%} over {FAILURE_DAYS} days "
            f"({h.failed_7d:,} of {h.sent_7d:,}; the threshold is {FAILURE_RATE:.0%})"
        )
    return None


def _act(session: Session, now: datetime, today: date, done: Refreshed) -> None:
    rows = session.execute(
        sa.select(NumberHealth, SendingNumber)
        .join(SendingNumber, SendingNumber.id == NumberHealth.number_id)
        .where(SendingNumber.status == "active")
        .where(sa.or_(NumberHealth.share >= NEAR, NumberHealth.failure_rate >= FAILURE_RATE))
        .order_by(SendingNumber.id)
        .execution_options(populate_existing=True)
    ).all()
    for h, number in rows:
        shown = phones.display(number.e164)
        if h.share >= NEAR and _claim(session, number, today, "near_guidance", _near_words(h)):
            done.near.append(shown)
        reason = pause_reason(h)
        if reason and number.paused_at is None and number.let_in_on != today and _pause(session, number, now):
            number.pause_reason = reason[:200]
            audit.record(
                session,
                organization_id=number.organization_id,
                country=number.country,
                action="number_paused",
                actor=None,
                detail=f"{shown}: takes no new conversations, {reason}",
                number=number,
            )
            _claim(session, number, today, "paused", reason)
            done.paused.append(shown)


def _near_words(h: NumberHealth) -> str:
    return f"{h.sms_today:,} SMS today, {h.share:.0%} of its daily guidance of {h.guidance:,}"


def _claim(session: Session, number: SendingNumber, day: date, kind: str, detail: str) -> bool:
    """The notice of this kind for the number and day, unless one was made: True if this call made it."""
    values = {"number_id": number.id, "day": day, "kind": kind, "detail": detail[:300]}
    return insert_ignore(session, NumberNotice, values, ["number_id", "day", "kind"])


def _pause(session: Session, number: SendingNumber, now: datetime) -> bool:
    """A conditional UPDATE: two passes at once pause (and audit) it once."""
    moved = session.execute(
        sa.update(SendingNumber)
        .where(SendingNumber.id == number.id, SendingNumber.paused_at.is_(None))
        .values(paused_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        return False
    session.refresh(number, ["paused_at"])
    return True


def let_in(session: Session, actor: User, number: SendingNumber, now: datetime) -> None:
    """Staff let a paused number take new conversations again; today's figures do not pause it again
    (tomorrow's may). Raises NumberRefused when it is not paused."""
    from webapp.numbers.pool import NumberRefused

    if not actor.is_staff:
        raise NumberRefused("Only customer success can let a paused number take new conversations.")
    if number.paused_at is None:
        raise NumberRefused(f"{phones.display(number.e164)} is not paused.", "status")
    reason = number.pause_reason or ""
    number.paused_at, number.pause_reason, number.let_in_on = None, None, day_of(now)
    audit.record(
        session,
        organization_id=number.organization_id,
        country=number.country,
        action="number_let_in",
        actor=actor,
        detail=f"{phones.display(number.e164)}: takes new conversations again (was paused: {reason})",
        number=number,
    )


def set_cap(organization: Organization, raw: str) -> int | None:
    """The customer's own most SMS per number and day, typed by staff ("" clears it). Raises
    NumberRefused (about `cap`) for anything but a whole number from 1 to 1,000,000."""
    from webapp.numbers.pool import NumberRefused

    text = raw.strip().replace(",", "").replace(" ", "")
    if not text:
        organization.number_daily_cap = None
        return None
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise NumberRefused(f"“{raw.strip()}” is not a number of SMS from 1 to 1,000,000.", "cap")
    organization.number_daily_cap = int(text)
    return organization.number_daily_cap


# --- What routing reads ------------------------------------------------------------------------------


def today_sms(session: Session, numbers: Sequence[SendingNumber], now: datetime) -> dict[str, int]:
    """SMS each number sent today: the last pass's count, and the messages written since (an index range
    each); from midnight for a number the clock has not counted today."""
    if not numbers:
        return {}
    today = day_of(now)
    counted = {
        number_id: (sms, at)
        for number_id, sms, at in session.execute(
            sa.select(NumberHealth.number_id, NumberHealth.sms_today, NumberHealth.computed_at).where(
                NumberHealth.number_id.in_([n.id for n in numbers]), NumberHealth.day == today
            )
        )
    }
    since = {n.e164: counted.get(n.id, (0, _start(today)))[1] for n in numbers}
    found = {n.e164: counted.get(n.id, (0, None))[0] for n in numbers}
    each = [sa.and_(Message.from_addr == e164, Message.created_at >= at) for e164, at in since.items()]
    rows = session.execute(
        sa.select(Message.from_addr, sa.func.count())
        .where(
            sa.or_(*each),
            Message.direction == "outbound",
            Message.channel == "sms",
            Message.status.not_in(NOT_SENT),
        )
        .group_by(Message.from_addr)
    )
    for e164, n in rows:
        found[e164] += n
    return found


def _used(
    session: Session, numbers: Sequence[SendingNumber], now: datetime
) -> list[tuple[SendingNumber, int, int]]:
    """Each number with the SMS it sent today and its daily guidance (its country's, or its customer's
    own cap where lower)."""
    sent = today_sms(session, numbers, now)
    caps = dict(
        session.execute(
            sa.select(Organization.id, Organization.number_daily_cap).where(
                Organization.id.in_({n.organization_id for n in numbers})
            )
        ).all()
    )
    return [(n, sent[n.e164], guidance.daily(n.country, caps.get(n.organization_id))) for n in numbers]


def load(session: Session, numbers: Sequence[SendingNumber], now: datetime) -> dict[str, float | None]:
    """Each number's share of its daily guidance used today, for routing; None for a number that takes
    no new conversations (paused, or at its guidance already)."""
    shares: dict[str, float | None] = {}
    for n, sent, daily in _used(session, numbers, now):
        share = sent / daily if daily else 0.0
        shares[n.e164] = None if n.paused_at is not None or share >= 1 else share
    return shares


def room_today(session: Session, numbers: Sequence[SendingNumber], now: datetime) -> int:
    """How many more SMS these numbers take today before each reaches its guidance (paused ones none):
    what a bulk message's preview weighs its people against."""
    return sum(max(0, daily - sent) for n, sent, daily in _used(session, numbers, now) if n.paused_at is None)
