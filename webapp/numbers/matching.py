"""How a number on offer fits what an administrator asked for: the search pattern their preferences make,
and, for each number found, whether it matches and how, in words for staff ("starts with 030 — Berlin").

Numbers APIs search by the number's digits as in E.164 without the + (so starting with the calling
code: 4930… for Berlin). People write an area code as they dial it at home ("030"; "212" in New York),
so it becomes the calling code and the area code without the national prefix (the 0, or the US 1).
A region or city in words cannot be searched for: it says what the area code means, and staff read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from webapp.providers.base import AvailableNumber

AREA_CODE_DIGITS = 6
PREFIX_DIGITS = 15


class NotAPattern(ValueError):
    """A preference that cannot become a search pattern; the message says why, for the field."""


def digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def international(country: str, text: str | None) -> str:
    """The E.164 digits (no +) that numbers of the country written so start with: "+49 30 12" and, in
    Germany, "030 12" both give "493012". "" for nothing typed. Raises NotAPattern."""
    raw = (text or "").strip()
    if not raw:
        return ""
    if re.search(r"[^\d\s()+./-]", raw):
        raise NotAPattern(f"{raw} is not digits.")
    calling_code = str(phonenumbers.country_code_for_region(country))
    typed = digits(raw)
    if not typed:
        raise NotAPattern(f"{raw} has no digits.")
    if raw.startswith("+") or raw.startswith("00"):
        typed = typed[2:] if raw.startswith("00") else typed
        if not typed.startswith(calling_code):
            raise NotAPattern(f"{raw} is not a number of {country} (+{calling_code}).")
        return typed
    national_prefix = phonenumbers.PhoneMetadata.metadata_for_region(country).national_prefix
    if national_prefix and typed.startswith(national_prefix):
        typed = typed[len(national_prefix) :]
    return calling_code + typed


def search_pattern(country: str, area_code: str | None, prefix: str | None) -> str | None:
    """What the provider's search is asked for: the prefix if one is given (it is the more precise),
    else the area code; None when neither is."""
    try:
        return international(country, prefix) or international(country, area_code) or None
    except NotAPattern:
        return None


@dataclass(frozen=True)
class Fit:
    number: AvailableNumber
    matches: bool  # every preference that can be told from the digits holds
    how: str  # in words: "starts with 030 — Berlin", "does not start with 030"


def fit(
    number: AvailableNumber,
    country: str,
    area_code: str | None,
    locality: str | None,
    prefix: str | None,
) -> Fit:
    """How this number fits the preferences (those it cannot be told from, a city alone, always fit)."""
    number_digits = number.e164.lstrip("+")
    held: list[str] = []
    missed: list[str] = []
    place = f" — {locality}" if locality else ""
    for typed, label in ((prefix, ""), (area_code, place)):
        if not typed:
            continue
        try:
            wanted = international(country, typed)
        except NotAPattern:
            continue
        if number_digits.startswith(wanted):
            held.append(f"starts with {typed}{label}")
        else:
            missed.append(f"does not start with {typed}")
    if missed:
        return Fit(number, False, "; ".join(missed))
    if held:
        # A prefix that holds implies the area code it begins with: say the first, most precise one.
        return Fit(number, True, held[0] if not place or place in held[0] else held[0] + place)
    if locality:
        return Fit(number, True, f"no area code asked for; {locality} cannot be told from the number")
    return Fit(number, True, "no preference")


def ranked(
    numbers: list[AvailableNumber],
    country: str,
    area_code: str | None,
    locality: str | None,
    prefix: str | None,
) -> list[Fit]:
    """The numbers, those that match first, each in the provider's order."""
    fits = [fit(n, country, area_code, locality, prefix) for n in numbers]
    return sorted(fits, key=lambda f: not f.matches)
