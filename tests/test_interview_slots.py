"""Interview slots (issue 17): one interviewer is never in two places at once, slots live in their place's
time zone and the booking page shows that clock first with the candidate's beside it, and a series of
slots is added in one step."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import csrf_from
from webapp import zones
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.interviews import booking, invitations, slots
from webapp.models import InterviewSlot, Message, utcnow

BASE = "https://relay.example"
DAY = date(2031, 3, 4)  # a Tuesday; New York on EST (UTC-5), Berlin on CET (UTC+1), Dublin on GMT


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"PUBLIC_BASE_URL": BASE}


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", sender_name="Acme", time_zone="Europe/Berlin")
    riley = f.user(org, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    morgan = f.user(org, "manager@acme.test", name="Morgan Patel")
    berlin = f.job(org, team=[riley, morgan], title="Backend Engineer", location="Berlin")
    newark = f.job(
        org, team=[riley], title="Warehouse Associate", location="Newark, NJ", time_zone="America/New_York"
    )
    f.number(org, "+4915123456700")
    f.number(org, "+353850123400")
    # An Irish mobile: the candidate reads in Europe/Dublin.
    fiadh = f.application(newark, f.candidate(org, "Fiadh", "Byrne", mobile="+353850123420"))
    f.credits(org, 50)
    db.session.commit()
    return {"org": org, "riley": riley, "morgan": morgan, "berlin": berlin, "newark": newark, "fiadh": fiadh}


def draft(at: str, minutes: int = 30, who=None, zone: str | None = None, day: date = DAY) -> slots.Draft:
    return slots.Draft(day, time.fromisoformat(at), minutes, "Room 1", who.id if who else None, zone)


def text(response) -> str:
    return response.get_data(as_text=True)


# --- One interviewer, one time ---------------------------------------------------------------------------


def test_an_interviewer_cannot_hold_overlapping_slots(world) -> None:
    riley, morgan, job = world["riley"], world["morgan"], world["berlin"]
    slots.create(db.session, riley, job, draft("10:00", 30, riley), utcnow())
    db.session.commit()
    for at, minutes in (("10:00", 30), ("09:45", 30), ("10:15", 15), ("09:00", 120)):
        with pytest.raises(slots.SlotRefused) as refused:
            slots.create(db.session, riley, job, draft(at, minutes, riley), utcnow())
        db.session.rollback()
        assert refused.value.field == "at"
        assert refused.value.message == "Riley Chen already has a slot then: Tue 04 Mar 10:00–10:30 CET."
    # Just before and just after are fine, and so is someone else, or nobody named, at that time.
    slots.create(db.session, riley, job, draft("09:30", 30, riley), utcnow())
    slots.create(db.session, riley, job, draft("10:30", 30, riley), utcnow())
    slots.create(db.session, riley, job, draft("10:00", 30, morgan), utcnow())
    slots.create(db.session, riley, job, draft("10:00", 30, None), utcnow())
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InterviewSlot)) == 5


def test_the_interviewer_is_busy_on_every_job(world) -> None:
    riley = world["riley"]
    slots.create(db.session, riley, world["berlin"], draft("16:00", 60, riley), utcnow())  # 15:00 UTC
    db.session.commit()
    # 10:30 in Newark is 16:30 in Berlin.
    with pytest.raises(slots.SlotRefused) as refused:
        slots.create(db.session, riley, world["newark"], draft("10:30", 30, riley), utcnow())
    assert refused.value.message == (
        "Riley Chen already has a slot then: Tue 04 Mar 10:00–11:00 EST (Backend Engineer)."
    )


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has no exclusion constraints: see test_slot_race
def test_the_database_refuses_an_overlap_on_postgresql(world, backend) -> None:
    """Whatever the code checked: a second row for the same interviewer and time is not stored."""
    starts = datetime(2031, 3, 4, 9, tzinfo=UTC)
    for n in range(2):
        db.session.add(
            InterviewSlot(
                job_id=world["berlin"].id,
                starts_at=starts + timedelta(minutes=15 * n),
                minutes=30,
                place="Room",
                interviewer_id=world["riley"].id,
            )
        )
    with pytest.raises(sa.exc.IntegrityError, match="ex_interview_slot_interviewer_overlap"):
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL refuses the twin itself (test above)
def test_a_booked_interviewer_is_not_offered_again(world, backend) -> None:
    """Twins written before the rule (SQLite keeps no constraint, so they can be there): once one is
    booked, the other is no longer offered, to anyone."""
    starts = datetime(2031, 3, 4, 9, tzinfo=UTC)
    twins = [
        InterviewSlot(
            job_id=world["newark"].id,
            starts_at=starts,
            minutes=30,
            place="Dock",
            interviewer_id=world["riley"].id,
        )
        for _ in range(2)
    ]
    db.session.add_all(twins)
    db.session.commit()
    invitation = invitations.invite(
        db.session, world["riley"], world["fiadh"], "sms", "Book: %INVITELINK%", None, BASE, utcnow()
    )
    booking.book(db.session, invitation, twins[0].id, utcnow())
    db.session.commit()
    assert slots.free(db.session, world["newark"].id, utcnow()) == []


def test_the_page_refuses_an_overlap_next_to_the_time_and_keeps_the_input(world, client, auth) -> None:
    riley = world["riley"]
    slots.create(db.session, riley, world["berlin"], draft("10:00", 45, riley), utcnow())
    db.session.commit()
    auth.login("recruiter@acme.test")
    path = f"/jobs/{world['berlin'].id}/slots"
    form = {
        "csrf_token": csrf_from(client, path),
        "day": "2031-03-04",
        "at": "10:30",
        "minutes": "30",
        "time_zone": "Europe/Berlin",
        "place": "Room 9",
        "interviewer_id": str(riley.id),
    }
    refused = client.post(path, data=form)
    html = text(refused)
    assert refused.status_code == 422
    assert re.search(r'id="at"[^>]*value="10:30"[^>]*aria-invalid="true"', html)
    refusal = "Riley Chen already has a slot then: Tue 04 Mar 10:00–10:45 CET."
    assert f'<p class="field-error" id="at-error">{refusal}</p>' in html
    assert 'value="2031-03-04"' in html and 'value="Room 9"' in html
    # The series form, not sent, keeps its defaults.
    assert 'id="series-time_zone" name="series-time_zone" value="Europe/Berlin"' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InterviewSlot)) == 1


# --- The place's time zone -------------------------------------------------------------------------------


def test_a_slot_is_read_in_its_places_zone(world) -> None:
    riley, newark = world["riley"], world["newark"]
    slot = slots.create(db.session, riley, newark, draft("10:00", 30, riley), utcnow())
    assert slot.starts_at == datetime(2031, 3, 4, 15, tzinfo=UTC) and slot.time_zone == "America/New_York"
    # A zone chosen on the form wins over the job's.
    other = slots.create(db.session, riley, newark, draft("10:00", 30, None, "America/Chicago"), utcnow())
    assert other.starts_at == datetime(2031, 3, 4, 16, tzinfo=UTC) and other.time_zone == "America/Chicago"
    # A job without a zone of its own: the organisation's.
    berlin = slots.create(db.session, riley, world["berlin"], draft("10:00", 30, None), utcnow())
    assert berlin.starts_at == datetime(2031, 3, 4, 9, tzinfo=UTC) and berlin.time_zone == "Europe/Berlin"
    with pytest.raises(slots.SlotRefused) as refused:
        slots.create(db.session, riley, newark, draft("10:00", 30, None, "Newark/Somewhere"), utcnow())
    assert refused.value.field == "time_zone"


def test_the_slot_form_says_which_zone_and_lists_each_slot_on_its_clock(world, client, auth) -> None:
    auth.login("recruiter@acme.test")
    path = f"/jobs/{world['newark'].id}/slots"
    page = text(client.get(path))
    assert re.search(r'id="time_zone" name="time_zone" value="America/New_York"', page)
    assert "Newark, NJ: America/New_York" in page
    added = client.post(
        path,
        data={
            "csrf_token": csrf_from(client, path),
            "day": "2031-03-04",
            "at": "10:00",
            "minutes": "30",
            "time_zone": "America/New_York",
            "place": "Acme warehouse, Port St",
            "interviewer_id": str(world["riley"].id),
        },
    )
    assert added.status_code == 303
    page = text(client.get(path))
    assert "Slot added: Tue 04 Mar 10:00 EST." in page
    assert 'Tue 04 Mar 2031, 10:00 EST</strong> <span class="slot-clock">Newark</span>' in page
    assert "16:00 CET in Berlin" in page  # the team reads in Berlin
    bad = client.post(
        path,
        data={
            "csrf_token": csrf_from(client, path),
            "day": "2031-03-04",
            "at": "11:00",
            "minutes": "30",
            "time_zone": "Mars/Olympus",
            "place": "Dock",
        },
    )
    assert bad.status_code == 422
    assert 'id="time_zone-error">Choose a time zone from the list' in text(
        bad
    ) and 'value="Mars/Olympus"' in text(bad)


def invite_fiadh(w):
    invitation = invitations.invite(
        db.session, w["riley"], w["fiadh"], "sms", "Hi %FIRSTNAME%, book: %INVITELINK%", None, BASE, utcnow()
    )
    db.session.commit()
    found = re.search(r"/book/([A-Za-z0-9_-]+)", invitation.message.body)
    assert found
    return invitation, found.group(1)


def test_the_booking_page_shows_the_places_clock_then_the_candidates(world, app) -> None:
    riley, newark = world["riley"], world["newark"]
    in_person = slots.create(db.session, riley, newark, draft("10:00", 30, riley), utcnow())
    video = slots.create(db.session, riley, newark, draft("12:00", 30, None), utcnow())
    video.place = "https://meet.example/warehouse"
    db.session.commit()
    _, token = invite_fiadh(world)
    candidate = app.test_client()
    html = text(candidate.get(f"/book/{token}"))
    assert (
        "An interview in person is at the place's local time, shown first; your time (Europe/Dublin" in html
    )
    assert "Video calls are in your time." in html
    # In person: Newark's clock first, Dublin's beside it; the video call on Dublin's clock only.
    assert '<span class="slot-time">10:00 EST</span>' in html
    assert '<span class="slot-yours">15:00 GMT your time</span>' in html
    assert html.count('<h3 class="slot-day">Tuesday 04 March 2031</h3>') == 1
    assert '<span class="slot-time">17:00 GMT</span>' in html

    csrf = csrf_from(candidate, f"/book/{token}")
    assert (
        candidate.post(f"/book/{token}", data={"csrf_token": csrf, "slot": in_person.id}).status_code == 303
    )
    html = text(candidate.get(f"/book/{token}"))
    assert '<p class="booking-when" id="booked-when">Tuesday 04 March 2031, 10:00 EST (Newark)</p>' in html
    assert '<p class="booking-yours" id="booked-yours">15:00 GMT your time</p>' in html
    confirmation = db.session.scalars(sa.select(Message).order_by(Message.id.desc())).first()
    assert "is booked: Tue 04 Mar 2031 10:00 EST (Newark time), 30 min.\nWhere: Room 1\n" in confirmation.body


def test_a_video_link_in_a_confirmation_is_followed_by_whitespace(world, app) -> None:
    """The place may be a video link: the confirmation puts nothing after it but a line break, so a phone
    opens exactly that address (never "…/warehouse." or "…/warehouse,")."""
    riley, newark = world["riley"], world["newark"]
    video = slots.create(db.session, riley, newark, draft("12:00", 30, None), utcnow())
    video.place = "https://meet.example/warehouse"
    db.session.commit()
    _, token = invite_fiadh(world)
    candidate = app.test_client()
    csrf = csrf_from(candidate, f"/book/{token}")
    assert candidate.post(f"/book/{token}", data={"csrf_token": csrf, "slot": video.id}).status_code == 303
    confirmation = db.session.scalars(sa.select(Message).order_by(Message.id.desc())).first()
    links = re.findall(r"https?://\S+?(?=\s|$)", confirmation.body)
    assert "https://meet.example/warehouse" in links
    for link in re.finditer(r"https?://", confirmation.body):
        rest = confirmation.body[link.start() :]
        word = re.match(r"\S+", rest).group(0)
        assert word[-1].isalnum() or word.endswith("/"), f"{word!r} ends in punctuation"


def test_the_team_reads_a_booking_on_the_places_clock_with_its_own_beside(world, app) -> None:
    """The Interview card and the thread say what the candidate was told (Newark's 10:00), and the
    team's own time beside it, not Berlin's clock alone."""
    riley, newark = world["riley"], world["newark"]
    in_person = slots.create(db.session, riley, newark, draft("10:00", 30, riley), utcnow())
    db.session.commit()
    invitation, token = invite_fiadh(world)
    candidate = app.test_client()
    csrf = csrf_from(candidate, f"/book/{token}")
    assert (
        candidate.post(f"/book/{token}", data={"csrf_token": csrf, "slot": in_person.id}).status_code == 303
    )
    db.session.refresh(invitation)
    said = invitations.describe(invitation, "Europe/Berlin", utcnow())
    assert said == "Booked for Tue 04 Mar 2031, 10:00 EST (Newark), 16:00 CET here"


def test_a_candidate_on_the_places_clock_sees_one_time(world, app) -> None:
    """A German mobile and a Berlin interview: one clock, said once."""
    riley, job = world["riley"], world["berlin"]
    slots.create(db.session, riley, job, draft("10:00", 30, riley), utcnow())
    lena = f.application(job, f.candidate(world["org"], "Lena", "Müller", mobile="+4915123456789"))
    db.session.commit()
    invitation = invitations.invite(
        db.session, riley, lena, "sms", "Book: %INVITELINK%", None, BASE, utcnow()
    )
    db.session.commit()
    token = re.search(r"/book/([A-Za-z0-9_-]+)", invitation.message.body)
    assert token
    html = text(app.test_client().get(f"/book/{token.group(1)}"))
    assert "Times are in Europe/Berlin time, where your phone number is from." in html
    assert '<span class="slot-time">10:00 CET</span>' in html and "your time</span>" not in html


# --- A series in one step ---------------------------------------------------------------------------------


def series(**changes) -> slots.Series:
    values = {
        "first_day": DAY,
        "last_day": DAY + timedelta(days=6),
        "weekdays": frozenset({1, 3}),  # Tuesdays and Thursdays
        "start": time(9),
        "end": time(12),
        "every": 30,
        "minutes": 30,
        "place": "Dock 2",
        "interviewer_id": None,
        "time_zone": None,
    }
    return slots.Series(**{**values, **changes})


def test_a_series_every_30_minutes_from_9_to_12_on_chosen_days(world) -> None:
    riley = world["riley"]
    outcome = slots.add_series(db.session, riley, world["newark"], series(interviewer_id=riley.id), utcnow())
    db.session.commit()
    starts = [zones.local(s.starts_at, "America/New_York") for s in outcome.added]
    assert [s.strftime("%a %H:%M") for s in starts] == [
        f"{day} {t}" for day in ("Tue", "Thu") for t in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30")
    ]
    assert outcome.skipped == []
    assert {s.time_zone for s in outcome.added} == {"America/New_York"}


def test_a_series_skips_the_times_the_interviewer_is_busy_and_says_which(world) -> None:
    riley = world["riley"]
    slots.create(db.session, riley, world["berlin"], draft("16:15", 30, riley), utcnow())  # 10:15 in Newark
    db.session.commit()
    outcome = slots.add_series(
        db.session, riley, world["newark"], series(interviewer_id=riley.id, last_day=DAY), utcnow()
    )
    db.session.commit()
    assert len(outcome.added) == 4
    assert [(zones.format_time(at, "America/New_York", "%H:%M"), why) for at, why in outcome.skipped] == [
        ("10:00 EST", "Riley Chen already has a slot then: Tue 04 Mar 10:15–10:45 EST (Backend Engineer)"),
        ("10:30 EST", "Riley Chen already has a slot then: Tue 04 Mar 10:15–10:45 EST (Backend Engineer)"),
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"first_day": None}, "first_day"),
        ({"last_day": DAY - timedelta(days=1)}, "last_day"),
        ({"last_day": DAY + timedelta(days=40)}, "last_day"),
        ({"weekdays": frozenset()}, "weekdays"),
        ({"weekdays": frozenset({6}), "last_day": DAY}, "weekdays"),
        ({"start": None}, "start"),
        ({"end": time(9, 15)}, "end"),
        ({"every": 15}, "every"),
        ({"every": 7}, "every"),
        ({"minutes": 7}, "minutes"),
        ({"place": " "}, "place"),
        ({"time_zone": "Nowhere/Town"}, "time_zone"),
        ({"every": 15, "minutes": 15, "start": time(0), "end": time(23, 45)}, "last_day"),  # too many
    ],
)
def test_a_series_that_cannot_be_made_is_refused_next_to_its_field(world, changes, field) -> None:
    with pytest.raises(slots.SlotRefused) as refused:
        slots.add_series(db.session, world["riley"], world["newark"], series(**changes), utcnow())
    assert refused.value.field == field
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InterviewSlot)) == 0


def test_the_series_form_adds_and_reports(world, client, auth) -> None:
    riley = world["riley"]
    slots.create(db.session, riley, world["newark"], draft("09:00", 30, riley), utcnow())
    db.session.commit()
    auth.login("recruiter@acme.test")
    path = f"/jobs/{world['newark'].id}/slots"
    form = {
        "csrf_token": csrf_from(client, path),
        "series-first_day": "2031-03-04",
        "series-last_day": "2031-03-06",
        "series-weekdays": ["1", "3"],
        "series-start": "09:00",
        "series-end": "10:00",
        "series-every": "30",
        "series-minutes": "30",
        "series-time_zone": "America/New_York",
        "series-place": "Dock 2",
        "series-interviewer_id": str(riley.id),
    }
    bad = client.post(f"{path}/series", data={**form, "series-every": "15"})
    assert bad.status_code == 422
    assert 'id="series-every-error">Slots of 30 min every 15 min would overlap each other' in text(bad)
    assert 'value="2031-03-06"' in text(bad) and 'value="Dock 2"' in text(bad)
    assert 'id="series-card" open>' in text(bad)  # shown unfolded, with its error
    assert 'id="series-card">' in text(client.get(path))  # folded until wanted
    added = client.post(f"{path}/series", data=form)
    assert added.status_code == 303
    page = text(client.get(path))
    assert "3 slots added: Tue 04 Mar 09:30 EST to Thu 06 Mar 09:30 EST." in page
    assert (
        "1 time skipped, the others added. Tue 04 Mar 09:00 EST: Riley Chen already has a slot then" in page
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InterviewSlot)) == 4
    # All of them taken: nothing added, said next to the start.
    again = client.post(f"{path}/series", data=form)
    assert again.status_code == 422 and 'id="series-start-error">None of these times could be added.' in text(
        again
    )
