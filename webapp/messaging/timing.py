"""When a message goes: now, at the time the writer picked, or at the recipient's next allowed moment.

The one place where the composer's choice (now or later), the recipient's quiet hours
(webapp.messaging.quiet_hours: the law's hours and the organisation's own, on the recipient's clock) and
the writer's reason to set the organisation's hours aside meet. webapp.messaging.compose asks it before
storing a message; the composer's counter asks it to say, before Send, what will happen.

- Sent now, inside the hours (or a reply within minutes of the person's own message): it goes now.
- Sent now, outside them: it is scheduled for the next allowed moment, and the composer has said so
  ("It is 23:10 in Texas. Sends tomorrow at 09:00 their time."). With a reason, the organisation's hours
  are set aside and it goes now; the law's never are: a reason against them is refused beside its field.
- Sent later: the picked moment must be allowed (the reason sets the organisation's hours aside there
  too); if not, the refusal names the first moment that is.
- Email is not held: it waits in an inbox, it does not ring a phone at night. Only SMS and WhatsApp are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from webapp import zones
from webapp.messaging import quiet_hours
from webapp.messaging.checks import SendRefused
from webapp.messaging.quiet_hours import Decision, OrganizationHours, Rule
from webapp.models import Organization

if TYPE_CHECKING:
    from webapp.messaging.subjects import Subject

HELD_CHANNELS = ("sms", "whatsapp")


@dataclass(frozen=True)
class Timing:
    """What will happen to a message written now."""

    send_at: datetime | None  # None: it goes now; else when (UTC) it leaves
    decision: Decision | None  # the quiet hours' answer (None for email, which is not held)
    moved: bool = False  # written to go now, moved to the recipient's next allowed moment
    override_reason: str | None = None  # the writer's reason, where it set the organisation's hours aside


class Closed(SendRefused):
    """A moment the recipient's hours do not allow, with their answer (`decision`), so that a form
    without the composer's reason field can say it its own way (`edit_refusal`)."""

    def __init__(self, message: str, field: str, decision: Decision) -> None:
        super().__init__(message, field)
        self.decision = decision


def decide(
    organization: Organization,
    number: str | None,
    at: datetime,
    *,
    heard_at: datetime | None = None,
    override_reason: str | None = None,
    place_zone: str | None = None,
) -> Decision:
    """The quiet hours' answer for a text to `number` at `at`; SendRefused for a blank or overlong reason.
    `place_zone`: the zone of the place the application names (its job's), which narrows the number's
    zones to it when it is one of them — never widens them: a Madrid job's candidate with a Spanish
    mobile (Madrid or the Canaries) is read in Madrid; with a Mexican one, in Mexico's zones."""
    zone = place_zone if place_zone and place_zone in zones.all_for_number(number) else None
    try:
        return quiet_hours.decide(
            at,
            number=number,
            organization=OrganizationHours.of(organization),
            last_inbound_at=heard_at,
            override_reason=override_reason,
            zone_override=zone,
        )
    except quiet_hours.QuietHoursRefused as refused:
        raise SendRefused(refused.message, refused.field) from refused


def when(
    organization: Organization,
    channel: str,
    number: str | None,
    now: datetime,
    *,
    send_at: datetime | None = None,
    heard_at: datetime | None = None,
    override_reason: str | None = None,
    move_picked: bool = False,
    place_zone: str | None = None,
) -> Timing:
    """When a message on `channel` to `number`, written at `now`, leaves (see the module's doc). Raises
    SendRefused, beside the field it concerns, for a moment or a reason that cannot be. `move_picked`:
    a picked time inside their closed hours moves to the next allowed moment after it instead (one
    time picked for many people, some of whom are asleep then)."""
    reason = (override_reason or "").strip() or None
    if channel not in HELD_CHANNELS:
        return Timing(send_at, None)
    at = send_at or now
    decision = decide(
        organization, number, at, heard_at=heard_at, override_reason=reason, place_zone=place_zone
    )
    if decision.allowed_now:
        return Timing(send_at, decision, override_reason=reason if decision.overridden else None)
    if reason is not None and decision.held_by == "law":
        raise Closed(decision.why, "override_reason", decision)
    if send_at is not None and not move_picked:
        raise Closed(_not_then(decision), "send_at", decision)
    if decision.next_allowed_at is None:
        raise SendRefused(f"{decision.words} {decision.why}", "channel")
    return Timing(decision.next_allowed_at, decision, moved=True)


def _not_then(decision: Decision) -> str:
    then = decision.local_now[0]
    first = decision.next_allowed_at
    after = f" The first time it can go: {their_time(first, decision)}." if first else ""
    return f"At that time it is {then:%a %H:%M} for them: {decision.why}{after}"


def edit_refusal(decision: Decision, reader_zone: str) -> str:
    """Why a scheduled message may not move to that moment, for its Edit form, which has no reason
    field: the rule, and what to do instead — a time within their hours, the first on both clocks."""
    then = decision.local_now[0]
    first = decision.next_allowed_at
    instead = (
        f" Pick a time within their hours: the first is {both_times(first, decision, reader_zone)}."
        if first
        else " No time in the next two weeks suits every one of their zones."
    )
    return f"At that time it is {then:%a %H:%M} for them: {decision.rule_words}{instead}"


def their_time(moment: datetime, decision: Decision) -> str:
    """A moment on the recipient's (first) clock and where: "Tue 09:00 in Texas"."""
    local = moment.astimezone(decision.local_now[0].tzinfo)
    return f"{local:%a %H:%M} in {place(decision)}"


def place(decision: Decision) -> str:
    """Where the recipient is, as the composer names it: their US state, else their country."""
    return decision.place or zones.city(decision.zones[0])


def both_times(moment: datetime, decision: Decision | None, reader_zone: str) -> str:
    """A moment as the recipient and the writer read it: "Tue 09:00 in Texas · Tue 16:00 your time"; for
    email (no recipient's clock), the writer's alone."""
    if decision is None:
        return f"{moment.astimezone(zones.zone(reader_zone)):%a %H:%M} your time"
    yours = your_time(moment, decision, reader_zone)
    theirs = their_time(moment, decision)
    return f"{theirs} · {yours}" if yours else f"{theirs}, your time too"


def your_time(moment: datetime, decision: Decision, reader_zone: str) -> str:
    """The moment on the writer's clock, "Tue 16:00 your time", where it differs from the recipient's
    (first) clock; "" where both read the same."""
    mine = moment.astimezone(zones.zone(reader_zone))
    if mine.utcoffset() == moment.astimezone(decision.local_now[0].tzinfo).utcoffset():
        return ""
    return f"{mine:%a %H:%M} your time"


def moved_words(moved: Timing, about: Subject, reader_zone: str) -> str:
    """What the composer says, before Send, of a text written while the recipient's hours are closed: their
    clock now and when it leaves, on the writer's clock too, and what holds it — the law's hours by name
    (which cannot be set aside), then the organisation's where those push it later still (a Sunday noon
    in Texas for an organisation that texts Monday to Friday), or the organisation's alone (which a
    reason can set aside)."""
    decision = moved.decision
    if decision is None or moved.send_at is None:
        return ""
    yours = your_time(moved.send_at, decision, reader_zone)
    words = f"{decision.words.removesuffix('.')} · {yours}." if yours else decision.words
    law = _law_holding(decision)
    if law is not None:
        # Asked only here, for the words: a bulk preview's thousands of decisions do not pay for it. Any
        # reason sets the organisation's hours aside and keeps the law's: when the law alone lets it go.
        alone = decide(
            about.organization,
            about.contact.mobile,
            decision.local_now[0],
            override_reason="-",
            place_zone=place_of(about),
        ).next_allowed_at
        org = OrganizationHours.of(about.organization).describe()
        after = (
            f" After that, your organisation's hours hold it ({org} their time)."
            if alone is not None and alone < moved.send_at
            else ""
        )
        return f"{words} {law.name} allows texts {law.describe()}; it cannot be set aside.{after}"
    if decision.overridable:
        return f"{words} To send now, give a reason under Send later."
    return words


def _law_holding(decision: Decision) -> Rule | None:
    """The law that holds a text now, to name: a state's own before the federal one (a state's hours are
    in the rules only where they are stricter)."""
    if decision.held_by != "law":
        return None
    holding = [r for r in decision.laws if not all(r.allows(local) for local in decision.local_now)]
    return next((r for r in holding if r.state), holding[0] if holding else decision.rule)


def beside(moment: datetime, decision: Decision, reader_zone: str) -> str:
    """A moment on the recipient's clock, "Tue 09:00 in Texas", to put beside the writer's where the two
    differ; "" where they read the same."""
    return their_time(moment, decision) if your_time(moment, decision, reader_zone) else ""


def their_clock(moment: datetime, about: Subject, reader_zone: str) -> str:
    """`beside` for a person not yet written to (a line of a bulk preview), their zone read from their
    mobile; "" where they have none."""
    if not about.contact.mobile:
        return ""
    return beside(
        moment,
        decide(about.organization, about.contact.mobile, moment, place_zone=place_of(about)),
        reader_zone,
    )


def local_time(text: str, zone: str) -> datetime:
    """A date and time as the writer typed it (datetime-local: "2026-12-08T09:00"), on their clock, in
    UTC; SendRefused beside Send at when it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        raise SendRefused("Pick a date and a time, like 2026-12-08 09:00.", "send_at") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zones.zone(zone))
    return moment.astimezone(UTC)


def place_of(about: Subject) -> str | None:
    """The zone of the place an application names: its job's (a community names none)."""
    return about.application.job.time_zone if about.application is not None else None


def their_morning(
    organization: Organization, number: str, now: datetime, place_zone: str | None = None
) -> tuple[datetime, Decision]:
    """The next 09:00 on the recipient's clock, or the first moment after it their hours allow (UTC),
    with the hours' answer for it (to name the place)."""
    there = decide(organization, number, now, place_zone=place_zone).local_now[0]
    morning = there.replace(hour=9, minute=0, second=0, microsecond=0)
    if morning <= there:
        morning = (there + timedelta(days=1)).replace(hour=9, minute=0)
    at = morning.astimezone(UTC)
    then = decide(organization, number, at, place_zone=place_zone)
    return (at if then.allowed_now else (then.next_allowed_at or at)), then
