"""How many SMS a day one sending number should stay under: its country's guidance (data, with its
source: guidance.json), lowered by the customer's own cap when it has one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PATH = Path(__file__).with_name("guidance.json")


@dataclass(frozen=True)
class Guidance:
    country: str  # "" for the default
    daily: int
    kind: str
    source: str  # a URL; "" for a figure of Relay's own
    note: str


@cache
def table() -> dict[str, Guidance]:
    data = json.loads(PATH.read_text(encoding="utf-8"))
    found = {code: Guidance(code, **entry) for code, entry in data["countries"].items()}
    found[""] = Guidance("", **data["default"])
    return found


def for_country(country: str) -> Guidance:
    return table().get(country, table()[""])


def daily(country: str, customer_cap: int | None) -> int:
    """The SMS a day a number of this country may send: the country's figure, or the customer's own cap
    where it is lower."""
    figure = for_country(country).daily
    return min(figure, customer_cap) if customer_cap else figure
