"""What the SMS counter says about a text's size: one wording for the composer, the template editor's
preview and the interview invitation form (all three draw it with templates/_macros/sms_count.html).

It counts in the units that decide the segments — GSM-7 septets or UCS-2 code units, never characters —
against what one SMS holds, and names the characters that count double (a GSM-7 extension character
such as €, an emoji in UCS-2) and the ones that forced UCS-2. The counting itself is
webapp.messaging.segments.count; this module only puts its numbers into words.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from webapp.messaging.lookalikes import LOOKALIKES, Plain
from webapp.messaging.segments import GSM7, GSM7_SINGLE, UCS2_SINGLE, SegmentCount

SINGLE = {GSM7: GSM7_SINGLE}
# Characters without a printable form or a Unicode name of their own.
NAMES = {"\t": "tab", "\f": "form feed"}


@dataclass(frozen=True)
class SmsWords:
    units: str  # "161 of 160 GSM-7 units": the text's units against what one SMS holds
    segments: str  # "2 segments"
    per_segment: str | None  # "up to 153 units each", when the text goes in more than one
    # (what it is about, the sentence): "ucs2" why UCS-2, "doubled" what counts 2, "split" a moved pair.
    notes: tuple[tuple[str, Markup], ...]


def describe(count: SegmentCount) -> SmsWords:
    single = SINGLE.get(count.encoding, UCS2_SINGLE)
    notes: list[tuple[str, Markup]] = []
    if count.ucs2_characters:
        notes.append(
            (
                "ucs2",
                Markup("UCS-2 because of {}: one SMS holds {} units instead of {}.").format(
                    _characters(count.ucs2_characters), UCS2_SINGLE, GSM7_SINGLE
                ),
            )
        )
    if count.doubled:
        verb = "counts 2 units" if len(count.doubled) == 1 else "count 2 units each"
        notes.append(("doubled", Markup("{} {}.").format(_characters(count.doubled), verb)))
    many = count.segments > 1
    if many and count.segments > -(-count.units // count.per_segment):
        notes.append(
            (
                "split",
                Markup(
                    "A character that counts 2 is never cut in half: where it would straddle two "
                    "segments it starts the next one."
                ),
            )
        )
    return SmsWords(
        units=f"{count.units} of {single} {count.encoding} units",
        segments=f"{count.segments} segment{'' if count.segments == 1 else 's'}",
        per_segment=f"up to {count.per_segment} units each" if many else None,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class PlainWords:
    offer: str  # the button: "Use plain quotes and dashes: 3 segments → 1, saves 2 credits"
    changes: Markup  # what the click changes: "’ and ‘ become ', — becomes -"
    # For a list of kept texts: "UCS-2 only because of ’ and —: 3 segments, 1 with plain quotes and dashes"
    summary: Markup


# What a look-alike becomes, in words, when it is not a character to show.
_BECOMES = {" ": "a space", "\n": "a line break"}


def describe_plain(offer: Plain, each: bool = False, where: str = "") -> PlainWords:
    """The offer of plain characters (webapp.messaging.lookalikes.plain) in the counter's words: what it
    saves, on the button, and what it changes, beside it. `where` names the text when a form has two
    ("in the follow-up")."""
    before, after = offer.before.segments, offer.after.segments
    if offer.segments_saved:
        saved = offer.credits_saved
        gain = f"{_segments(before)} → {after}, saves {saved} credit{'' if saved == 1 else 's'}"
        gain += " each" if each else ""
    else:
        # Nothing saved yet: the room grows (160 units instead of 70), which a longer text will need.
        room = "" if after == 1 else " each"
        gain = (
            f"still {_segments(after)}, with room for {offer.after.per_segment} units{room} "
            f"instead of {offer.before.per_segment}"
        )
    by_target: dict[str, list[str]] = {}
    for c in offer.replaced:
        by_target.setdefault(LOOKALIKES[c], []).append(c)
    changes = []
    for target, found in by_target.items():
        many = len(found) > 1
        if not target:
            changes.append(Markup("{} {} removed").format(_characters(found), "are" if many else "is"))
            continue
        into = _BECOMES.get(target) or Markup("<code>{}</code>").format(target)
        changes.append(Markup("{} {} {}").format(_characters(found), "become" if many else "becomes", into))
    return PlainWords(
        offer=f"Use plain quotes and dashes{' ' + where if where else ''}: {gain}",
        changes=Markup("; ").join(changes) + Markup("."),
        summary=Markup("UCS-2 only because of {}: {}, {} with plain quotes and dashes").format(
            _characters(offer.replaced), _segments(before), after
        ),
    )


def _segments(n: int) -> str:
    return f"{n} segment{'' if n == 1 else 's'}"


def _characters(found: Sequence[str]) -> Markup:
    """ "€", "€ and [", "ç, 😀 and ł": each as code, an invisible one by its code point and name."""
    shown = [_character(c) for c in found]
    if len(shown) == 1:
        return shown[0]
    return Markup(", ").join(shown[:-1]) + Markup(" and ") + shown[-1]


def _character(c: str) -> Markup:
    if c.isprintable() and not c.isspace():
        return Markup("<code>{}</code>").format(c)
    name = NAMES.get(c) or unicodedata.name(c, "").lower() or "an invisible character"
    return Markup("<code>U+{:04X}</code> ({})").format(ord(c), name)
