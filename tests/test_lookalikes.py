"""Smart encoding (issue 22 §2): the look-alike table, the offer of plain characters over a corpus of
real-looking recruiting messages, and its words. No database: an organisation is only asked for its prices."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.billing import pricing
from webapp.messaging import lookalikes, segments
from webapp.messaging.lookalikes import LOOKALIKES, plain, replace
from webapp.messaging.segments import GSM_ALL, GSM_BASIC
from webapp.messaging.sms_words import describe_plain
from webapp.models import Organization

CORPUS = json.loads((Path(__file__).parent / "data" / "recruiting_messages.json").read_text())
ORG = Organization(name="Acme", whatsapp_price=2)


def words(markup: object) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", str(markup)))


# --- The table ----------------------------------------------------------------------------------------------


def test_the_table_replaces_only_what_gsm7_cannot_carry_and_only_with_its_basic_table() -> None:
    assert all(len(c) == 1 for c in LOOKALIKES)
    # Never a character GSM-7 carries: the replacement cannot change one.
    assert not set(LOOKALIKES) & GSM_ALL
    # Only basic-table characters: a replacement never adds an escape (the extension table counts 2).
    assert set("".join(LOOKALIKES.values())) <= GSM_BASIC


def test_the_issue_s_look_alikes_are_in_the_table() -> None:
    assert replace("’‘‚‛“”„‟′″") == "''''\"\"\"\"'\""
    assert replace("–—‒―‐‑−") == "-------"
    assert replace("…") == "..."
    spaces = "\u00a0" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u202f\u205f\u3000"
    assert replace(spaces) == " " * len(spaces)
    assert replace("a\u200bb\u200cc\u200dd\ufeffe") == "abcde"


def test_letters_outside_gsm7_are_not_look_alikes() -> None:
    for letter in "łőçşțęćžř😀❤ê°":
        assert letter not in LOOKALIKES
        assert replace(letter) == letter


# --- The corpus -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("message", CORPUS, ids=[m["note"] for m in CORPUS])
def test_each_message_of_the_corpus(message: dict) -> None:
    text = message["text"]
    offer = plain(text, ORG)
    assert segments.count(text).segments == message["segments"]
    if message["plain_segments"] is None:
        assert offer is None
        return
    assert offer is not None
    assert offer.before == segments.count(text) and offer.before.encoding == segments.UCS2
    assert offer.after == segments.count(offer.text) and offer.after.encoding == segments.GSM7
    assert offer.after.segments == message["plain_segments"]
    credits = [pricing.credits_for("sms", n, ORG) for n in (offer.before.segments, offer.after.segments)]
    assert offer.credits_saved == credits[0] - credits[1]


def test_the_segments_saved_over_the_corpus() -> None:
    offers = [(m, plain(m["text"], ORG)) for m in CORPUS]
    offered = [o for _, o in offers if o is not None]
    # 42 messages: 27 UCS-2 only because of look-alikes, 12 UCS-2 for a letter or emoji GSM-7 lacks
    # (named, not replaced), 3 GSM-7 already.
    assert (len(CORPUS), len(offered)) == (42, 27)
    assert sum(m["segments"] for m in CORPUS) == 74
    # The 27 go in 54 segments as written, 30 with plain characters: 24 saved (44% of theirs), a third of
    # the whole corpus's 74; at one credit a segment, as many credits.
    assert sum(o.before.segments for o in offered) == 54
    assert sum(o.after.segments for o in offered) == 30
    assert sum(o.segments_saved for o in offered) == 24
    assert sum(o.credits_saved for o in offered) == 24
    ucs2 = [m for m, o in offers if o is None and segments.count(m["text"]).encoding == segments.UCS2]
    never = [m["note"] for m in ucs2]
    assert all("no offer" in note for note in never)


def _gsm_kept_in_order(original: str, replaced: str) -> bool:
    """Every character of `original` that GSM-7 carries is in `replaced`, in the same order."""
    rest = iter(replaced)
    return all(any(c == r for r in rest) for c in original if c in GSM_ALL)


@pytest.mark.parametrize("message", CORPUS, ids=[m["note"] for m in CORPUS])
def test_no_replaced_text_changes_a_character_gsm7_carries(message: dict) -> None:
    original = message["text"]
    replaced = replace(original)
    assert _gsm_kept_in_order(original, replaced)
    # Stronger: the texts align character by character; each GSM-7 character stands where it stood,
    # each look-alike is its replacement, and nothing else changed.
    rebuilt = "".join(LOOKALIKES.get(c, c) for c in original)
    assert rebuilt == replaced
    position = 0
    for c in original:
        if c in GSM_ALL:
            assert replaced[position] == c
            position += 1
        else:
            into = LOOKALIKES.get(c, c)
            assert replaced[position : position + len(into)] == into
            position += len(into)
    assert position == len(replaced)


def test_the_gsm_check_itself_can_fail() -> None:
    assert not _gsm_kept_in_order("Jürgen", "Jurgen")
    assert not _gsm_kept_in_order("ab", "ba")
    assert _gsm_kept_in_order("it’s é", "it's é")


# --- The rule, over any text --------------------------------------------------------------------------------

_GSM = sorted(GSM_ALL)
_LOOKS = sorted(LOOKALIKES)
_OTHER = ["ł", "ő", "ç", "😀", "❤", "ê", "°", "ş", "Ω" if "Ω" not in GSM_ALL else "ω", "→"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_GSM + _LOOKS + _OTHER), max_size=400).map("".join))
def test_any_text_gets_an_offer_exactly_when_look_alikes_alone_make_it_ucs2(text: str) -> None:
    offer = plain(text, ORG)
    has_lookalike = any(c in LOOKALIKES for c in text)
    has_other = any(c not in GSM_ALL and c not in LOOKALIKES for c in text)
    assert (offer is not None) == (has_lookalike and not has_other)
    replaced = replace(text)
    assert _gsm_kept_in_order(text, replaced)
    assert [c for c in replaced if c not in GSM_ALL] == [
        c for c in text if c not in GSM_ALL and c not in LOOKALIKES
    ]
    if offer is not None:
        assert offer.text == replaced
        assert offer.after.segments <= offer.before.segments
        assert offer.credits_saved >= 0


def test_gsm7_text_and_the_empty_text_get_no_offer() -> None:
    assert plain("", ORG) is None
    assert plain("Hi Ada, free at 2pm? €40 [cash]", ORG) is None


# --- Counted as sent: placeholders filled in ----------------------------------------------------------------


def test_the_counts_are_of_the_rendered_text_and_a_name_is_never_touched() -> None:
    body = "Hi %FIRSTNAME%, it’s Riley — free on Friday?"

    def to(name: str):
        return lambda text: text.replace("%FIRSTNAME%", name)

    offer = plain(body, ORG, to("Søren"))
    assert offer is not None and offer.text == "Hi %FIRSTNAME%, it's Riley - free on Friday?"
    assert offer.after.characters == len("Hi Søren, it's Riley - free on Friday?")
    # A name GSM-7 cannot carry keeps the message UCS-2 whatever the body: no offer.
    assert plain(body, ORG, to("Paweł")) is None
    # A look-alike in the name (O’Brien) is the person's, not the body's: the click cannot change it.
    assert plain(body, ORG, to("Siobhán O’Brien")) is None


def test_bulk_savings_add_up_per_recipient() -> None:
    body = (
        "Hi %FIRSTNAME%, thanks for applying to Acme – we’d love to set up a quick call about the role. "
        "Are you free on Thursday afternoon? Reply YES."
    )
    names = ["Ada", "Søren", "Paweł", "Jürgen", "Zoë"]
    total = lookalikes.savings(body, ORG, [lambda t, n=n: t.replace("%FIRSTNAME%", n) for n in names])
    # Each counted with their own name: Ada's 133 UCS-2 units are 2 segments, Søren's and Jürgen's 135
    # and 136 are 3, and each becomes 1; Paweł's ł and Zoë's ë keep theirs UCS-2 (3 and 2), saving nothing.
    assert (total.messages, total.helped) == (5, 3)
    assert (total.segments_before, total.segments_after, total.credits_saved) == (13, 8, 5)


# --- Its words ----------------------------------------------------------------------------------------------


def test_the_offer_says_segments_and_credits_saved() -> None:
    text = (
        "Hi Marco, the hiring manager loved your answer to “why logistics?” and would like to move you "
        "forward. Can we book 30 minutes this week?"
    )
    w = describe_plain(plain(text, ORG))
    assert w.offer == "Use plain quotes and dashes: 3 segments → 1, saves 2 credits"
    assert words(w.changes) == '“ and ” become ".'
    assert words(w.summary) == "UCS-2 only because of “ and ”: 3 segments, 1 with plain quotes and dashes"
    assert describe_plain(plain(text, ORG), each=True).offer.endswith("saves 2 credits each")


def test_an_offer_that_saves_nothing_yet_says_the_room_it_makes() -> None:
    w = describe_plain(plain("Hi Tom, it’s Riley from Acme.", ORG))
    assert w.offer == "Use plain quotes and dashes: still 1 segment, with room for 160 units instead of 70"


def test_invisible_look_alikes_are_named_by_their_code_point() -> None:
    w = describe_plain(plain("Hi\u00a0Ben,\u200b see you – at 10…", ORG))
    assert words(w.changes) == (
        "U+00A0 (no-break space) becomes a space; U+200B (zero width space) is removed; – becomes -; "
        "… becomes ...."
    )
