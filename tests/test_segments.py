"""The SMS segment counter against Twilio's calculator and the GSM 03.38 rules (docs/architecture.md,
"SMS parts").

The vectors in ``tests/data/segment_vectors.json`` come from ``tests/data/make_segment_vectors.mjs``; a
vector with ``expected_difference`` is one where we follow GSM 03.38 and our contract instead of the
calculator, and the test checks both that we differ and what we say instead. No database, no fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from webapp.messaging.segments import GSM_BASIC, GSM_EXTENSION, SegmentCount, count

VECTORS_FILE = Path(__file__).parent / "data" / "segment_vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
CHECKED = ("encoding", "segments", "units", "characters", "ucs2_characters")


def _observed(result: SegmentCount) -> dict[str, Any]:
    return {
        "encoding": result.encoding,
        "segments": result.segments,
        "units": result.units,
        "characters": result.characters,
        "ucs2_characters": list(result.ucs2_characters),
    }


def test_vectors_file_names_the_calculator() -> None:
    assert VECTORS["calculator"] == "sms-segments-calculator"
    assert VECTORS["calculator_version"]
    assert len(VECTORS["vectors"]) > 400
    differences = [v["id"] for v in VECTORS["vectors"] if "expected_difference" in v]
    assert len(differences) <= 3, differences  # few, each with its reason in the JSON


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=[v["id"] for v in VECTORS["vectors"]])
def test_matches_twilio_calculator(vector: dict[str, Any]) -> None:
    result = count(vector["text"])
    expected = {field: vector[field] for field in CHECKED}
    difference = vector.get("expected_difference")
    if difference:
        assert difference["reason"]
        for field, ours in difference["ours"].items():
            assert expected[field] != ours, (
                f"{field}: the calculator now agrees; drop the expected difference"
            )
            expected[field] = ours
    assert _observed(result) == expected
    per_segment = {"GSM-7": (160, 153), "UCS-2": (70, 67)}[result.encoding][result.segments > 1]
    assert result.per_segment == per_segment
    if not difference:
        assert result.segments == len(vector["segment_units"])
        assert sum(vector["segment_units"]) == result.units


def test_tables_are_gsm_03_38() -> None:
    assert len(GSM_BASIC) == 127  # 128 codes, less the escape
    assert frozenset("^{}\\[~]|€\f") == GSM_EXTENSION
    assert {"\n", "\r", "Ç", "Δ", "Ξ", "ß", "à", "ò"} <= GSM_BASIC
    assert not {"ç", "`", "’", "\t", "á", "ê", "\x1b"} & (GSM_BASIC | GSM_EXTENSION)


def test_empty_text_is_zero_parts() -> None:
    assert count("") == SegmentCount("GSM-7", 0, 0, 160, 0, ())


@pytest.mark.parametrize("char", sorted(GSM_EXTENSION), ids=lambda c: f"U+{ord(c):04X}")
def test_extension_char_costs_two_septets(char: str) -> None:
    result = count("ab" + char)
    assert (result.encoding, result.units, result.characters) == ("GSM-7", 4, 3)
    assert count(char * 80).segments == 1  # 160 septets
    assert count(char * 81).segments == 2


def test_gsm_basic_accents_stay_gsm() -> None:
    result = count("Åsa Ørsted, Ça va? Straße, Müller, Señor, ΔΦΓΛΩΠΨΣΘΞ")
    assert result.encoding == "GSM-7"
    assert result.units == result.characters


def test_per_segment_single_then_concatenated() -> None:
    assert (count("a" * 160).segments, count("a" * 160).per_segment) == (1, 160)
    assert (count("a" * 161).segments, count("a" * 161).per_segment) == (2, 153)
    assert (count("a" * 306).segments, count("a" * 307).segments) == (2, 3)
    assert (count("ç" * 70).segments, count("ç" * 70).per_segment) == (1, 70)
    assert (count("ç" * 71).segments, count("ç" * 71).per_segment) == (2, 67)
    assert (count("ç" * 134).segments, count("ç" * 135).segments) == (2, 3)


def test_escape_pair_is_never_split() -> None:
    # 152 septets, then € (ESC + e) would occupy septets 153–154: it moves whole to part 2.
    text = "a" * 152 + "€" + "a" * 152
    result = count(text)
    assert result.units == 306  # 306 / 153 = 2 parts by arithmetic ...
    assert result.segments == 3  # ... but 152 + 153 + 1 when the pair stays whole
    assert count("a" * 151 + "€" + "a" * 153).segments == 2  # pair ends exactly on the boundary


def test_surrogate_pair_is_never_split() -> None:
    text = "ç" + "a" * 65 + "😀" + "a" * 66  # 😀 would occupy units 67–68
    result = count(text)
    assert (result.encoding, result.units, result.characters) == ("UCS-2", 134, 133)
    assert result.segments == 3  # 66 + 67 + 1
    assert count("ç" + "a" * 64 + "😀" + "a" * 67).segments == 2  # pair ends exactly on the boundary


def test_grapheme_clusters_split_between_code_points() -> None:
    # Unlike Twilio's calculator we keep only surrogate pairs whole, not whole ZWJ sequences.
    assert count("ç" + "a" * 62 + "👨\u200d👩\u200d👧" + "a" * 61).segments == 2


def test_non_bmp_is_two_units_bmp_emoji_one() -> None:
    assert count("😀").units == 2
    assert count("✅").units == 1
    assert count("😀" * 35).segments == 1
    assert count("😀" * 36).segments == 2


def test_ucs2_characters_lists_offenders_once_in_order() -> None:
    result = count("Hej ç 😀 ok")
    assert result.encoding == "UCS-2"
    assert result.ucs2_characters == ("ç", "😀")
    assert count("’a’b`ç`").ucs2_characters == ("’", "`", "ç")
    assert count("Hej € { ok").ucs2_characters == ()


def test_extension_chars_cost_one_unit_in_ucs2() -> None:
    result = count("ç€{}")
    assert (result.encoding, result.units) == ("UCS-2", 4)


def test_lone_surrogate_is_one_unit() -> None:
    result = count("a\ud83d")
    assert (result.encoding, result.units, result.segments) == ("UCS-2", 2, 1)


def test_line_breaks_are_gsm() -> None:
    for text in ("a\nb", "a\rb", "a\r\nb"):
        assert count(text).encoding == "GSM-7"
    assert count("a\r\nb").units == 4


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=[v["id"] for v in VECTORS["vectors"]])
def test_doubled_names_every_character_that_counts_two(vector: dict[str, Any]) -> None:
    """The characters named as counting 2 are exactly the difference between units and characters."""
    text = vector["text"]
    result = count(text)
    assert result.units == result.characters + sum(text.count(c) for c in result.doubled)
    assert len(set(result.doubled)) == len(result.doubled)


def test_doubled_depends_on_the_encoding() -> None:
    assert count("Price 10 € [ok] €").doubled == ("€", "[", "]")
    assert count("ç € 😀 [").doubled == ("😀",)  # in UCS-2 € and [ are one unit each
    assert count("plain text").doubled == () and count("").doubled == ()
