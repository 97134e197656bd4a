"""Time zones: the IANA names an organisation may choose, and times shown in one.

Times are stored in UTC (webapp.models.base.UTCDateTime); pages show them in the organisation's zone,
named after it ("14:05 CET"), so that nobody has to convert. The names come from the tz database that
`tzdata` installs, so the list is the same on every machine.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DEFAULT = "UTC"
# Old aliases and POSIX-style names that the tz database keeps for compatibility: nobody picks these.
_LEGACY_PREFIXES = ("Etc/", "SystemV/", "US/", "Canada/", "Brazil/", "Mexico/", "Chile/", "posix/", "right/")


@cache
def names() -> tuple[str, ...]:
    """The zones offered: Continent/City names, and UTC."""
    found = {
        n
        for n in available_timezones()
        if "/" in n and not n.startswith(_LEGACY_PREFIXES) and n.split("/")[0][0].isupper()
    }
    return (DEFAULT, *sorted(found))


def is_known(name: object) -> bool:
    return isinstance(name, str) and name in names()


def zone(name: str | None) -> tzinfo:
    """The zone of that name; UTC for an empty or unknown one (a page never fails on a bad setting)."""
    if not name or name == DEFAULT:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def format_time(value: datetime | None, name: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC time as it reads in the zone, followed by the zone's abbreviation ("CET", "BST")."""
    if value is None:
        return ""
    local = value.astimezone(zone(name))
    return f"{local.strftime(fmt)} {local.tzname() or name}"


def city(name: str) -> str:
    """The place a zone is named after: "America/New_York" → "New York"."""
    return name.rsplit("/", 1)[-1].replace("_", " ")


def name_of_reader(user: object) -> str:
    """The zone a signed-in person reads times in: their organisation's (staff, who have none: UTC)."""
    org = getattr(user, "organization", None)
    return org.time_zone if org is not None else DEFAULT


def of_reader(user: object) -> tzinfo:
    return zone(name_of_reader(user))


def start_of_day(day: date, name: str | None) -> datetime:
    """Midnight of that day in the zone, in UTC: where a date filter begins."""
    return datetime.combine(day, time.min, tzinfo=zone(name)).astimezone(UTC)


def local(value: datetime, name: str | None) -> datetime:
    return value.astimezone(zone(name))


@cache
def _by_country() -> dict[str, tuple[str, ...]]:
    """ISO country → its zones, from the tz database's zone.tab (shipped by `tzdata`)."""
    from importlib import resources

    table: dict[str, list[str]] = {}
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            country, _, name, *_ = line.split("\t")
            table.setdefault(country, []).append(name)
    return {country: tuple(found) for country, found in table.items()}


def in_country(region: str | None) -> tuple[str, ...]:
    """The zones of a country (ISO 3166 alpha-2) that pages offer, from zone.tab; () for an unknown one."""
    return tuple(z for z in _by_country().get(region or "", ()) if is_known(z))


def for_number(e164: str | None) -> str | None:
    """The time zone of a phone number's place when that is one zone (a German mobile: Europe/Berlin; a
    New Jersey number: America/New_York); None when the number does not say (a US mobile-only prefix,
    a Spanish mobile: mainland or Canaries) or is unknown."""
    found = all_for_number(e164)
    return found[0] if len(found) == 1 else None


def all_for_number(e164: str | None, region: str | None = None) -> tuple[str, ...]:
    """Every zone a number's place may be in, within its own country (or `region`, when given): one for
    most; several where its prefix spans zones (a South Dakota number: Denver's and North Dakota's);
    all of the country's where the prefix says nothing (a Spanish mobile). () for an invalid number."""
    if not e164:
        return ()
    import phonenumbers
    from phonenumbers import timezone  # its prefix table is imported by the first call only

    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ()
    own = in_country(region or phonenumbers.region_code_for_number(number))
    if len(own) <= 1:  # a country of one zone: its numbers need no more thought
        return own
    # Several: libphonenumber narrows by prefix (a New Jersey area code: America/New_York), kept to the
    # number's own country (its data puts some Irish mobiles in London).
    return tuple(z for z in timezone.time_zones_for_number(number) if z in own) or own
