"""The Edit form of a message written for later, under it in the thread
(templates/conversation_panel/_messages.html): its time on both clocks, the recipient's and the
writer's, as the composer says it; the composer's quick choices (their morning, in 1 hour); and, as a
new time is picked, what Save will do with it (webapp.messaging.scheduled.time_said: the same checks as
the edit itself, said before Save).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask_login import current_user

from webapp import zones
from webapp.messaging import scheduled
from webapp.messaging.subjects import Subject
from webapp.models import Message
from webapp.web import composer


def context(about: Subject, items: Sequence[Message], setup: Callable[[], composer.Setup]) -> dict[str, Any]:
    """For a page of the thread: each scheduled message's time on both clocks (`scheduled_when`, by id),
    on the person's clock alone where it differs (`their_clock`), from one decision of their hours each,
    and the quick choices of a time (`edit_quick`, the composer's; `setup` makes its Setup, asked only
    when something on the page waits)."""
    waiting = [m for m in items if m.status == "scheduled" and m.send_at is not None]
    if not waiting:
        return {"scheduled_when": {}, "their_clock": {}, "edit_quick": None}
    zone = zones.name_of_reader(current_user)
    clocks = {m.id: scheduled.clocks(about, m, m.send_at, zone) for m in waiting if m.send_at is not None}
    return {
        "scheduled_when": {key: f"Sends {both}." for key, (both, _) in clocks.items()},
        # Beside "Scheduled for …" (the writer's clock) in the message's head: the person's, where it differs.
        "their_clock": {key: theirs for key, (_, theirs) in clocks.items()},
        "edit_quick": composer.quick_times(setup()),
    }
