"""Quiet hours in the recipient's local time (issue #20, §2): the law's hours by country and US state, the
organisation's own window and days, the 15-minute reply, DST, several zones. The clock is passed in:
every test names its moment; nothing sleeps and nothing reads the database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from webapp import zones
from webapp.messaging import quiet_hours
from webapp.messaging.quiet_hours import OrganizationHours, QuietHoursRefused, decide

AUSTIN = "+15125550123"  # Texas
MIAMI = "+13055550123"  # Florida
OKLAHOMA_CITY = "+14055550123"
BALTIMORE = "+14105550123"  # Maryland
JACKSON = "+16015550123"  # Mississippi
NEWARK = "+12015550123"  # New Jersey
HARTFORD = "+12035550123"  # Connecticut (New Haven's code)
SAN_FRANCISCO = "+14155550123"  # California: the federal hours only
NEW_YORK = "+12125550123"
IDAHO = "+12085550123"  # Boise (Mountain) and the panhandle (Pacific)
BERLIN = "+4915123456789"
LONDON = "+447400123456"

# No window of the organisation's own: every day, all day, so that a test sees the law alone.
ALWAYS = OrganizationHours(time(0), time(23, 59), frozenset(range(1, 8)))
DEFAULT = OrganizationHours(time_zone="Europe/Berlin")  # 08:00–20:00 Monday to Friday

CHICAGO, NEW_YORK_TZ = ZoneInfo("America/Chicago"), ZoneInfo("America/New_York")


def at(zone: str | ZoneInfo, *args: int) -> datetime:
    """A wall-clock moment in a zone, as the UTC instant the app is given."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    return datetime(*args, tzinfo=tz).astimezone(UTC)


# 2026: Mon 7 Dec … Sun 13 Dec. US daylight time begins Sun 8 Mar, ends Sun 1 Nov; Europe's ends Sun 25 Oct.


# --- The recipient's zone ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "zone", "state"),
    [
        (AUSTIN, "America/Chicago", "TX"),
        (NEWARK, "America/New_York", "NJ"),
        (MIAMI, "America/New_York", "FL"),
        (SAN_FRANCISCO, "America/Los_Angeles", "CA"),
        (BERLIN, "Europe/Berlin", None),
        (LONDON, "Europe/London", None),  # libphonenumber says "Etc/Unknown": the country's one zone
    ],
)
def test_the_zone_and_the_state_come_from_the_number(number, zone, state) -> None:
    decision = decide(at(UTC, 2026, 12, 8, 15, 0), number=number, organization=ALWAYS)
    assert decision.zones == (zone,)
    assert decision.state == state
    assert decision.local_now[0].tzinfo == ZoneInfo(zone)
    assert decision.zone_note == ""


def test_the_applications_location_overrides_the_number() -> None:
    # A Texan number, but the application says the person lives in New York: New York's clock, while the
    # number's state law still holds (a Texas area code is Texas's to the statute) unless a state is given.
    now = at(NEW_YORK_TZ, 2026, 12, 8, 8, 30)  # 07:30 in Austin
    decision = decide(now, number=AUSTIN, organization=ALWAYS, zone_override="America/New_York")
    assert (
        decision.zones == ("America/New_York",)
        and decision.zone_note == "given by the application's location"
    )
    assert not decision.allowed_now and decision.rule.code == "US-TX"  # Texas: from 09:00
    moved = decide(
        now, number=AUSTIN, organization=ALWAYS, zone_override="America/New_York", state_override="ny"
    )
    assert moved.allowed_now and moved.state == "NY"
    # A zone the tz database does not know is no override: the number's own is used.
    assert decide(now, number=AUSTIN, organization=ALWAYS, zone_override="Mars/Olympus").zones == (
        "America/Chicago",
    )


def test_a_number_with_several_zones_must_suit_all_of_them_and_says_so() -> None:
    # Idaho's 208: Boise keeps Mountain time, the panhandle Pacific. 08:30 in Boise is 07:30 there.
    now = at("America/Boise", 2026, 12, 8, 8, 30)
    decision = decide(now, number=IDAHO, organization=ALWAYS)
    assert decision.zones == ("America/Boise", "America/Los_Angeles")
    assert decision.zone_note == "several zones: America/Boise, America/Los_Angeles"
    assert not decision.allowed_now and decision.rule.code == "US"
    assert decision.next_allowed_at == at("America/Los_Angeles", 2026, 12, 8, 8, 0)  # the later morning
    assert decision.words == ("It is 08:30 MST and 07:30 PST in Idaho. Sends at 09:00 MST and 08:00 PST.")
    # And in the evening the earlier night ends it: 20:59 in Boise is allowed, 21:00 is not.
    assert decide(at("America/Boise", 2026, 12, 8, 20, 59), number=IDAHO, organization=ALWAYS).allowed_now
    late = decide(at("America/Boise", 2026, 12, 8, 21, 0), number=IDAHO, organization=ALWAYS)
    assert not late.allowed_now and late.next_allowed_at == at("America/Los_Angeles", 2026, 12, 9, 8, 0)


def test_zones_that_never_share_a_moment_of_the_window_have_no_next_moment() -> None:
    # Boise and the panhandle with a half-hour window: when it opens in one it has closed in the other.
    narrow = OrganizationHours(time(8), time(8, 30), frozenset(range(1, 8)))
    decision = decide(at("America/Boise", 2026, 12, 8, 7, 0), number=IDAHO, organization=narrow)
    assert not decision.allowed_now and decision.next_allowed_at is None
    assert decision.words.endswith("No time in the next two weeks suits every one of their zones.")


# --- The law ------------------------------------------------------------------------------------------------


def test_federal_hours_hold_from_08_00_until_21_00_their_time() -> None:
    la = "America/Los_Angeles"
    early = decide(at(la, 2026, 12, 8, 7, 59), number=SAN_FRANCISCO, organization=ALWAYS)
    assert not early.allowed_now and early.held_by == "law" and early.rule.code == "US"
    assert early.rule.citation == "47 CFR § 64.1200(c)(1)"
    assert early.next_allowed_at == at(la, 2026, 12, 8, 8, 0)
    assert not early.overridable
    assert early.why == (
        "US federal law (47 CFR § 64.1200(c)(1)) allows texts 08:00–21:00 their time; it cannot be set aside."
    )
    assert decide(at(la, 2026, 12, 8, 8, 0), number=SAN_FRANCISCO, organization=ALWAYS).allowed_now
    assert decide(at(la, 2026, 12, 8, 20, 59), number=SAN_FRANCISCO, organization=ALWAYS).allowed_now
    late = decide(at(la, 2026, 12, 8, 21, 0), number=SAN_FRANCISCO, organization=ALWAYS)
    assert not late.allowed_now and late.next_allowed_at == at(la, 2026, 12, 9, 8, 0)


@pytest.mark.parametrize(
    ("number", "zone", "code", "opens", "closes", "citation"),
    [
        (MIAMI, "America/New_York", "US-FL", time(8), time(20), "Fla. Stat. § 501.616(6)(a)"),
        (OKLAHOMA_CITY, "America/Chicago", "US-OK", time(8), time(20), "Okla. Stat. tit. 15, § 775C.1"),
        (BALTIMORE, "America/New_York", "US-MD", time(8), time(20), "Md. Code, Com. Law § 14-4502"),
        (JACKSON, "America/Chicago", "US-MS", time(8), time(20), "Miss. Code Ann. § 77-3-723(1)"),
        (NEWARK, "America/New_York", "US-NJ", time(8), time(21), "N.J.S.A. 56:8-128(d)"),
        (HARTFORD, "America/New_York", "US-CT", time(9), time(20), "Conn. Gen. Stat. § 42-288a"),
        (AUSTIN, "America/Chicago", "US-TX", time(9), time(21), "Tex. Bus. & Com. Code § 301.051"),
    ],
)
def test_each_states_hours_hold_on_a_weekday(number, zone, code, opens, closes, citation) -> None:
    day = (2026, 12, 8)  # a Tuesday
    before = decide(
        at(zone, *day, opens.hour, opens.minute) - timedelta(minutes=1), number=number, organization=ALWAYS
    )
    after = decide(at(zone, *day, closes.hour, closes.minute), number=number, organization=ALWAYS)
    for held in (before, after):
        assert not held.allowed_now and held.held_by == "law"
        # The state's own rule is named where it is the stricter (or where both close).
        assert held.rule.code in (code, "US") and held.rule.citation
    assert before.next_allowed_at == at(zone, *day, opens.hour, opens.minute)
    assert decide(at(zone, *day, opens.hour, opens.minute), number=number, organization=ALWAYS).allowed_now
    last = at(zone, *day, closes.hour, closes.minute) - timedelta(minutes=1)
    assert decide(last, number=number, organization=ALWAYS).allowed_now
    if (opens, closes) != (time(8), time(21)):  # stricter than the federal hours: the state is named
        stricter = before if opens > time(8) else after
        assert stricter.rule.code == code and stricter.rule.citation.startswith(citation)
        assert stricter.why.startswith(f"{stricter.rule.name} ({stricter.rule.citation}) allows texts")


def test_texas_allows_sunday_texts_from_noon_only() -> None:
    saturday_night = decide(at(CHICAGO, 2026, 12, 12, 22, 0), number=AUSTIN, organization=ALWAYS)
    assert not saturday_night.allowed_now and saturday_night.rule.code == "US-TX"
    assert saturday_night.next_allowed_at == at(CHICAGO, 2026, 12, 13, 12, 0)  # not 09:00
    assert saturday_night.words == "It is 22:00 in Texas. Sends tomorrow at 12:00 their time."
    assert saturday_night.why == (
        "Texas law (Tex. Bus. & Com. Code § 301.051) allows texts 09:00–21:00 their time, Sun 12:00–21:00; "
        "it cannot be set aside."
    )
    sunday_morning = decide(at(CHICAGO, 2026, 12, 13, 11, 59), number=AUSTIN, organization=ALWAYS)
    assert not sunday_morning.allowed_now and sunday_morning.next_allowed_at == at(
        CHICAGO, 2026, 12, 13, 12, 0
    )
    assert decide(at(CHICAGO, 2026, 12, 13, 12, 0), number=AUSTIN, organization=ALWAYS).allowed_now
    assert decide(at(CHICAGO, 2026, 12, 12, 9, 0), number=AUSTIN, organization=ALWAYS).allowed_now  # Saturday


def test_mississippi_allows_no_text_on_sunday() -> None:
    sunday_noon = decide(at(CHICAGO, 2026, 12, 13, 12, 0), number=JACKSON, organization=ALWAYS)
    assert not sunday_noon.allowed_now and sunday_noon.rule.code == "US-MS"
    assert sunday_noon.next_allowed_at == at(CHICAGO, 2026, 12, 14, 8, 0)  # Monday morning
    assert "none on Sun" in sunday_noon.why
    saturday_night = decide(at(CHICAGO, 2026, 12, 12, 20, 30), number=JACKSON, organization=ALWAYS)
    assert saturday_night.next_allowed_at == at(CHICAGO, 2026, 12, 14, 8, 0)  # over the whole Sunday


def test_a_number_outside_the_us_has_no_legal_hours_here_only_the_organisations() -> None:
    late = at("Europe/Berlin", 2026, 12, 8, 23, 30)
    assert decide(late, number=BERLIN, organization=ALWAYS).allowed_now
    held = decide(late, number=BERLIN, organization=DEFAULT)
    assert not held.allowed_now and held.held_by == "organisation" and held.rule is None
    assert held.laws == ()


# --- The organisation's window and days ---------------------------------------------------------------------


def test_the_organisations_window_is_read_on_the_recipients_clock() -> None:
    # The organisation is in Berlin; the candidate in New York. 14:00 in Berlin is 08:00 in New York.
    assert decide(at(NEW_YORK_TZ, 2026, 12, 8, 8, 0), number=NEW_YORK, organization=DEFAULT).allowed_now
    early = decide(at(NEW_YORK_TZ, 2026, 12, 8, 7, 30), number=NEW_YORK, organization=DEFAULT)
    assert not early.allowed_now and early.held_by == "law"  # the law (08:00) is said first: no override
    evening = decide(at(NEW_YORK_TZ, 2026, 12, 8, 20, 0), number=NEW_YORK, organization=DEFAULT)
    assert not evening.allowed_now and evening.held_by == "organisation" and evening.overridable
    assert evening.next_allowed_at == at(NEW_YORK_TZ, 2026, 12, 9, 8, 0)
    assert evening.words == "It is 20:00 in New York. Sends tomorrow at 08:00 their time."
    assert evening.why == (
        "Your organisation sends Mon–Fri 08:00–20:00 their time; you can send now with a reason."
    )


def test_the_organisations_days_skip_the_weekend() -> None:
    friday_evening = decide(at("Europe/Berlin", 2026, 12, 11, 20, 0), number=BERLIN, organization=DEFAULT)
    assert friday_evening.next_allowed_at == at("Europe/Berlin", 2026, 12, 14, 8, 0)
    assert friday_evening.words == "It is 20:00 in Germany. Sends Mon 14 Dec at 08:00 their time."
    assert not decide(
        at("Europe/Berlin", 2026, 12, 12, 11, 0), number=BERLIN, organization=DEFAULT
    ).allowed_now
    weekends = OrganizationHours(time(10), time(16), frozenset({6, 7}))
    assert decide(at("Europe/Berlin", 2026, 12, 12, 11, 0), number=BERLIN, organization=weekends).allowed_now
    assert weekends.describe() == "Sat, Sun 10:00–16:00"


def test_the_organisations_window_and_a_states_law_both_hold() -> None:
    # Saturday night in Texas, the organisation sends Monday to Friday: Texas's Sunday noon is no use,
    # Monday's 09:00 (Texas) is, not the organisation's 08:00.
    decision = decide(at(CHICAGO, 2026, 12, 12, 22, 0), number=AUSTIN, organization=DEFAULT)
    assert decision.next_allowed_at == at(CHICAGO, 2026, 12, 14, 9, 0)


def test_the_writer_may_set_the_organisations_window_aside_with_a_reason() -> None:
    evening = at(NEW_YORK_TZ, 2026, 12, 8, 20, 30)
    decision = decide(
        evening, number=NEW_YORK, organization=DEFAULT, override_reason="They asked for it tonight"
    )
    assert decision.allowed_now and decision.overridden
    assert decision.why == "Outside your organisation's hours: it goes now, with your reason."
    # Within the organisation's hours a reason changes nothing.
    assert not decide(
        at(NEW_YORK_TZ, 2026, 12, 8, 12, 0), number=NEW_YORK, organization=DEFAULT, override_reason="x"
    ).overridden


def test_a_reason_never_sets_the_law_aside() -> None:
    night = at(CHICAGO, 2026, 12, 8, 23, 10)
    decision = decide(night, number=AUSTIN, organization=DEFAULT, override_reason="Urgent: the offer expires")
    assert not decision.allowed_now and decision.held_by == "law" and not decision.overridable
    assert decision.next_allowed_at == at(CHICAGO, 2026, 12, 9, 9, 0)
    assert decision.words == "It is 23:10 in Texas. Sends tomorrow at 09:00 their time."


@pytest.mark.parametrize(
    ("reason", "message"),
    [("", "Say why this cannot wait"), ("   ", "Say why this cannot wait"), ("x" * 201, "at most 200 fit")],
)
def test_an_override_without_a_reason_is_refused_next_to_the_reason(reason, message) -> None:
    with pytest.raises(QuietHoursRefused) as refused:
        decide(at(UTC, 2026, 12, 8, 1, 0), number=BERLIN, organization=DEFAULT, override_reason=reason)
    assert message in refused.value.message and refused.value.field == "override_reason"


# --- A reply within 15 minutes -----------------------------------------------------------------------------


def test_a_reply_within_15_minutes_of_their_message_goes_now() -> None:
    now = at(CHICAGO, 2026, 12, 12, 23, 10)  # Saturday night in Texas, outside every window
    for minutes in (0, 10, 15):
        decision = decide(
            now, number=AUSTIN, organization=DEFAULT, last_inbound_at=now - timedelta(minutes=minutes)
        )
        assert decision.allowed_now and decision.reply, minutes
        assert decision.why == "A reply to their message of the last minutes: it goes now."
    too_late = decide(now, number=AUSTIN, organization=DEFAULT, last_inbound_at=now - timedelta(minutes=16))
    assert not too_late.allowed_now and not too_late.reply
    # A message "from the future" (clocks apart) is no conversation.
    ahead = decide(now, number=AUSTIN, organization=DEFAULT, last_inbound_at=now + timedelta(minutes=5))
    assert not ahead.allowed_now


def test_the_data_can_hold_even_a_reply_to_the_law(tmp_path) -> None:
    data = json.loads(quiet_hours.RULES.read_text(encoding="utf-8"))
    data["reply"]["overrides_legal_hours"] = False
    (tmp_path / "rules.json").write_text(json.dumps(data), encoding="utf-8")
    strict = quiet_hours.load(tmp_path / "rules.json")
    now = at(CHICAGO, 2026, 12, 12, 23, 10)
    reply = now - timedelta(minutes=5)
    held = decide(now, number=AUSTIN, organization=DEFAULT, last_inbound_at=reply, rules_in_force=strict)
    assert not held.allowed_now and held.held_by == "law" and held.reply
    # The organisation's window no longer holds a reply: Texas's Sunday noon, not Monday.
    assert held.next_allowed_at == at(CHICAGO, 2026, 12, 13, 12, 0)
    # At a lawful hour outside the organisation's days, the reply goes.
    saturday = at(CHICAGO, 2026, 12, 12, 10, 0)
    assert decide(
        saturday, number=AUSTIN, organization=DEFAULT, last_inbound_at=saturday, rules_in_force=strict
    ).allowed_now


# --- Daylight saving time -----------------------------------------------------------------------------------


def test_the_next_moment_is_right_when_the_clocks_spring_forward() -> None:
    # Saturday 7 March 2026, 22:00 CST in Austin; that night Texas moves to CDT. Sunday noon is 17:00 UTC
    # (it would be 18:00 on the Saturday's offset).
    decision = decide(at(CHICAGO, 2026, 3, 7, 22, 0), number=AUSTIN, organization=ALWAYS)
    assert decision.next_allowed_at == datetime(2026, 3, 8, 17, 0, tzinfo=UTC)
    # New York, the organisation's window: Sunday 08:00 EDT is 12:00 UTC.
    every_day = OrganizationHours(time(8), time(20), frozenset(range(1, 8)))
    ny = decide(at(NEW_YORK_TZ, 2026, 3, 7, 23, 0), number=NEW_YORK, organization=every_day)
    assert ny.next_allowed_at == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def test_the_next_moment_is_right_when_the_clocks_fall_back() -> None:
    # Saturday 31 October 2026, 22:00 CDT in Austin; that night Texas goes back to CST. Sunday noon is
    # 18:00 UTC.
    decision = decide(at(CHICAGO, 2026, 10, 31, 22, 0), number=AUSTIN, organization=ALWAYS)
    assert decision.next_allowed_at == datetime(2026, 11, 1, 18, 0, tzinfo=UTC)
    # Berlin, Friday 23 October 21:00 CEST; Europe goes back on the Sunday: Monday 08:00 CET is 07:00 UTC.
    berlin = decide(at("Europe/Berlin", 2026, 10, 23, 21, 0), number=BERLIN, organization=DEFAULT)
    assert berlin.next_allowed_at == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


# --- Numbers that say little --------------------------------------------------------------------------------


def test_an_invalid_number_is_read_in_the_organisations_zone_without_laws() -> None:
    decision = decide(at("Europe/Berlin", 2026, 12, 8, 21, 0), number="garbage", organization=DEFAULT)
    assert decision.zones == ("Europe/Berlin",) and decision.laws == ()
    assert decision.zone_note == "their zone is not known: read in yours (Europe/Berlin)"
    assert not decision.allowed_now and decision.held_by == "organisation"
    assert decide(at(UTC, 2026, 12, 8, 12, 0), number=None, organization=ALWAYS).zones == ("UTC",)


def test_a_us_number_without_a_place_must_suit_every_us_zone() -> None:
    # 500 is not geographic: the zones libphonenumber gives the whole country, and the federal hours in each.
    decision = decide(at(NEW_YORK_TZ, 2026, 12, 8, 12, 0), number="+15005550100", organization=ALWAYS)
    assert set(decision.zones) <= set(zones.in_country("US")) and len(decision.zones) > 5
    assert decision.state is None and not decision.allowed_now  # 07:00 in Honolulu
    assert decision.next_allowed_at == at("Pacific/Honolulu", 2026, 12, 8, 8, 0)
    # The country alone says as much for a number that cannot be read.
    by_country = decide(at(NEW_YORK_TZ, 2026, 12, 8, 12, 0), number="555", country="US", organization=ALWAYS)
    assert by_country.zones == zones.in_country("US") and [r.code for r in by_country.laws] == ["US"]
    assert by_country.next_allowed_at == at("Pacific/Honolulu", 2026, 12, 8, 8, 0)


def test_the_time_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(datetime(2026, 12, 8, 12, 0), number=BERLIN, organization=DEFAULT)


# --- The data -----------------------------------------------------------------------------------------------


def test_every_rule_cites_its_source_and_says_how_far_it_was_checked() -> None:
    data = json.loads(quiet_hours.RULES.read_text(encoding="utf-8"))
    book = quiet_hours.rules()
    assert {r["code"] for r in data["rules"]} == {r.code for r in book.laws}
    for entry in data["rules"]:
        assert entry["citation"] and entry["checked_in"], entry["code"]
        assert entry["verified"] in ("statute", "secondary", "unverified"), entry["code"]
    # Each state with a law of its own can be found from its area codes.
    for rule in book.laws:
        if rule.state:
            assert rule.state in book.area_codes.values() and rule.state in book.states


def test_an_area_code_belongs_to_one_state() -> None:
    data = json.loads(quiet_hours.AREA_CODES.read_text(encoding="utf-8"))
    codes = [code for state, entry in data.items() if state != "_source" for code in entry["area_codes"]]
    assert len(codes) == len(set(codes)) > 300
    assert all(len(code) == 3 and code.isdigit() for code in codes)


def test_days_are_described_as_people_write_them() -> None:
    describe = quiet_hours.describe_days
    assert describe(frozenset({1, 2, 3, 4, 5})) == "Mon–Fri"
    assert describe(frozenset({1, 3})) == "Mon, Wed"
    assert describe(frozenset({1, 2, 3, 4, 5, 6, 7})) == "Mon–Sun"
    assert describe(frozenset({1, 2, 5, 6, 7})) == "Mon, Tue, Fri–Sun"
    assert describe(frozenset()) == "no day"


@pytest.mark.parametrize(
    ("number", "place"),
    [
        ("+31612345608", "the Netherlands"),
        ("+447400123456", "the United Kingdom"),
        (BERLIN, "Germany"),  # Busingen's zone keeps Berlin's clock: the country alone
        (AUSTIN, "Texas"),
    ],
)
def test_the_place_is_named_as_a_person_says_it(number, place) -> None:
    d = decide(datetime(2026, 12, 6, 7, 0, tzinfo=UTC), number=number, organization=ALWAYS)
    assert d.place == place and f"in {place}." in d.words
