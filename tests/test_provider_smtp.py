"""SmtpProvider against a real SMTP server (aiosmtpd), and the log provider; nothing mocked."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from tests.smtp_sink import SmtpSink, running_smtp_sink
from webapp.config import ConfigError
from webapp.providers.base import Outbound, OutcomeUnknown, Rejected, TemporaryFailure
from webapp.providers.smtp import LogEmailProvider, SmtpProvider, SmtpSettings, from_config


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with running_smtp_sink() as sink:
        yield sink


def email(**changes: object) -> Outbound:
    fields: dict = {
        "message_id": 314,
        "channel": "email",
        "to": "ada@example.com",
        "sender": "Acme Recruiting",
        "body": "Hello Ada,\n\nCould you come in on Monday at 10:00?\n\nGrace",
        "subject": "Your interview at Acme",
        "reply_to": "grace@acme.example",
    }
    fields.update(changes)
    return Outbound(**fields)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_email_arrives_as_written(sink: SmtpSink) -> None:
    provider_id = SmtpProvider(sink.url, timeout=2).send(email())

    [received] = sink.messages
    assert received.mail_from == "noreply@relay.example"
    assert received.rcpt_tos == ["ada@example.com"]
    message = received.message
    assert b"From: Acme Recruiting <noreply@relay.example>\r\n" in received.raw.splitlines(keepends=True)
    assert message["From"].addresses[0].display_name == "Acme Recruiting"
    assert message["To"] == "ada@example.com"
    assert message["Reply-To"] == "grace@acme.example"
    assert message["Subject"] == "Your interview at Acme"
    assert message["X-Relay-Message-Id"] == "314"
    assert message.get_content() == "Hello Ada,\n\nCould you come in on Monday at 10:00?\n\nGrace\n"
    assert provider_id == message["Message-ID"]
    assert provider_id.startswith("<") and provider_id.endswith("@relay.example>")


def test_each_email_gets_its_own_message_id(sink: SmtpSink) -> None:
    provider = SmtpProvider(sink.url, timeout=2)

    ids = [provider.send(email(message_id=n)) for n in (1, 2)]

    assert ids == [m.message["Message-ID"] for m in sink.messages]
    assert ids[0] != ids[1]


def test_without_a_subject_or_reply_to(sink: SmtpSink) -> None:
    SmtpProvider(sink.url, timeout=2).send(email(subject=None, reply_to=None))

    message = sink.messages[0].message
    assert message["Subject"] == "Message from Acme Recruiting"
    assert "Reply-To" not in message


def test_names_and_text_outside_ascii_survive(sink: SmtpSink) -> None:
    SmtpProvider(sink.url, timeout=2).send(
        email(sender="Zoë, Müller & Co", subject="Entretien – lundi ?", body="Bonjour Amélie 👋")
    )

    message = sink.messages[0].message
    assert message["From"].addresses[0].display_name == "Zoë, Müller & Co"
    assert message["Subject"] == "Entretien – lundi ?"
    assert message.get_content().replace("\r\n", "\n") == "Bonjour Amélie 👋\n"  # base64 keeps MIME's CRLF


@pytest.mark.parametrize(
    "name",
    [
        "Acme Human Resources and Talent Acquisition Team Notifications <security@bank.example>",
        "Acme, security@bank.example",
        "a" * 40 + ", " + "b" * 40 + " <security@bank.example>",
        'Acme "Talent" Team',
        '"' * 100,
        "\\" * 100,
        "<" * 50 + ">" * 50,
        "Zoë Müller, Personalabteilung <sicherheit@bank.example>",
        "é" * 100,
        "👩‍💻" * 33,
        " ".join(["word"] * 20),
    ],
)
def test_a_sender_name_stays_the_display_name_of_the_one_from_address(sink: SmtpSink, name: str) -> None:
    SmtpProvider(sink.url, timeout=2).send(email(sender=name, reply_to="grace@acme.example"))

    [received] = sink.messages
    message = received.message
    assert [(a.display_name, a.addr_spec) for a in message["From"].addresses] == [
        (name, "noreply@relay.example")
    ]
    assert [a.addr_spec for a in message["To"].addresses] == ["ada@example.com"]
    assert [a.addr_spec for a in message["Reply-To"].addresses] == ["grace@acme.example"]
    header = next(line for line in received.raw.split(b"\r\n") if line.startswith(b"From:"))
    assert len(header) <= 998  # unfolded, within RFC 5322's limit for a line


def test_list_unsubscribe_goes_out_verbatim_however_long_the_link(sink: SmtpSink) -> None:
    # Past 78 characters the default policy folded it into RFC 2047 words (=?utf-8?q?=3Chttp=3A//…),
    # which Gmail and Outlook do not read as a List-Unsubscribe; the parsed copy hid that (it decodes).
    link = "https://relay.recruiting.example.com:8443/notifications/unsubscribe/" + "eyJ1IjoxfQ." + "x" * 160
    headers = (("List-Unsubscribe", f"<{link}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    SmtpProvider(sink.url, timeout=2).send(email(headers=headers))

    lines = sink.messages[0].raw.split(b"\r\n")
    assert f"List-Unsubscribe: <{link}>".encode() in lines
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines


def test_a_reply_to_or_recipient_that_is_not_one_address_is_refused(sink: SmtpSink) -> None:
    for changes in ({"reply_to": "grace@acme.example, eve@example.com"}, {"to": "Eve <eve@example.com>"}):
        with pytest.raises(Rejected):
            SmtpProvider(sink.url, timeout=2).send(email(**changes))
    assert sink.messages == []


def test_a_line_break_cannot_add_headers(sink: SmtpSink) -> None:
    SmtpProvider(sink.url, timeout=2).send(email(subject="Hi\r\nBcc: eve@example.com"))

    message = sink.messages[0].message
    assert message["Subject"] == "Hi Bcc: eve@example.com"
    assert "Bcc" not in message
    assert sink.messages[0].rcpt_tos == ["ada@example.com"]

    with pytest.raises(Rejected):
        SmtpProvider(sink.url, timeout=2).send(email(to="ada@example.com\nBcc: eve@example.com"))
    assert len(sink.messages) == 1


def test_a_550_recipient_is_rejected(sink: SmtpSink) -> None:
    sink.refuse_next(550, "5.1.1 No such user here")

    with pytest.raises(Rejected) as caught:
        SmtpProvider(sink.url, timeout=2).send(email())

    assert caught.value.code == "550"
    assert caught.value.detail == "550 5.1.1 No such user here"
    assert sink.messages == []


def test_a_451_recipient_is_temporary(sink: SmtpSink) -> None:
    sink.refuse_next(451, "4.3.0 Mailbox busy, try later")

    with pytest.raises(TemporaryFailure) as caught:
        SmtpProvider(sink.url, timeout=2).send(email())

    assert caught.value.code == "451"
    assert sink.messages == []


@pytest.mark.parametrize(
    ("stage", "code", "expected"),
    [
        ("mail", 553, Rejected),
        ("mail", 421, TemporaryFailure),
        ("data", 554, Rejected),
        ("data", 452, TemporaryFailure),
    ],
)
def test_refusals_of_the_sender_or_the_content(
    sink: SmtpSink, stage: str, code: int, expected: type[Exception]
) -> None:
    sink.refuse_next(code, "Nope", at=stage)  # type: ignore[arg-type]

    with pytest.raises(expected) as caught:
        SmtpProvider(sink.url, timeout=2).send(email())

    assert caught.value.code == str(code)  # type: ignore[attr-defined]


def test_the_next_email_goes_after_a_refusal(sink: SmtpSink) -> None:
    provider = SmtpProvider(sink.url, timeout=2)
    sink.refuse_next(451)
    with pytest.raises(TemporaryFailure):
        provider.send(email())

    provider.send(email())

    assert len(sink.messages) == 1


def test_a_closed_port_is_temporary() -> None:
    provider = SmtpProvider(f"smtp://127.0.0.1:{closed_port()}/?from=noreply@relay.example", timeout=2)

    with pytest.raises(TemporaryFailure) as caught:
        provider.send(email())

    assert (caught.value.title, caught.value.detail) == (
        "Could not reach the mail server",
        "Connection refused",
    )


def test_a_server_that_never_greets_is_temporary() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts the TCP connection, never says 220
        port = silent.getsockname()[1]
        provider = SmtpProvider(f"smtp://127.0.0.1:{port}/?from=noreply@relay.example", timeout=0.3)

        with pytest.raises(TemporaryFailure) as caught:
            provider.send(email())

    assert caught.value.title == "The mail server did not answer in time"


def test_a_server_that_goes_quiet_after_the_data_is_an_unknown_outcome(sink: SmtpSink) -> None:
    # The server keeps the email and only then stops answering: resending would deliver it twice.
    sink.stall_next(1.5)
    provider = SmtpProvider(sink.url, timeout=0.3)

    with pytest.raises(OutcomeUnknown) as caught:
        provider.send(email())

    assert caught.value.title == "The mail server stopped answering"
    assert len(sink.messages) == 1


def test_log_provider_logs_and_returns_an_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="relay.email"):
        provider_id = LogEmailProvider().send(email())

    assert provider_id.startswith("log-")
    [record] = [r for r in caplog.records if r.name == "relay.email"]
    text = record.getMessage()
    for expected in (
        "ada@example.com",
        "Acme Recruiting",
        "Your interview at Acme",
        "Could you come in",
        provider_id,
    ):
        assert expected in text


def test_from_config_picks_the_provider(sink: SmtpSink) -> None:
    assert isinstance(from_config({"SMTP_URL": None}), LogEmailProvider)
    assert isinstance(from_config({}), LogEmailProvider)
    provider = from_config({"SMTP_URL": sink.url, "SMTP_TIMEOUT": "3"})
    assert isinstance(provider, SmtpProvider)
    assert provider.timeout == 3
    assert from_config({"SMTP_URL": sink.url}).timeout == 10  # type: ignore[union-attr]


def test_smtp_urls_are_read_fully() -> None:
    settings = SmtpSettings.from_url(
        "smtp://mailer%40acme:p%2Fss@mail.acme.example/?from=noreply@acme.example&starttls=1"
    )
    assert settings == SmtpSettings(
        host="mail.acme.example",
        port=587,
        from_address="noreply@acme.example",
        username="mailer@acme",
        password="p/ss",
        starttls=True,
    )
    tls = SmtpSettings.from_url("smtps://u:p@mail.acme.example/?from=noreply@acme.example")
    assert (tls.port, tls.implicit_tls, tls.starttls) == (465, True, False)
    assert SmtpSettings.from_url("smtp://localhost:2525?from=a@b.example").port == 2525


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://mail.example/?from=a@b.example", "smtp://"),
        ("smtp://mail.example/", "from="),
        ("smtps://mail.example/?from=a@b.example&starttls=1", "starttls"),
        ("smtp:///?from=a@b.example", "host"),
    ],
)
def test_bad_smtp_urls_say_what_is_wrong(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        SmtpProvider(url)


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_tls_and_login(tls: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_smtp_sink(tls=tls, credentials=("mailer@acme", "p/ss word")) as sink:  # type: ignore[arg-type]
        monkeypatch.setenv("SSL_CERT_FILE", str(sink.ca_file))
        assert sink.url.startswith("smtps://" if tls == "implicit" else "smtp://")

        provider_id = SmtpProvider(sink.url, timeout=2).send(email())

        assert sink.messages[0].message["Message-ID"] == provider_id


def test_a_wrong_password_is_temporary(monkeypatch: pytest.MonkeyPatch) -> None:
    # Our settings are wrong, not the email: it should go once an operator fixes SMTP_URL.
    with running_smtp_sink(tls="starttls", credentials=("mailer", "right")) as sink:
        monkeypatch.setenv("SSL_CERT_FILE", str(sink.ca_file))
        url = sink.url.replace("mailer:right@", "mailer:wrong@")

        with pytest.raises(TemporaryFailure) as caught:
            SmtpProvider(url, timeout=2).send(email())

        assert caught.value.code == "535"
        assert sink.messages == []


def test_an_untrusted_certificate_is_temporary() -> None:
    with running_smtp_sink(tls="implicit") as sink, pytest.raises(TemporaryFailure):
        SmtpProvider(sink.url, timeout=2).send(email())
