"""The SMS counter's words (webapp.messaging.sms_words): the numbers shown are the units that decide the
segments, against what one SMS holds, and characters that count double are named. No database."""

from __future__ import annotations

import re

from webapp.messaging.segments import count
from webapp.messaging.sms_words import describe


def words(text: str) -> tuple[str, str, str | None, dict[str, str]]:
    w = describe(count(text))
    notes = {what: re.sub(r"<[^>]+>", "", str(note)) for what, note in w.notes}
    return w.units, w.segments, w.per_segment, notes


def test_an_emoji_over_seventy_is_counted_in_units_and_named() -> None:
    # 69 letters and a thumbs-up: 70 characters, but 71 UTF-16 units, so two segments.
    units, segments, per, notes = words("a" * 69 + "👍")
    assert (units, segments, per) == ("71 of 70 UCS-2 units", "2 segments", "up to 67 units each")
    assert notes["doubled"] == "👍 counts 2 units."
    assert notes["ucs2"] == "UCS-2 because of 👍: one SMS holds 70 units instead of 160."


def test_a_euro_over_one_hundred_and_sixty_is_named() -> None:
    units, segments, per, notes = words("a" * 159 + "€")
    assert (units, segments, per) == ("161 of 160 GSM-7 units", "2 segments", "up to 153 units each")
    assert notes == {"doubled": "€ counts 2 units."}


def test_one_segment_says_how_much_room_is_left() -> None:
    assert words("Hello Lena") == ("10 of 160 GSM-7 units", "1 segment", None, {})
    assert words("a" * 160)[:3] == ("160 of 160 GSM-7 units", "1 segment", None)
    assert words("")[:2] == ("0 of 160 GSM-7 units", "0 segments")


def test_several_doubles_are_named_together() -> None:
    _, _, _, notes = words("Price: 10 € [net] ^")
    assert notes["doubled"] == "€, [, ] and ^ count 2 units each."
    _, _, _, notes = words("ç 😀 ok 🎉 €")
    assert notes["doubled"] == "😀 and 🎉 count 2 units each."  # € is one unit in UCS-2
    assert notes["ucs2"].startswith("UCS-2 because of ç, 😀 and 🎉:")


def test_invisible_characters_are_named_by_code_point() -> None:
    _, _, _, notes = words("Hi\u00a0there\tfriend")
    assert notes["ucs2"].startswith("UCS-2 because of U+00A0 (no-break space) and U+0009 (tab):")
    assert words("page\fbreak")[3]["doubled"] == "U+000C (form feed) counts 2 units."


def test_a_pair_moved_to_the_next_segment_is_explained() -> None:
    # 152 septets, then € would straddle the boundary: 306 units in 3 segments, not 2.
    units, segments, _, notes = words("a" * 152 + "€" + "a" * 152)
    assert (units, segments) == ("306 of 160 GSM-7 units", "3 segments")
    assert "split" in notes
    assert "split" not in words("a" * 151 + "€" + "a" * 153)[3]
