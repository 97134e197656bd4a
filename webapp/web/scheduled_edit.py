"""The Edit form of a message written for later, under it in the thread
(templates/conversation_panel/_messages.html): its time on both clocks, the recipient's and the
writer's, as the composer says it; the composer's quick choices (their morning, in 1 hour); and, as a
new time is picked, what Save will do with it — the same checks as the edit itself
(webapp.messaging.scheduled.reschedule), said before Save.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from flask_login import current_user
from sqlalchemy.orm import Session

from webapp import zones
from webapp.messaging import checks, compose, timing
from webapp.messaging.checks import SendRefused
from webapp.messaging.subjects import Subject
from webapp.models import Message
from webapp.web import composer


def context(about: Subject, items: Sequence[Message], setup: Callable[[], composer.Setup]) -> dict[str, Any]:
    """For a page of the thread: each scheduled message's time on both clocks (`scheduled_when`, by id)
    and the quick choices of a time (`edit_quick`, the composer's; `setup` makes its Setup, asked only
    when something on the page waits)."""
    waiting = [m for m in items if m.status == "scheduled" and m.send_at is not None]
    if not waiting:
        return {"scheduled_when": {}, "edit_quick": None}
    zone = zones.name_of_reader(current_user)
    return {
        "scheduled_when": {m.id: f"Sends {both_times(about, m, m.send_at, zone)}." for m in waiting},
        "edit_quick": composer.quick_times(setup()),
    }


def both_times(about: Subject, message: Message, at: datetime, zone: str) -> str:
    """A moment on the recipient's clock and the writer's: "Wed 09:00 in Texas · Wed 16:00 your time";
    an email's on the writer's alone (it is not held to anyone's hours)."""
    decision = None
    if message.channel in timing.HELD_CHANNELS and message.to_addr:
        decision = timing.decide(about.organization, message.to_addr, at, place_zone=timing.place_of(about))
    return timing.both_times(at, decision, zone)


def said(
    session: Session, about: Subject, message: Message, typed: str, zone: str, now: datetime
) -> tuple[str, bool]:
    """What Save would do with a newly typed time, and whether it would be refused: "Sends Wed 09:00 in
    Texas · Wed 16:00 your time.", or the reason not, as the edit words it (a time within their hours,
    the first that can be). Blank: the time it has."""
    assert message.send_at is not None
    if not typed.strip():
        return f"Sends {both_times(about, message, message.send_at, zone)}.", False
    try:
        at = checks.check_send_at(timing.local_time(typed, zone), now)
        compose.hours_for(session, about, message.channel, now, at, override_reason=message.hours_override)
    except timing.Closed as closed:
        return timing.edit_refusal(closed.decision, zone), True
    except SendRefused as refused:
        return refused.message, True
    return f"Sends {both_times(about, message, at, zone)}.", False
