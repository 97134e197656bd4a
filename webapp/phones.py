"""Phone numbers: the one place that parses, normalises and describes them (libphonenumber).

Country names come from webapp.country_names, not phonenumbers' geocoder, which would load every
prefix's place names in every language (~100 MB a process) for them."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from webapp import country_names


class InvalidPhoneNumber(ValueError):
    """Not a valid phone number; the message says what to type instead."""


# Every webhook names two numbers, mostly the same few again and again (ours, and a conversation's
# candidate): libphonenumber's parse and validity check of each cost 25–45 µs, twice per inbound webhook
# (the web reads it, the worker applies it). A valid number's E.164 is cached (an invalid one raises
# each time: nothing is kept of it).
@lru_cache(maxsize=4096)
def normalise(raw: str, default_region: str | None = None) -> str:
    """Return the number in E.164 (with the +), or raise InvalidPhoneNumber."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("Enter a phone number.")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber("Enter the number in international format, e.g. +46 70 123 45 67.") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"{text} is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def country_of(e164: str) -> str | None:
    """ISO 3166 alpha-2 of a number (NANP numbers are told apart by area code)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164)) or None
    except phonenumbers.NumberParseException:
        return None


# A thread shows the same two numbers on every message: formatting is cached (numbers are immutable).
@lru_cache(maxsize=4096)
def display(e164: str) -> str:
    """The number as people write it internationally: +49 151 12345678."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def country_name(e164: str) -> str:
    """The name of the number's country in English ("Germany"), or "" when it has none."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ""
    # The region libphonenumber takes for the number's own: for a calling code shared by several regions,
    # the one where the number is valid (AU, CC and CX share +61 mobiles: the main country's).
    region = phonenumbers.region_code_for_number(number)
    return country_names.NAMES.get(region, "") if region else ""


def region_name(region: str) -> str:
    """The country's name for an ISO 3166 alpha-2 code ("FR" → "France"), or the code if unknown."""
    return country_names.NAMES.get(region) or region
