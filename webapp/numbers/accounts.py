"""The numbers the providers' accounts hold that no pool has yet: what staff may pick to add to a pool,
each with the provider it belongs to, and in words why an account could not be listed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.models import SendingNumber
from webapp.providers.base import NumbersUnavailable, OwnedNumber, Provider


@dataclass(frozen=True)
class Offer:
    provider: str  # the registry's name for the provider whose account holds it
    number: OwnedNumber


def unpooled(session: Session, providers: Mapping[str, Provider]) -> tuple[list[Offer], str | None]:
    """Every account's numbers not in any pool, the accounts in the order given; and a note for staff
    when an account cannot be listed, or all its numbers are in pools already."""
    taken = set(session.scalars(sa.select(SendingNumber.e164)))
    offers: list[Offer] = []
    notes: list[str] = []
    for name, provider in providers.items():
        try:
            owned = provider.numbers.owned()
        except NumbersUnavailable as error:
            if error.set_up:
                notes.append(f"{error} Type the number instead.")
            else:
                notes.append(f"{error}, so the account's numbers cannot be listed: type the number instead.")
            continue
        free = [Offer(name, n) for n in owned if n.e164 not in taken]
        if owned and not free:
            notes.append(f"Every number on the {provider.label} account is in a pool already.")
        offers += free
    return offers, " ".join(notes) or None
