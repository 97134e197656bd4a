"""When a message leaves (webapp.messaging.timing, issue #20): now, moved to the recipient's morning,
the organisation's hours set aside with a reason (never the law's), a picked time checked, email never
held. The clock is passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests import factories as f
from webapp.extensions import db
from webapp.messaging import timing
from webapp.messaging.checks import SendRefused

AUSTIN = "+15125550123"  # Texas: 09:00–21:00, Sunday 12:00–21:00
BERLIN = "+4915123456789"


def at(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.fixture
def org(app):
    o = f.messaging_org("Acme", time_zone="Europe/Berlin")
    db.session.flush()
    return o


def test_inside_the_hours_it_goes_now(org) -> None:
    now = at("America/Chicago", 2026, 12, 8, 10, 0)  # Tuesday 10:00 in Austin
    t = timing.when(org, "sms", AUSTIN, now)
    assert t.send_at is None and not t.moved and t.decision.allowed_now


def test_at_night_it_is_moved_to_their_next_allowed_moment(org) -> None:
    now = at("America/Chicago", 2026, 12, 8, 23, 10)  # Tuesday 23:10 in Austin
    t = timing.when(org, "whatsapp", AUSTIN, now)
    assert t.moved and t.send_at == at("America/Chicago", 2026, 12, 9, 9, 0)
    assert t.decision.words == "It is 23:10 in Texas. Sends tomorrow at 09:00 their time."


def test_a_reason_sets_the_organisations_hours_aside_but_not_the_laws(org) -> None:
    # Saturday 10:00 in Austin: the law allows it, the organisation's Monday–Friday does not.
    saturday = at("America/Chicago", 2026, 12, 12, 10, 0)
    assert timing.when(org, "sms", AUSTIN, saturday).moved
    t = timing.when(org, "sms", AUSTIN, saturday, override_reason="Start date moved to Monday")
    assert t.send_at is None and t.override_reason == "Start date moved to Monday"
    night = at("America/Chicago", 2026, 12, 8, 22, 0)
    with pytest.raises(SendRefused) as refused:
        timing.when(org, "sms", AUSTIN, night, override_reason="Urgent")
    assert refused.value.field == "override_reason" and "cannot be set aside" in refused.value.message
    # A reason of only spaces is no reason: moved, as without one.
    assert timing.when(org, "sms", AUSTIN, saturday, override_reason="   ").moved


def test_a_picked_time_at_night_is_refused_with_the_first_time_that_can_be(org) -> None:
    now = at("Europe/Berlin", 2026, 12, 8, 12, 0)
    picked = at("America/Chicago", 2026, 12, 9, 7, 30)  # Wednesday 07:30 in Austin
    with pytest.raises(SendRefused) as refused:
        timing.when(org, "sms", AUSTIN, now, send_at=picked)
    assert refused.value.field == "send_at"
    assert "Wed 07:30 for them" in refused.value.message and "Wed 09:00 in Texas" in refused.value.message
    fine = at("America/Chicago", 2026, 12, 9, 9, 30)
    assert timing.when(org, "sms", AUSTIN, now, send_at=fine).send_at == fine


def test_a_reply_within_minutes_of_theirs_goes_now_even_at_night(org) -> None:
    now = at("America/Chicago", 2026, 12, 8, 23, 10)
    t = timing.when(org, "sms", AUSTIN, now, heard_at=now - timedelta(minutes=5))
    assert t.send_at is None and t.decision.reply
    assert timing.when(org, "sms", AUSTIN, now, heard_at=now - timedelta(minutes=20)).moved


def test_email_is_never_held(org) -> None:
    night = at("Europe/Berlin", 2026, 12, 8, 3, 0)
    t = timing.when(org, "email", None, night)
    assert t.send_at is None and t.decision is None


def test_the_organisations_hours_are_read_on_the_recipients_clock(org) -> None:
    # 21:00 in Berlin (outside 08:00–20:00 there) is 14:00 in Austin: allowed.
    now = at("Europe/Berlin", 2026, 12, 8, 21, 0)
    assert timing.when(org, "sms", AUSTIN, now).send_at is None
    assert timing.when(org, "sms", BERLIN, now).send_at == at("Europe/Berlin", 2026, 12, 9, 8, 0)


def test_both_times_name_the_recipients_place_and_the_writers_clock(org) -> None:
    now = at("America/Chicago", 2026, 12, 8, 23, 10)
    t = timing.when(org, "sms", AUSTIN, now)
    both = timing.both_times(t.send_at, t.decision, "Europe/Berlin")
    assert both == "Wed 09:00 in Texas · Wed 16:00 your time"
    assert timing.both_times(t.send_at, None, "Europe/Berlin") == "Wed 16:00 your time"
    berlin = timing.when(org, "sms", BERLIN, at("Europe/Berlin", 2026, 12, 8, 22, 0))
    assert timing.both_times(berlin.send_at, berlin.decision, "Europe/Berlin") == (
        "Wed 08:00 in Germany, your time too"
    )


MADRID_MOBILE = "+34612345678"  # a Spanish mobile: Madrid's clock or the Canaries', an hour behind


def test_the_jobs_place_narrows_a_numbers_zones_to_it_and_never_widens_them(org) -> None:
    now = at("Europe/Madrid", 2026, 12, 8, 8, 30)  # Tuesday 08:30 in Madrid, 07:30 in the Canaries
    # Either clock may be theirs: the later morning decides.
    held = timing.when(org, "sms", MADRID_MOBILE, now)
    assert held.moved and held.send_at == at("Atlantic/Canary", 2026, 12, 8, 8, 0)
    # A job in Madrid: read on Madrid's clock.
    there = timing.when(org, "sms", MADRID_MOBILE, now, place_zone="Europe/Madrid")
    assert there.send_at is None and there.decision.zones == ("Europe/Madrid",)
    # A place that is none of the number's zones changes nothing.
    elsewhere = timing.when(org, "sms", MADRID_MOBILE, now, place_zone="America/New_York")
    assert elsewhere.send_at == held.send_at and set(elsewhere.decision.zones) == {
        "Atlantic/Canary",
        "Europe/Madrid",
    }
