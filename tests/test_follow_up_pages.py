"""Follow up if no reply, in a conversation's composer over HTTP (issue 20 §3): its fields (ids of the
composer, labels, valid HTML), Send storing the message and its follow-up, a refusal said beside the
follow-up's own field with everything typed kept, a template filling the text, and the thread showing
the pending follow-up, then why it was not sent. The clock is injected (the modules' `utcnow`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.browser_support import ServedPage, html_problems, html_validate_available
from tests.conftest import csrf_from
from tests.webhook_support import inbound
from tests.webhook_support import post as webhook
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import compose, follow_ups, scheduled
from webapp.models import Conversation, Message, MessageTemplate
from webapp.web import composer

HX = {"HX-Request": "true"}
# Tuesday 8 Dec 2026, 10:00 in Berlin (the organisation's zone and Lena's).
NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
OUR, LENA = "+4915123456700", "+4915123456789"


@pytest.fixture
def clock(monkeypatch):
    now = {"at": NOW}
    for module in (compose, composer, follow_ups, scheduled):
        monkeypatch.setattr(module, "utcnow", lambda: now["at"])
    return now


@pytest.fixture
def lena(app, auth, clock):
    acme = f.messaging_org("Acme", sender_name="Acme", time_zone="Europe/Berlin")
    riley = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(acme, OUR)
    job = f.job(acme, team=[riley])
    application = f.application(job, f.candidate(acme, "Lena", "Müller", mobile=LENA))
    f.credits(acme, 10)
    nudge = MessageTemplate(
        organization_id=acme.id, channel="sms", name="Nudge", body="Still keen, %FIRSTNAME%?"
    )
    letter = MessageTemplate(
        organization_id=acme.id, channel="email", name="Letter", subject="Hi", body="Dear"
    )
    db.session.add_all([nudge, letter])
    db.session.commit()
    auth.login("recruiter@acme.test")
    url = f.conversation_url(application)
    return {
        "org": acme,
        "application": application,
        "c": url,
        "key": url.rsplit("/", 1)[1],
        "nudge": nudge,
        "letter": letter,
    }


def post(client, url, data, htmx=True):
    token = csrf_from(client, "/jobs")
    return client.post(url, data={**data, "csrf_token": token}, headers=HX if htmx else {})


def send(client, lena, htmx=True, **data):
    fields = {"channel": "sms", "body": "Hi %FIRSTNAME%, are you free on Tuesday?", **data}
    return post(client, f"{lena['c']}/messages", fields, htmx)


def page(client, lena) -> str:
    return client.get(f"/applications/{lena['application'].id}?tab=sms").get_data(as_text=True)


def messages() -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Message).order_by(Message.id)))


def test_the_composer_has_the_follow_up_fields_named_for_its_conversation(client, lena) -> None:
    html = page(client, lena)
    key = lena["key"]
    assert "<summary>Follow up if no reply</summary>" in html
    for name in ("follow-up-days", "follow-up-template", "follow-up-body"):
        assert f'<label for="{name}-{key}">' in html and f'id="{name}-{key}"' in html
    days = re.search(rf'<input [^>]*id="follow-up-days-{key}"[^>]*>', html).group(0)
    assert 'type="number"' in days and 'min="1"' in days and 'max="30"' in days and "maxlength" not in days
    assert 'value="3"' in days
    if html_validate_available():
        assert html_problems([ServedPage("/applications", 200, "follow-up fields", html)]) == []


def test_send_stores_the_message_and_its_follow_up_and_the_thread_shows_it_pending(client, lena) -> None:
    response = send(client, lena, follow_up_days="2", follow_up_body="Any news, %FIRSTNAME%?")
    assert response.status_code == 200
    message, follow_up = messages()
    assert message.status != "scheduled" and (follow_up.status, follow_up.body) == (
        "scheduled",
        "Any news, Lena?",
    )
    assert follow_up.follow_up_of_id == message.id and follow_up.send_at == NOW + timedelta(days=2)
    assert credits.balance(db.session, lena["org"]) == 8
    html = response.get_data(as_text=True)
    assert "Follow-up if no reply · Scheduled for Thu 10 Dec 10:00" in html
    # The fresh composer starts empty again.
    assert "Any news, %FIRSTNAME%?</textarea>" not in html


def test_the_counter_prices_the_follow_up_with_the_message_before_send(client, lena) -> None:
    def counter(**data) -> str:
        fields = {"channel": "sms", "body": "Hi %FIRSTNAME%", **data}
        html = post(client, f"{lena['c']}/preview", fields).get_data(as_text=True)
        found = re.search(r'<p class="counter-note" data-counter="follow-up">(.*?)</p>', html, re.S)
        return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split()) if found else ""

    assert counter() == ""
    # 161 characters of GSM-7: two segments; the message itself one.
    assert counter(follow_up_days="2", follow_up_body="x" * 161) == (
        "Follow-up if no reply in 2 days: 2 segments · 2 credits, paid now and given back if Lena replies "
        "first. Together 3 credits."
    )
    # Days out of range: said beside the days at Send; the price still.
    assert counter(follow_up_days="99", follow_up_body="Any news?").startswith("Follow-up: 1 segment")
    email = counter(channel="email", subject="Hi", follow_up_days="1", follow_up_body="Any news?")
    assert email == "Follow-up if no reply in 1 day: email is free."


def test_a_whatsapp_follow_up_is_refused_before_send_in_the_words_send_would_use(client, lena) -> None:
    conversation = db.session.get(Conversation, int(lena["key"]))
    conversation.whatsapp_window_ends_at = NOW + timedelta(hours=20)  # free text may go now
    db.session.commit()
    fields = {
        "channel": "whatsapp",
        "body": "Hi %FIRSTNAME%",
        "follow_up_days": "2",
        "follow_up_body": "News?",
    }
    html = post(client, f"{lena['c']}/preview", fields).get_data(as_text=True)
    said = re.search(r'data-counter="follow-up" data-follow-up="refused">([^<]*)</p>', html)
    assert said and said.group(1).startswith("A WhatsApp follow-up would leave after the 24-hour window")
    assert "Together" not in html  # not priced as if it could go
    refused = send(client, lena, **fields)
    assert refused.status_code == 422 and said.group(1) in refused.get_data(as_text=True)
    assert messages() == [] and "News?</textarea>" in refused.get_data(as_text=True)


def test_without_a_follow_up_text_only_the_message_is_sent(client, lena) -> None:
    assert send(client, lena, follow_up_days="5").status_code == 200
    assert len(messages()) == 1


@pytest.mark.parametrize(("days", "htmx"), [("0", True), ("31", False)])
def test_days_out_of_range_are_refused_beside_the_days_and_everything_typed_kept(
    client, lena, days, htmx
) -> None:
    response = send(
        client, lena, htmx, follow_up_days=days, follow_up_body="Any news?", send_at="2026-12-09T10:00"
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="follow-up-days-error-{lena["key"]}">Pick a number of days from 1 to 30.</p>' in html
    assert f'value="{days}"' in html and "Any news?</textarea>" in html and 'value="2026-12-09T10:00"' in html
    assert "are you free on Tuesday?</textarea>" in html and '<details class="follow-up" open>' in html
    assert messages() == []
    if not htmx and html_validate_available():
        assert html_problems([ServedPage("/refused", 422, "follow-up refused", html)]) == []


def test_a_follow_up_text_the_channel_refuses_is_said_beside_it_and_nothing_is_paid(client, lena) -> None:
    response = send(client, lena, follow_up_body="x" * 2000)
    assert response.status_code == 422
    assert re.search(rf'id="follow-up-body-error-{lena["key"]}">[^<]+', response.get_data(as_text=True))
    assert messages() == [] and credits.balance(db.session, lena["org"]) == 10


def test_a_template_fills_the_follow_up_one_of_another_channel_is_refused(client, lena) -> None:
    refused = send(client, lena, follow_up_template_id=str(lena["letter"].id))
    assert refused.status_code == 422
    assert f'id="follow-up-template-error-{lena["key"]}">Choose a template for SMS' in refused.get_data(
        as_text=True
    )
    assert send(client, lena, follow_up_template_id=str(lena["nudge"].id)).status_code == 200
    assert messages()[1].body == "Still keen, Lena?"


def test_after_their_reply_the_thread_says_the_follow_up_was_not_sent(client, lena) -> None:
    send(client, lena, follow_up_body="Any news?")
    assert webhook(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "Yes!")).status_code == 200
    html = page(client, lena)
    assert "Follow-up if no reply ·" not in html
    # (The webhook runs on the real clock: the day is today's.)
    assert re.search(
        r"Follow-up not sent: they replied on <time [^>]+>\w{3} \d\d \w{3} \d\d:\d\d \w+</time>\. "
        r"The credits were given back\.",
        html,
    )


def test_the_message_moved_its_follow_up_moves_cancelled_the_thread_says_it_was_not_sent(
    client, lena
) -> None:
    # Wednesday 14:00 (Berlin, Lena's clock too), its follow-up two days later.
    send(client, lena, send_at="2026-12-09T14:00", follow_up_days="2", follow_up_body="Any news?")
    message, follow_up = messages()
    assert follow_up.send_at == datetime(2026, 12, 11, 13, 0, tzinfo=UTC)
    url = f"/conversations/{message.conversation_id}/scheduled/{message.id}"
    assert post(client, url, {"send_at": "2026-12-10T15:00"}).status_code == 204
    # A day and an hour later, as the message (their hours are tests/test_follow_ups.py's).
    assert messages()[1].send_at == datetime(2026, 12, 12, 14, 0, tzinfo=UTC)
    assert "Follow-up if no reply · Scheduled for Sat 12 Dec 15:00" in page(client, lena)

    assert post(client, f"{url}/cancel", {}).status_code == 204
    html = page(client, lena)
    assert "Follow-up not sent: the message it follows was cancelled. The credits were given back." in html
    assert "Follow-up if no reply · Scheduled" not in html
    assert credits.balance(db.session, lena["org"]) == 10
