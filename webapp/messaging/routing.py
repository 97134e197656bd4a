"""Which of our numbers a message goes out from: own country, else US, else any; within that, the
healthiest (webapp.numbers.health)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from webapp import phones


class Number(Protocol):
    country: str
    e164: str


N = TypeVar("N", bound=Number)
# The share of its daily guidance each number of a tier has used today (None: it takes no new
# conversations: paused, or at its guidance already). Asked only for the tier chosen.
Load = Callable[[Sequence[N]], Mapping[str, float | None]]


class AllPaused(Exception):
    """The recipient's tier has numbers, and none of them takes new conversations now."""

    def __init__(self, country: str) -> None:
        super().__init__(country)
        self.country = country


def tier_for(pool: Sequence[N], recipient_e164: str) -> Sequence[N]:
    """The numbers a message to this recipient may go from: those of their country, else the US ones,
    else all."""
    country = phones.country_of(recipient_e164)
    for wanted in (country, "US"):
        found = [n for n in pool if wanted and n.country == wanted]
        if found:
            return found
    return pool


def choose_number(
    numbers: Iterable[N],
    recipient_e164: str,
    avoid: Collection[str] = (),
    load: Load | None = None,
    first: Callable[[N], bool] = lambda n: True,
) -> N | None:
    """The number to send from: one in the recipient's country, else a US one, else any other.

    Within a tier, with `load`: numbers that take no new conversations are left out (none left:
    AllPaused, rather than a number of another country the recipient does not expect), and the one
    furthest below its guidance wins, those `first` holds for before the others (a sub-organisation's
    own numbers before those its parents lend it). Ties, and without `load` all, go to the first in the
    given order, so callers that pass numbers least recently used first spread new conversations over the
    numbers of one country. Numbers in `avoid` (those another conversation already uses with this
    recipient) come last within their tier: when the tier has another, the recipient's replies to each
    conversation arrive on a number of its own.
    """
    pool: Sequence[N] = list(numbers)
    if not pool:
        return None
    tier = tier_for(pool, recipient_e164)
    if load is not None:
        shares = load(tier)
        open_ = [n for n in tier if shares.get(n.e164) is not None]
        if not open_:
            raise AllPaused(tier[0].country)
        rank = {id(n): i for i, n in enumerate(open_)}
        tier = sorted(open_, key=lambda n: (not first(n), shares[n.e164] or 0.0, rank[id(n)]))
    return next((n for n in tier if n.e164 not in avoid), tier[0])
