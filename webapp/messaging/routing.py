"""Which of our numbers a message goes out from (DESIGN §1): own country, else US, else any."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from webapp import phones


class Number(Protocol):
    country: str
    e164: str


N = TypeVar("N", bound=Number)


def choose_number(numbers: Iterable[N], recipient_e164: str) -> N | None:
    """The number to send from: one in the recipient's country, else a US one, else any other.

    Within a tier the first in the given order wins, so callers that pass numbers least recently used
    first spread new conversations over the numbers of one country.
    """
    pool: Sequence[N] = list(numbers)
    if not pool:
        return None
    country = phones.country_of(recipient_e164)
    for wanted in (country, "US"):
        for number in pool:
            if wanted and number.country == wanted:
                return number
    return pool[0]
