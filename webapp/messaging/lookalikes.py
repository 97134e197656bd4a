"""Smart encoding: the look-alikes that make an SMS UCS-2 for nothing, and what plain characters would save.

A single typographic apostrophe (’, which Word and an iPhone put in for ') makes a whole SMS UCS-2: 70
units a segment instead of 160, often double the credits. ``LOOKALIKES`` is the table, as data: each
character the writer almost certainly meant as a plain one that GSM-7 carries. Nothing here changes a
message on its own: :func:`plain` says what the replacement would give, and the composer and the template
editor offer it as one click that changes the text the writer sees (never silently at sending).

Rules the table keeps (tests/test_lookalikes.py checks them):
- no key is a GSM-7 character, so a replacement never changes a character GSM-7 carries;
- every replacement is made of GSM-7 basic-table characters (never the extension table's, which count 2);
- characters GSM-7 cannot carry and that are not look-alikes (emoji, ł, ő, ç, …) are not here: the
  counter names them (webapp.messaging.sms_words) and they are never replaced, so a text with one of them
  gets no offer at all (:func:`plain` answers None).

The counting is webapp.messaging.segments', the prices webapp.billing.pricing's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from webapp.billing import pricing
from webapp.messaging import segments
from webapp.models import Organization

# character → what GSM-7 sends instead, and why a writer's text holds it.
LOOKALIKES: dict[str, str] = {
    # Single quotes and apostrophes: "smart quotes" of Word, Outlook, Google Docs and iOS/macOS.
    "\u2018": "'",  # ‘ left single quotation mark: an opening smart quote
    "\u2019": "'",  # ’ right single quotation mark: the smart apostrophe (don’t, it’s)
    "\u201a": "'",  # ‚ single low-9 quotation mark: German and Polish opening quote
    "\u201b": "'",  # ‛ single high-reversed-9 quotation mark: some fonts' opening quote
    "\u2032": "'",  # ′ prime: feet and minutes, pasted from spreadsheets, often meant as '
    "\u02bc": "'",  # ʼ modifier letter apostrophe: some keyboards' apostrophe
    "\u00b4": "'",  # ´ acute accent typed alone: the apostrophe on German and Spanish keyboards
    "`": "'",  # ` grave accent: not in GSM-7 at all; typed for an apostrophe
    # Double quotes.
    "\u201c": '"',  # “ left double quotation mark: smart quotes
    "\u201d": '"',  # ” right double quotation mark: smart quotes
    "\u201e": '"',  # „ double low-9 quotation mark: German, Polish, Czech opening quote
    "\u201f": '"',  # ‟ double high-reversed-9 quotation mark
    "\u2033": '"',  # ″ double prime: inches and seconds, often meant as "
    "\u00ab": '"',  # « left guillemet: French, Swiss and Scandinavian quotes
    "\u00bb": '"',  # » right guillemet
    # Dashes and hyphens: Word's AutoFormat turns " - " into " – ", iOS turns "--" into "—".
    "\u2010": "-",  # ‐ hyphen (the typographic one)
    "\u2011": "-",  # ‑ non-breaking hyphen: Word's Ctrl+Shift+-
    "\u2012": "-",  # ‒ figure dash: between digits, as in phone numbers
    "\u2013": "-",  # – en dash: ranges (9–5) and Word's " – "
    "\u2014": "-",  # — em dash: iOS's "--"
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign: pasted from spreadsheets and web pages
    # Dots and slashes.
    "\u2026": "...",  # … horizontal ellipsis: iOS and Word turn "..." into one character
    "\u2022": "-",  # • bullet: a list pasted from Word or a job ad
    "\u2044": "/",  # ⁄ fraction slash: Word's autoformatted 1/2
    # Spaces that look like a space: pasted from web pages, PDFs and Word.
    "\t": " ",  # tab: pasted from spreadsheets; no tab in GSM-7
    "\u00a0": " ",  # no-break space: Word before : ; ? ! in French, web pages' &nbsp;
    "\u2000": " ",  # en quad
    "\u2001": " ",  # em quad
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2004": " ",  # three-per-em space
    "\u2005": " ",  # four-per-em space
    "\u2006": " ",  # six-per-em space
    "\u2007": " ",  # figure space
    "\u2008": " ",  # punctuation space
    "\u2009": " ",  # thin space: French typography, PDFs
    "\u200a": " ",  # hair space
    "\u202f": " ",  # narrow no-break space: French typography; macOS writes times as "10:00 AM"
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space: a Japanese or Chinese input method left on
    "\u2028": "\n",  # line separator: pasted from some editors and PDFs
    "\u2029": "\n",  # paragraph separator
    # Invisible characters: nothing to read, yet each makes the text UCS-2. Joiners only matter inside
    # emoji and scripts GSM-7 cannot carry, and then the text gets no offer anyway (see plain).
    "\u200b": "",  # zero-width space: web pages and chat apps
    "\u200c": "",  # zero-width non-joiner
    "\u200d": "",  # zero-width joiner
    "\u2060": "",  # word joiner
    "\ufeff": "",  # zero-width no-break space, the byte-order mark: pasted from a file's start
    "\u00ad": "",  # soft hyphen: Word's and web pages' optional hyphen, invisible unless the line breaks
}

_TABLE = str.maketrans(LOOKALIKES)


def replace(text: str) -> str:
    """``text`` with every look-alike replaced by its plain character; every other character as it was."""
    return text.translate(_TABLE)


@dataclass(frozen=True)
class Plain:
    """A text that goes as UCS-2 only because of look-alikes, and what the plain characters give."""

    text: str  # the text with the look-alikes replaced (what the one click puts in the field)
    before: segments.SegmentCount  # as written (rendered, when a render was given)
    after: segments.SegmentCount  # with plain characters: GSM-7
    credits_before: int
    credits_after: int
    replaced: tuple[str, ...]  # the distinct look-alikes replaced, first appearance first

    @property
    def segments_saved(self) -> int:
        return self.before.segments - self.after.segments

    @property
    def credits_saved(self) -> int:
        return self.credits_before - self.credits_after


def plain(text: str, organization: Organization, render: Callable[[str], str] | None = None) -> Plain | None:
    """What replacing the look-alikes of ``text`` would give, when it is UCS-2 only because of them.

    None when the text is GSM-7 already, or when something else keeps it UCS-2 (an emoji, ł, ő: those are
    named by the counter and never replaced). ``render`` turns the text into what is sent (placeholders
    filled in for a recipient): the counts are of that, the replacement is of ``text`` itself, so that
    a name such as "Łukasz" in a placeholder is never touched and keeps the text UCS-2 (then None).
    """
    render = render or _as_is
    before = segments.count(render(text))
    if before.encoding != segments.UCS2:
        return None
    replaced_text = replace(text)
    after = segments.count(render(replaced_text))
    if after.encoding != segments.GSM7:
        return None
    return Plain(
        text=replaced_text,
        before=before,
        after=after,
        credits_before=pricing.credits_for("sms", before.segments, organization),
        credits_after=pricing.credits_for("sms", after.segments, organization),
        replaced=tuple(c for c in dict.fromkeys(text) if c in LOOKALIKES),
    )


def _as_is(text: str) -> str:
    return text


@dataclass(frozen=True)
class Savings:
    """What plain characters would save over many messages of one text (bulk messages: one body, each
    recipient's placeholders filled in)."""

    messages: int  # messages counted
    helped: int  # those that would go as GSM-7 instead of UCS-2
    segments_before: int  # over every message, as written
    segments_after: int  # over every message, plain characters where they help
    credits_saved: int


def savings(text: str, organization: Organization, renders: Iterable[Callable[[str], str]]) -> Savings:
    """The total that one click on the offer would save for ``text`` sent once per render (one per
    recipient). A recipient whose own details keep the message UCS-2 saves nothing and is counted as is."""
    messages = helped = before = after = saved = 0
    for render in renders:
        messages += 1
        offer = plain(text, organization, render)
        if offer is None:
            n = segments.count(render(text)).segments
            before += n
            after += n
            continue
        helped += 1
        before += offer.before.segments
        after += offer.after.segments
        saved += offer.credits_saved
    return Savings(messages, helped, before, after, saved)
