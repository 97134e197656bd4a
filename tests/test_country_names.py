"""Countries' names come from webapp.country_names, a copy of the English column of the table
phonenumbers' geocoder reads: the same names, without the geocoder's ~100 MB of place names per process
(tests/test_startup.py checks that serving pages does not load it). Here: the copy still equals the
geocoder, for every region and for numbers of every kind in every region."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType, geocoder
from phonenumbers.geodata.locale import LOCALE_DATA

from webapp import country_names, phones

REGIONS = sorted(set(LOCALE_DATA) | phonenumbers.SUPPORTED_REGIONS)


def geocoder_country_name(e164: str) -> str:
    """What phones.country_name answered when it asked the geocoder (before issue #19)."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ""
    name = geocoder.country_name_for_number(number, "en")
    region = phonenumbers.region_code_for_number(number)
    if not name and region:
        name = geocoder._region_display_name(region, "en")
    return name or ""


def example_numbers() -> list[str]:
    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                numbers.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            numbers.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return numbers


def test_the_table_is_the_geocoders_english_names() -> None:
    expected = {r: geocoder._region_display_name(r, "en") for r in REGIONS}
    assert {r: name for r, name in expected.items() if name} == country_names.NAMES
    assert {"DE": "Germany", "SE": "Sweden", "US": "United States", "GB": "United Kingdom"}.items() <= (
        country_names.NAMES.items()
    )


def test_a_numbers_country_is_named_as_the_geocoder_named_it() -> None:
    numbers = example_numbers()
    assert len(numbers) > 500
    differ = {n: (phones.country_name(n), geocoder_country_name(n)) for n in numbers}
    assert {n: d for n, d in differ.items() if d[0] != d[1]} == {}


@pytest.mark.parametrize(
    ("e164", "name"),
    [
        ("+46701234567", "Sweden"),
        ("+61412345641", "Australia"),  # +61 mobiles are valid in AU, CC and CX: the main country's
        ("+16135550123", "Canada"),  # NANP: told apart by area code
        ("+80012345678", ""),  # a non-geographic number (international freephone)
        ("not a number", ""),
        ("+999", ""),
    ],
)
def test_country_name(e164: str, name: str) -> None:
    assert phones.country_name(e164) == name == geocoder_country_name(e164)


def test_region_name() -> None:
    assert phones.region_name("FR") == "France"
    assert phones.region_name("XK") == "XK"  # phonenumbers knows Kosovo's numbers but has no name for it
    assert phones.region_name("ZZ") == "ZZ"
