"""Quiet hours: whether a text may reach a person now, on their clock, and if not, when it may.

Two layers hold, both read in the recipient's local time: the law (quiet_hours.json: the US federal
hours and the stricter states', each with its citation) and the organisation's own window and days
(Settings). A number whose place spans several zones must suit every one of them. The writer may set
the organisation's window aside with a reason; the law never. A reply within minutes of the person's
own message answers them: a conversation, not an outreach, so it goes now (how far that reaches is
data: quiet_hours.json's `reply`).

`decide` is the one entry: pure, the clock passed in, nothing read from the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import phonenumbers

from webapp import country_names, zones
from webapp.refusals import Refused

if TYPE_CHECKING:
    from webapp.models import Organization

RULES = Path(__file__).with_name("quiet_hours.json")
AREA_CODES = Path(__file__).with_name("us_area_codes.json")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO weekday n is DAYS[n - 1]
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# How far ahead the next allowed moment is looked for: rules repeat weekly, so two weeks find it when
# there is one (several zones far apart with a short window may have none at all).
HORIZON_DAYS = 15
REASON_LENGTH = 200

Hours = tuple[time, time] | None  # [from, until) on one day; None: no text that day


class QuietHoursRefused(Refused):
    pass


@dataclass(frozen=True)
class Rule:
    """One law's hours: for a country (`regions`) or, with `state`, one US state's own."""

    code: str
    name: str
    regions: frozenset[str]
    state: str | None
    citation: str
    verified: str
    days: tuple[Hours, ...]  # Monday first

    def hours(self, local: datetime) -> Hours:
        return self.days[local.weekday()]

    def allows(self, local: datetime) -> bool:
        return _within(local, self.hours(local))

    def describe(self) -> str:
        """The hours as the composer says them: "09:00–21:00 their time, Sun 12:00–21:00"."""
        usual = max(set(self.days), key=self.days.count)
        others = [
            f"{DAY_NAMES[d]} {_span(h)}" if h else f"none on {DAY_NAMES[d]}"
            for d, h in enumerate(self.days)
            if h != usual
        ]
        return ", ".join([f"{_span(usual)} their time" if usual else "none", *others])


@dataclass(frozen=True)
class Rules:
    laws: tuple[Rule, ...]
    reply_within: timedelta
    reply_overrides_law: bool
    area_codes: dict[str, str]  # "512" → "TX"
    states: dict[str, str]  # "TX" → "Texas"

    def for_place(self, region: str | None, state: str | None) -> list[Rule]:
        """The laws over a number of that region and state: the state's own first (the one to name)."""
        found = [r for r in self.laws if region in r.regions and r.state in (None, state)]
        return sorted(found, key=lambda r: r.state is None)


def load(rules: Path = RULES, area_codes: Path = AREA_CODES) -> Rules:
    data = json.loads(rules.read_text(encoding="utf-8"))
    codes = json.loads(area_codes.read_text(encoding="utf-8"))
    laws = []
    for entry in data["rules"]:
        default = entry["hours"].get("default")
        days = tuple(_hours(entry["hours"].get(day, default)) for day in DAYS)
        laws.append(
            Rule(
                code=entry["code"],
                name=entry["name"],
                regions=frozenset(entry["regions"]),
                state=entry["state"],
                citation=entry["citation"],
                verified=entry["verified"],
                days=days,
            )
        )
    reply = data["reply"]
    return Rules(
        laws=tuple(laws),
        reply_within=timedelta(minutes=reply["within_minutes"]),
        reply_overrides_law=reply["overrides_legal_hours"],
        area_codes={code: state for state, entry in _states(codes) for code in entry["area_codes"]},
        states={state: entry["name"] for state, entry in _states(codes)},
    )


@cache
def rules() -> Rules:
    return load()


def _states(codes: dict) -> list[tuple[str, dict]]:
    return [(state, entry) for state, entry in codes.items() if not state.startswith("_")]


def _hours(pair: list[str] | None) -> Hours:
    if pair is None:
        return None
    start, end = (time.fromisoformat(t) for t in pair)
    if not start < end:
        raise ValueError(f"quiet_hours.json: {pair} does not go forward")
    return start, end


def _span(hours: tuple[time, time]) -> str:
    return f"{hours[0]:%H:%M}–{hours[1]:%H:%M}"


@dataclass(frozen=True)
class OrganizationHours:
    """The organisation's own window and days, read on the recipient's clock; `time_zone` (the
    organisation's) stands in when a number tells no zone."""

    start: time = time(8)
    end: time = time(20)
    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # ISO weekdays, Monday 1
    time_zone: str = zones.DEFAULT

    @classmethod
    def of(cls, org: Organization) -> OrganizationHours:
        return cls(org.send_from, org.send_until, days_of(org.send_days), org.time_zone)

    def hours(self, local: datetime) -> Hours:
        return (self.start, self.end) if local.isoweekday() in self.days else None

    def describe(self) -> str:
        return f"{describe_days(self.days)} {_span((self.start, self.end))}"


def days_of(text: str) -> frozenset[int]:
    """As stored, "12345", to {1, 2, 3, 4, 5}."""
    return frozenset(int(c) for c in text if c in "1234567")


def describe_days(days: frozenset[int]) -> str:
    """{1, 2, 3, 4, 5} → "Mon–Fri"; {1, 3} → "Mon, Wed"; runs of three or more joined by a dash."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0] - 1]}–{DAY_NAMES[run[-1] - 1]}")
        else:
            parts.extend(DAY_NAMES[d - 1] for d in run)
    return ", ".join(parts) or "no day"


@dataclass(frozen=True)
class Decision:
    allowed_now: bool
    # When it may go (UTC) if not now; None when it may go now, or when nothing within two weeks suits
    # every one of the number's zones.
    next_allowed_at: datetime | None
    zones: tuple[str, ...]  # the recipient's, all of which must suit
    local_now: tuple[datetime, ...]  # the recipient's clock now, in each zone
    state: str | None  # the US state whose law was applied (from the area code, or given)
    held_by: str | None  # "law", "organisation", or None when it may go now
    rule: Rule | None  # the law that holds it (its name and citation)
    words: str  # for the composer: "It is 23:10 in Texas. Sends tomorrow at 09:00 their time."
    why: str  # which rule, and whether the writer can do anything about it
    # Which rule alone, without the way round it the composer offers (a reason): what a form that has
    # no reason field says (a scheduled message's Edit, webapp.messaging.timing.edit_refusal).
    rule_words: str = ""
    zone_note: str = ""  # "several zones: America/Chicago, America/Denver"; how the zone was found
    reply: bool = False  # a reply within minutes of the person's own message: goes now
    overridden: bool = False  # the organisation's window set aside, with the writer's reason
    laws: tuple[Rule, ...] = field(default=())  # every law that applied
    place: str = ""  # where, as the composer names it: "Texas", "Poland", "Brazil (Manaus)"

    @property
    def overridable(self) -> bool:
        """Only the organisation's window can be set aside (with a reason); the law cannot."""
        return self.held_by == "organisation"


def decide(
    now: datetime,
    *,
    number: str | None,
    organization: OrganizationHours,
    country: str | None = None,
    last_inbound_at: datetime | None = None,
    zone_override: str | None = None,
    state_override: str | None = None,
    override_reason: str | None = None,
    rules_in_force: Rules | None = None,
) -> Decision:
    """May a text to `number` go at `now` (aware, any zone)? If not, when, and why.

    `country` (ISO alpha-2) and `zone_override`/`state_override` (an application's location that names
    a zone or US state) stand in for what the number says. `last_inbound_at`: when the person last wrote
    (a reply within `reply.within_minutes` goes now). `override_reason`: the writer's reason to set the
    organisation's window aside (blank is refused; the law is never set aside).
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    book = rules_in_force or rules()
    reason = _reason(override_reason)
    region, found, state, note = _place(number, country, zone_override, state_override, book)
    if not found:
        found = (organization.time_zone if zones.is_known(organization.time_zone) else zones.DEFAULT,)
        note = f"their zone is not known: read in yours ({found[0]})"
    laws = book.for_place(region, state)
    reply = last_inbound_at is not None and timedelta(0) <= now - last_inbound_at <= book.reply_within
    law_holds = laws if not (reply and book.reply_overrides_law) else []
    org = None if reply or reason else organization
    local_now = tuple(now.astimezone(ZoneInfo(z)) for z in found)
    held = _held(local_now, law_holds, org)
    # Named after the state when known (an Austin number reads "Texas", not Chicago's zone); a single
    # zone by its city; several zones of no one state by their clocks alone.
    place_name = _place_name(book, region, state, found, now)
    place = dict(
        zones=found,
        local_now=local_now,
        state=state,
        zone_note=note,
        laws=tuple(laws),
        reply=reply,
        place=place_name,
    )
    if held is None:
        return Decision(
            allowed_now=True,
            next_allowed_at=None,
            held_by=None,
            rule=None,
            words=f"It is {_clocks(local_now, place_name)}.",
            why=_why_allowed(reply, bool(reason), _held(local_now, laws, organization)),
            overridden=bool(reason) and not reply and _held(local_now, law_holds, organization) is not None,
            **place,
        )
    held_by, rule = held
    after = _next_allowed(now, found, law_holds, org)
    if rule is not None:
        rule_words = f"{rule.name} ({rule.citation}) allows texts {rule.describe()}; it cannot be set aside."
        why = rule_words
    else:
        rule_words = f"Your organisation sends {organization.describe()} their time."
        why = f"{rule_words[:-1]}; you can send now with a reason."
    return Decision(
        allowed_now=False,
        next_allowed_at=after,
        held_by=held_by,
        rule=rule,
        words=f"It is {_clocks(local_now, place_name)}. {_sends_at(after, local_now)}",
        why=why,
        rule_words=rule_words,
        **place,
    )


def _reason(text: str | None) -> str:
    if text is None:
        return ""
    reason = text.strip()
    if not reason:
        raise QuietHoursRefused("Say why this cannot wait for their morning.", "override_reason")
    if len(reason) > REASON_LENGTH:
        raise QuietHoursRefused(
            f"The reason is {len(reason)} characters long; at most {REASON_LENGTH} fit.", "override_reason"
        )
    return reason


def _place(
    number: str | None, country: str | None, zone: str | None, state: str | None, book: Rules
) -> tuple[str | None, tuple[str, ...], str | None, str]:
    """The number's country, its zones, its US state, and a note on how the zones were found."""
    region = country.upper() if country else None
    national = ""
    try:
        parsed = phonenumbers.parse(number or "")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_valid_number(parsed):
        region = region or phonenumbers.region_code_for_number(parsed)
        national = str(parsed.national_number)
    if state and state.upper() in book.area_codes.values():
        state, region = state.upper(), region or "US"
    else:
        state = book.area_codes.get(national[:3]) if region == "US" else None
    if zones.is_known(zone) and zone != zones.DEFAULT:
        return region, (zone,), state, "given by the application's location"
    found = zones.all_for_number(number, region) if national else zones.in_country(region)
    note = f"several zones: {', '.join(found)}" if len(found) > 1 else ""
    return region, found, state, note


def _place_name(
    book: Rules, region: str | None, state: str | None, found: tuple[str, ...], now: datetime
) -> str:
    """Named after the US state when known (an Austin number reads "Texas", not Chicago's zone), else
    the country, with the zone's city where the country's clocks differ ("Brazil (Manaus)"); several
    zones of no one state or country by their clocks alone ("")."""
    if state and state in book.states:
        return book.states[state]
    country = _with_article(country_names.NAMES.get(region or "", ""))
    if len(found) != 1:
        return country if country and region != "US" else ""
    if not country:
        return zones.city(found[0])
    clocks = {now.astimezone(ZoneInfo(z)).utcoffset() for z in zones.in_country(region)}
    return country if len(clocks) <= 1 else f"{country} ({zones.city(found[0])})"


# Countries named with "the" in running text ("It is 08:13 in the Netherlands").
_THE = frozenset({"Bahamas", "Gambia", "Maldives", "Netherlands", "Philippines", "Comoros", "Vatican"})


def _with_article(country: str) -> str:
    if country in _THE or country.startswith(("United ", "Central ", "Czech ", "Dominican ")):
        return f"the {country}"
    if country.endswith(("Islands", "Antilles", "Territory")):
        return f"the {country}"
    return country


def _held(
    local_now: tuple[datetime, ...], laws: list[Rule], org: OrganizationHours | None
) -> tuple[str, Rule | None] | None:
    """What holds a text at that moment (read in each of the zones), the law before the organisation;
    None when nothing does."""
    for local in local_now:
        for rule in laws:
            if not _within(local, rule.hours(local)):
                return "law", rule
    for local in local_now:
        if org is not None and not _within(local, org.hours(local)):
            return "organisation", None
    return None


def _within(local: datetime, hours: Hours) -> bool:
    return hours is not None and hours[0] <= local.time() < hours[1]


def _next_allowed(
    now: datetime, found: tuple[str, ...], laws: list[Rule], org: OrganizationHours | None
) -> datetime | None:
    """The first moment after `now` that suits every zone. Allowed time is a union of windows whose
    intersection across zones and rules begins where one of them begins, so the candidates are every
    window's start, in every zone, on every day ahead; each is converted from that day's wall clock, so a
    change to or from daylight time between now and then is taken into account."""
    starts = {h[0] for rule in laws for h in rule.days if h} | ({org.start} if org else set())
    candidates = set()
    for name in found:
        tz = ZoneInfo(name)
        today = now.astimezone(tz).date()
        for offset in range(HORIZON_DAYS):
            day = today + timedelta(days=offset)
            for start in starts:
                moment = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
                if moment > now:
                    candidates.add(moment)
    for moment in sorted(candidates):
        if _held(tuple(moment.astimezone(ZoneInfo(z)) for z in found), laws, org) is None:
            return moment
    return None


def _clocks(local_now: tuple[datetime, ...], place: str) -> str:
    """Now, on their clock: "23:10 in Texas"; several zones by their clocks, "09:00 MST and 10:00 CST
    in South Dakota"."""
    if len(local_now) == 1:
        return f"{local_now[0]:%H:%M} in {place}"
    return f"{_listed(local_now, local_now[0])} in {place}" if place else _listed(local_now, local_now[0])


def _sends_at(moment: datetime | None, local_now: tuple[datetime, ...]) -> str:
    if moment is None:
        return "No time in the next two weeks suits every one of their zones."
    if len(local_now) == 1:
        return f"Sends {_when(moment, local_now[0])} their time."
    return f"Sends {_when(moment, local_now[0], clock=False)}{_listed(local_now, moment)}."


def _listed(local_now: tuple[datetime, ...], moment: datetime) -> str:
    """The moment on each zone's clock, each clock once: "09:00 MST and 10:00 CST"."""
    clocks = list(dict.fromkeys(f"{moment.astimezone(t.tzinfo):%H:%M %Z}" for t in local_now))
    shown = clocks[:4] + ([f"{len(clocks) - 4} more"] if len(clocks) > 4 else [])
    return ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else shown[0]


def _when(moment: datetime, local_now: datetime, clock: bool = True) -> str:
    """When, on the recipient's (first) clock: "at 09:00", "tomorrow at 09:00", "Mon 14 Dec at 09:00"."""
    local = moment.astimezone(local_now.tzinfo)
    days = (local.date() - local_now.date()).days
    if days == 0:
        day = ""
    elif days == 1:
        day = "tomorrow "
    else:
        day = f"{DAY_NAMES[local.weekday()]} {local.day} {local:%b} "
    return f"{day}at {local:%H:%M}" if clock else f"{day}at "


def _why_allowed(reply: bool, overridden: bool, would_hold: tuple[str, Rule | None] | None) -> str:
    if would_hold is None:
        return ""
    if reply:
        return "A reply to their message of the last minutes: it goes now."
    if overridden:
        return "Outside your organisation's hours: it goes now, with your reason."
    return ""
