"""The whole way through the real providers: the app composes, dispatch sends through the vonage SDK
to the fake Vonage over HTTPS, or through smtplib to an aiosmtpd server."""

from __future__ import annotations

from email.utils import getaddresses

import pytest

from tests import factories as f
from tests.smtp_sink import running_smtp_sink
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import compose, dispatch
from webapp.messaging.subjects import of_application
from webapp.models import Message
from webapp.organizations import settings as organizations


@pytest.fixture
def sink():
    with running_smtp_sink() as sink:
        yield sink


@pytest.fixture
def app_config(request) -> dict[str, object]:
    config: dict[str, object] = {"SEND_MAX_ATTEMPTS": 3, "SEND_BACKOFF_SECONDS": 0.01}
    if "fake" in request.fixturenames:
        fake = request.getfixturevalue("fake")
        config.update(
            MESSAGING_PROVIDER="vonage",
            VONAGE_API_HOST=fake.api_host,
            VONAGE_APPLICATION_ID=fake.application_id,
            VONAGE_PRIVATE_KEY_PATH=str(fake.private_key_path),
            VONAGE_TIMEOUT=0.5,
        )
    if "sink" in request.fixturenames:
        config["SMTP_URL"] = request.getfixturevalue("sink").url
    return config


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", sender_name="Acme Careers")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, "+4915123456700")
    f.number(org, "+12015550100")
    job = f.job(org, team=[user], title="Backend Engineer")
    lena = f.application(
        job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789", email="lena@example.test")
    )
    f.credits(org, 10)
    db.session.commit()
    return {"org": org, "user": user, "lena": lena}


def send(world, channel="sms", body="Hi %FIRSTNAME%, about %JOBTITLE%", subject=None) -> Message:
    message = compose.compose(
        db.session, world["user"], of_application(world["lena"]), channel, body, subject=subject
    )
    db.session.commit()
    dispatch.deliver(message.id)
    db.session.expire_all()
    return db.session.get(Message, message.id)


def test_sms_reaches_vonage_as_the_messages_api_expects(world, fake) -> None:
    m = send(world)
    assert m.status == "submitted"
    [request] = fake.requests
    assert request.path == "/v1/messages" and request.jwt_verified
    assert request.body == {
        "to": "4915123456789",
        "from": "4915123456700",
        "text": "Hi Lena, about Backend Engineer",
        "channel": "sms",
        "message_type": "text",
        "client_ref": str(m.id),
    }
    assert m.provider_id == request.response_body["message_uuid"]


def test_whatsapp_text(world, fake) -> None:
    f.open_whatsapp_window(world["lena"])
    db.session.commit()
    m = send(world, channel="whatsapp", body="Hej 😀")
    assert m.status == "submitted"
    body = fake.requests[0].body
    assert (body["channel"], body["to"], body["text"], body["client_ref"]) == (
        "whatsapp",
        "4915123456789",
        "Hej 😀",
        str(m.id),
    )


def test_a_4xx_is_shown_and_refunded(world, fake) -> None:
    fake.fail(422, "Invalid params", "The value of one or more parameters is invalid.")
    m = send(world)
    assert m.status == "rejected"
    assert (m.error_code, m.error_title, m.error_detail) == (
        "422",
        "Invalid params",
        "The value of one or more parameters is invalid.",
    )
    assert len(fake.requests) == 1  # a rejection is not retried
    assert credits.balance(db.session, world["org"]) == 10


def test_429_is_retried_then_sent(world, fake) -> None:
    fake.fail(429, "Rate Limit Hit", "Please wait, then retry your request")
    m = send(world)
    assert m.status == "submitted" and len(fake.requests) == 2 and m.attempts == 2
    assert credits.balance(db.session, world["org"]) == 9


def test_lasting_refusal_ends_rejected_and_refunded(world, fake) -> None:
    for _ in range(3):
        fake.fail(429, "Rate Limit Hit", "Please wait, then retry your request")
    m = send(world)
    assert m.status == "rejected" and m.error_title == "Not sent after 3 tries: Rate Limit Hit"
    assert len(fake.requests) == m.attempts == 3
    assert credits.balance(db.session, world["org"]) == 10
    account = credits.account_for(db.session, world["org"])
    assert credits.ledger_sum(db.session, account.id) == account.balance


@pytest.mark.parametrize("trouble", ["500", "hang", "drop"])
def test_an_unknown_outcome_is_sent_once_and_waits_for_the_report(world, fake, trouble) -> None:
    for _ in range(3):
        if trouble == "500":
            fake.fail(500, "Internal Error", "Something went wrong on our side")
        elif trouble == "hang":
            fake.hang(2)
        else:
            fake.drop()
    m = send(world)
    assert m.status == "unknown" and m.attempts == 1
    assert len(fake.requests) == 1  # Vonage may have it: never resent blindly
    assert credits.balance(db.session, world["org"]) == 9  # still paid for: it may have gone


def test_the_rejection_reads_in_words_on_the_page(world, fake, client, auth) -> None:
    fake.fail(403, "Forbidden", "Your account is not allowed to send to this destination.")
    send(world)
    auth.login(world["user"].email)
    html = client.get(f"/applications/{world['lena'].id}?tab=sms").get_data(as_text=True)
    assert "Not sent" in html and "not allowed to send to this destination" in html
    assert "the credits were given back" in html


def test_email_goes_out_through_smtp_from_the_company(world, sink) -> None:
    m = send(world, channel="email", body="Dear %FIRSTNAME%,\nsee you soon.", subject="About %JOBTITLE%")
    assert m.status == "sent"
    [received] = sink.messages
    email = received.message
    assert "Acme Careers" in email["From"] and "Riley" not in email["From"]
    assert email["To"] == "lena@example.test"
    assert email["Subject"] == "About Backend Engineer"
    assert email["X-Relay-Message-Id"] == str(m.id)
    assert "Dear Lena," in email.get_content()
    assert m.provider_id == email["Message-ID"]


# Names an admin may give in Settings that once forged or split the From header (issue 17): past 78
# characters the header folded and lost its quotes, so the address inside the name became the From.
FORGING_NAMES = [
    "Acme Human Resources and Talent Acquisition Team Notifications <security@bank.example>",
    "Acme Careers, security@bank.example",
    'Acme "Careers" <security@bank.example>, "x" <y@z.example>',
    "Zoë Müller Personalabteilung für Talente und Nachwuchs <sicherheit@bank.example>, und so weiter",
    "A" * 40 + ", " + "B" * 30 + " <security@bank.example>" + "C" * 4,
    "é" * 100,
]


@pytest.mark.parametrize("name", FORGING_NAMES)
def test_a_sender_name_is_only_ever_the_display_name_of_our_address(world, sink, name) -> None:
    org = world["org"]
    assert len(name) <= organizations.SENDER_NAME_LENGTH
    organizations.update(
        org,
        organizations.Settings(
            sender_name=name, channels="sms", help_reply="", low_credit_threshold="50", time_zone="UTC"
        ),
    )
    db.session.commit()

    m = send(world, channel="email", body="Hello", subject="Hi")

    assert m.status == "sent"
    [received] = sink.messages
    from_ = received.message["From"]
    assert [(a.display_name, a.addr_spec) for a in from_.addresses] == [(name, sink.from_address)]
    assert getaddresses([str(from_)]) == [(name, sink.from_address)]
    assert received.mail_from == sink.from_address and received.rcpt_tos == ["lena@example.test"]


def test_email_refused_by_the_server(world, sink) -> None:
    sink.refuse_next(550, "5.1.1 No such user", at="rcpt")
    m = send(world, channel="email", body="Hello", subject="Hi")
    assert m.status == "rejected" and "No such user" in (m.error_title + (m.error_detail or ""))


def test_whatsapp_template_outside_the_window(world, fake) -> None:
    template = f.whatsapp_template(world["org"], locale="de_DE")
    db.session.commit()
    message = compose.compose(
        db.session,
        world["user"],
        of_application(world["lena"]),
        "whatsapp",
        "",
        whatsapp_template_id=template.id,
    )
    db.session.commit()
    dispatch.deliver(message.id)
    body = fake.requests[0].body
    assert body == {
        "to": "4915123456789",
        "from": "4915123456700",
        "channel": "whatsapp",
        "message_type": "template",
        "client_ref": str(message.id),
        "template": {"name": "interview_invite", "parameters": ["Lena", "Backend Engineer"]},
        "whatsapp": {"locale": "de_DE"},
    }
