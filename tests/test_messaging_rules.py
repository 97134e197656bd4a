"""The plain functions of the way of a message: routing, placeholders, pricing, status order."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from webapp.messaging import placeholders, routing, status
from webapp.models import Message


@dataclass
class N:
    country: str
    e164: str


POOL = [N("GB", "+447400123400"), N("US", "+12015550100"), N("DE", "+4915123456700"), N("CA", "+15062345600")]


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("+4915123456789", "+4915123456700"),  # German candidate: the German number
        ("+447400123456", "+447400123400"),
        ("+46701234567", "+12015550100"),  # Swedish candidate: no SE number, so the US one
        ("+16475550123", "+15062345600"),  # Toronto is Canada, not the US
        ("+12015550123", "+12015550100"),
    ],
)
def test_own_country_then_us(recipient: str, expected: str) -> None:
    assert routing.choose_number(POOL, recipient).e164 == expected


def test_without_us_any_number_and_without_numbers_none() -> None:
    pool = [N("GB", "+447400123400"), N("FR", "+33612345600")]
    assert routing.choose_number(pool, "+46701234567").e164 == "+447400123400"
    assert routing.choose_number([], "+46701234567") is None


def test_first_in_order_wins_within_a_country() -> None:
    pool = [N("GB", "+447400123401"), N("GB", "+447400123400")]
    assert routing.choose_number(pool, "+447400123456").e164 == "+447400123401"


def test_placeholders() -> None:
    r = placeholders.Recipient("Lena", "Müller", "Backend Engineer", "Acme", "Riley Chen")
    text = "Hi %FIRSTNAME% %LASTNAME%, %JOBTITLE% at %COMPANY%. /%SENDERNAME% %INVITELINK% %NOPE%"
    assert placeholders.render(text, r) == (
        "Hi Lena Müller, Backend Engineer at Acme. /Riley Chen %INVITELINK% %NOPE%"
    )
    assert placeholders.unknown(text) == ["%NOPE%"]


LINK = "https://relay.example/book/Xy7Qm2Lp9Rt4Vw8Zb3Nc5K"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Book: %INVITELINK%", f"Book: {LINK}"),
        ("Book: %INVITELINK% today", f"Book: {LINK} today"),
        ("Book: %INVITELINK%\nThanks", f"Book: {LINK}\nThanks"),
        # Anything but whitespace after the link gets a space: a phone would read it into the link.
        ("Book here: %INVITELINK%.", f"Book here: {LINK} ."),
        ("(%INVITELINK%)", f"({LINK} )"),
        ("%INVITELINK%Hi %FIRSTNAME%", f"{LINK} Hi Lena"),
        ("%INVITELINK%%FIRSTNAME%", f"{LINK} Lena"),
        ("%INVITELINK%-", f"{LINK} -"),
    ],
)
def test_a_link_is_followed_by_whitespace_or_the_end_of_the_text(text: str, expected: str) -> None:
    r = placeholders.Recipient("Lena", "Müller", "Backend Engineer", "Acme", "Riley Chen", LINK)
    rendered = placeholders.render(text, r)
    assert rendered == expected
    for found in re.finditer(re.escape(LINK), rendered):
        assert found.end() == len(rendered) or rendered[found.end()].isspace()


@pytest.mark.parametrize(
    ("steps", "final"),
    [
        (["submitted", "delivered", "read"], "read"),
        (["read", "delivered", "submitted"], "read"),
        (["delivered", "rejected"], "delivered"),
        (["submitted", "undeliverable", "delivered"], "undeliverable"),
        (["rejected", "submitted"], "rejected"),
    ],
)
def test_status_only_moves_forward(steps: list[str], final: str) -> None:
    m = Message(status="sending")
    for step in steps:
        status.apply(m, step)
    assert m.status == final


def test_each_status_keeps_its_time() -> None:
    m = Message(status="sending")
    status.apply(m, "submitted")
    status.apply(m, "delivered")
    status.apply(m, "delivered")
    assert m.submitted_at and m.delivered_at and m.submitted_at <= m.delivered_at
