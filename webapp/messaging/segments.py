"""How many SMS parts a text is sent in, by GSM 03.38 (docs/architecture.md, "SMS parts").

The composer's live counter calls :func:`count` on every keystroke and the dispatch path on every
message, so the work is done by C-level string operations (a regular expression for the alphabet check,
``str.translate`` / ``str.encode`` for the unit count) and the part packing steps once per *part*, not
once per character.

Test vectors: ``tests/data/segment_vectors.json``, computed by Twilio's ``sms-segments-calculator``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE = 160  # 140 octets = 1120 bits = 160 septets
GSM7_MULTI = 153  # the 6-octet concatenation header leaves 1072 bits = 153 septets
UCS2_SINGLE = 70  # 140 octets = 70 UTF-16 code units
UCS2_MULTI = 67  # (140 - 6) octets = 67 code units

# GSM 03.38 basic table, one septet each (127 characters: 0x1B is the escape, not a character).
GSM_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: sent as escape (0x1B) + code, so two septets each.
GSM_EXTENSION: frozenset[str] = frozenset("\f^{}\\[]~|€")
GSM_ALL: frozenset[str] = GSM_BASIC | GSM_EXTENSION

# One regex search finds the first character outside both tables; it runs in C, unlike a Python loop.
_NOT_GSM = re.compile("[^" + "".join(re.escape(c) for c in sorted(GSM_ALL)) + "]")
# Each extension character becomes ESC + itself, so the translated string has one char per septet and
# a part that would end on an ESC would split an escape pair.
_ESC = "\x1b"
_EXPAND_ESCAPES = str.maketrans({c: _ESC + c for c in GSM_EXTENSION})


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """The cost of one text as an SMS: its encoding, its size and the number of parts it is sent in."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7; extension chars count 2) or UTF-16 code units (UCS-2)
    segments: int  # parts the message is sent in (0 for the empty text)
    per_segment: int  # capacity of a part for this message: 160/153 (GSM-7) or 70/67 (UCS-2)
    characters: int  # user-perceived length: len(text) in code points
    ucs2_characters: tuple[str, ...]  # distinct characters that forced UCS-2, first appearance first
    # Distinct characters that take two units in this encoding, first appearance first: the extension
    # table's in GSM-7 (an escape and the character), those outside the BMP in UCS-2 (a surrogate pair).
    doubled: tuple[str, ...] = ()


_EMPTY = SegmentCount(GSM7, 0, 0, GSM7_SINGLE, 0, ())


def count(text: str) -> SegmentCount:
    """Count the encoding, units and parts of ``text`` as the carriers send it.

    Parts are packed greedily, whole characters only: an escape pair (GSM-7) or a surrogate pair
    (UCS-2) that would straddle a part boundary moves to the next part, so a message can need one part
    more than ``units / per_segment`` suggests.
    """
    characters = len(text)
    if not characters:
        return _EMPTY
    if _NOT_GSM.search(text) is None:
        if GSM_EXTENSION.isdisjoint(text):
            # No escape pairs: every septet is a character and every boundary is safe.
            if characters <= GSM7_SINGLE:
                return SegmentCount(GSM7, characters, 1, GSM7_SINGLE, characters, ())
            return SegmentCount(GSM7, characters, -(-characters // GSM7_MULTI), GSM7_MULTI, characters, ())
        septets = text.translate(_EXPAND_ESCAPES)
        units = len(septets)
        doubled = tuple(c for c in dict.fromkeys(text) if c in GSM_EXTENSION)
        if units <= GSM7_SINGLE:
            return SegmentCount(GSM7, units, 1, GSM7_SINGLE, characters, (), doubled)
        return SegmentCount(GSM7, units, _gsm7_parts(septets), GSM7_MULTI, characters, (), doubled)

    ucs2_characters = tuple(c for c in dict.fromkeys(text) if c not in GSM_ALL)
    # surrogatepass: a lone surrogate (it can arrive from a browser) is one code unit, not an error.
    utf16 = text.encode("utf-16-le", "surrogatepass")
    units = len(utf16) >> 1
    # Without characters outside the BMP every code unit is a character.
    doubled = () if units == characters else tuple(c for c in dict.fromkeys(text) if ord(c) > 0xFFFF)
    if units <= UCS2_SINGLE:
        segments = 1
        per_segment = UCS2_SINGLE
    else:
        per_segment = UCS2_MULTI
        # Without characters outside the BMP there is no pair to keep together.
        segments = -(-units // UCS2_MULTI) if units == characters else _ucs2_parts(utf16, units)
    return SegmentCount(UCS2, units, segments, per_segment, characters, ucs2_characters, doubled)


def _gsm7_parts(septets: str) -> int:
    """Parts of 153 septets for a string with one char per septet (escapes written out as ESC)."""
    total = len(septets)
    start = 0
    parts = 1
    while total - start > GSM7_MULTI:
        end = start + GSM7_MULTI
        if septets[end - 1] == _ESC:  # the pair would straddle: it starts the next part instead
            end -= 1
        start = end
        parts += 1
    return parts


def _ucs2_parts(utf16: bytes, units: int) -> int:
    """Parts of 67 code units for UTF-16-LE bytes, never ending a part between a surrogate pair."""
    start = 0
    parts = 1
    while units - start > UCS2_MULTI:
        end = start + UCS2_MULTI
        # High byte (little-endian) of the part's last unit and of the next one: D8–DB high, DC–DF low.
        if 0xD8 <= utf16[2 * end - 1] <= 0xDB and 0xDC <= utf16[2 * end + 1] <= 0xDF:
            end -= 1
        start = end
        parts += 1
    return parts
