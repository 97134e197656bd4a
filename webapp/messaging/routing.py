"""Which of our numbers a message goes out from: own country, else US, else any."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol, TypeVar

from webapp import phones


class Number(Protocol):
    country: str
    e164: str


N = TypeVar("N", bound=Number)


def choose_number(numbers: Iterable[N], recipient_e164: str, avoid: Collection[str] = ()) -> N | None:
    """The number to send from: one in the recipient's country, else a US one, else any other.

    Within a tier the first in the given order wins, so callers that pass numbers least recently used
    first spread new conversations over the numbers of one country. Numbers in `avoid` (those another
    conversation already uses with this recipient) come last within their tier: when the tier has
    another, the recipient's replies to each conversation arrive on a number of its own.
    """
    pool: Sequence[N] = list(numbers)
    if not pool:
        return None
    country = phones.country_of(recipient_e164)
    for wanted in (country, "US"):
        tier = [n for n in pool if wanted and n.country == wanted]
        if tier:
            return next((n for n in tier if n.e164 not in avoid), tier[0])
    return next((n for n in pool if n.e164 not in avoid), pool[0])
