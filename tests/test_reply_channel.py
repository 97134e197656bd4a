"""Which channel a reply is preselected on, and why (webapp.messaging.reply_channel.choose): every case of
the rule, on plain values. No database; the pages' side is in tests/test_reply_channel_pages.py."""

from __future__ import annotations

import pytest

from webapp.messaging.reply_channel import ReplyChannel, choose

ALL = ["email", "sms", "whatsapp"]
OPTED_OUT = {"sms": "Felix opted out of texts", "whatsapp": "Felix opted out of texts"}


def test_the_channel_the_person_last_wrote_on() -> None:
    assert choose(ALL, {}, "whatsapp", "sms", "Grace") == ReplyChannel(
        "whatsapp", "Replying by WhatsApp, where Grace wrote last."
    )
    assert choose(ALL, {}, "email", "email", "Oliver") == ReplyChannel(
        "email", "Replying by email, where Oliver wrote last."
    )


def test_else_the_channel_of_the_last_message() -> None:
    assert choose(ALL, {}, None, "email", "Oliver") == ReplyChannel(
        "email", "Replying by email, the channel of the last message."
    )
    assert choose(ALL, {}, None, "whatsapp", "Grace") == ReplyChannel(
        "whatsapp", "Replying by WhatsApp, the channel of the last message."
    )


def test_without_history_texting_first() -> None:
    assert choose(ALL, {}, None, None, "Ana") == ReplyChannel(
        "sms", "By SMS: nothing has been written to Ana yet."
    )
    assert choose(["email", "whatsapp"], {}, None, None, "Ana").channel == "whatsapp"
    assert choose(["email"], {}, None, None, "Ana").channel == "email"


def test_opted_out_goes_by_email() -> None:
    assert choose(ALL, OPTED_OUT, "sms", "sms", "Felix") == ReplyChannel(
        "email", "By email: Felix opted out of texts."
    )
    # The last message our WhatsApp, their last word an SMS STOP: still email.
    assert choose(ALL, OPTED_OUT, "sms", "whatsapp", "Felix").channel == "email"


def test_a_blocked_last_word_falls_back_to_the_last_message() -> None:
    blocked = {"email": "Nora has no email address"}
    assert choose(ALL, blocked, "email", "sms", "Nora") == ReplyChannel(
        "sms", "By SMS: Nora has no email address."
    )


def test_no_address() -> None:
    blocked = {"sms": "Ana has no mobile number", "whatsapp": "Ana has no mobile number"}
    assert choose(ALL, blocked, None, None, "Ana") == ReplyChannel(
        "email", "By email: Ana has no mobile number."
    )
    assert choose(ALL, {"email": "Oliver has no email address"}, None, "email", "Oliver") == ReplyChannel(
        "sms", "By SMS: Oliver has no email address."
    )


def test_a_channel_switched_off_since() -> None:
    blocked = {"whatsapp": "WhatsApp is not switched on for your organisation"}
    assert choose(["email", "sms"], blocked, "whatsapp", "whatsapp", "Lena") == ReplyChannel(
        "sms", "By SMS: WhatsApp is not switched on for your organisation."
    )


def test_a_channel_the_user_may_not_write_on() -> None:
    blocked = {"sms": "you may not send SMS here", "whatsapp": "you may not send WhatsApp here"}
    assert choose(["email"], blocked, "sms", "sms", "Amelia") == ReplyChannel(
        "email", "By email: you may not send SMS here."
    )
    # A history channel not offered and not explained still gives a reason.
    assert choose(["email"], {}, "sms", "sms", "Amelia") == ReplyChannel(
        "email", "By email: you may not send SMS here."
    )


def test_nothing_reaches_them() -> None:
    blocked = {**OPTED_OUT, "email": "Felix has no email address"}
    chosen = choose(ALL, blocked, "sms", "sms", "Felix")
    assert chosen == ReplyChannel(
        "sms", "No channel reaches Felix: Felix has no email address; Felix opted out of texts."
    )
    # Not a channel the user may not write on, even when it is where they wrote.
    assert choose(["email"], {"email": "x", "sms": "y"}, "sms", "sms", "Felix").channel == "email"


def test_nothing_offered() -> None:
    assert choose([], {}, "sms", "sms", "Felix") is None


@pytest.mark.parametrize("last_inbound", [None, "email", "sms", "whatsapp"])
@pytest.mark.parametrize("last_message", [None, "email", "sms", "whatsapp"])
@pytest.mark.parametrize("blocked_set", [(), ("sms",), ("sms", "whatsapp"), ("email",), ("email", "sms")])
@pytest.mark.parametrize("offered", [ALL, ["email", "sms"], ["email"]])
def test_never_a_blocked_channel_when_another_reaches_them(
    last_inbound: str | None, last_message: str | None, blocked_set: tuple[str, ...], offered: list[str]
) -> None:
    blocked = {c: f"{c} blocked" for c in blocked_set}
    blocked.update({c: f"{c} not offered" for c in ALL if c not in offered})
    chosen = choose(offered, blocked, last_inbound, last_message, "Kim")
    assert chosen is not None and chosen.channel in offered and chosen.reason
    usable = [c for c in offered if c not in blocked]
    if usable:
        assert chosen.channel in usable
        # The person's own last channel wins whenever it can be used; else the last message's.
        if last_inbound in usable:
            assert chosen.channel == last_inbound
        elif last_message in usable:
            assert chosen.channel == last_message


def test_a_message_waiting_for_its_time_counts_after_the_last_message() -> None:
    # Only a message written for later: its channel, said as what it is, not "nothing written yet".
    assert choose(ALL, {}, None, None, "Ana", scheduled="email") == ReplyChannel(
        "email", "By email, like the message to Ana that waits for its time."
    )
    # What was sent or received still decides first.
    assert choose(ALL, {}, None, "whatsapp", "Ana", scheduled="email").channel == "whatsapp"
    assert choose(ALL, {}, "sms", "email", "Ana", scheduled="whatsapp").channel == "sms"
    # Waiting on a channel that cannot reach them now: not that one.
    assert choose(ALL, OPTED_OUT, None, None, "Felix", scheduled="sms").channel == "email"
