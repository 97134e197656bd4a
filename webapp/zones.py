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


def start_of_day(day: date, name: str | None) -> datetime:
    """Midnight of that day in the zone, in UTC: where a date filter begins."""
    return datetime.combine(day, time.min, tzinfo=zone(name)).astimezone(UTC)


def local(value: datetime, name: str | None) -> datetime:
    return value.astimezone(zone(name))
