"""VonageProvider against the fake Messages API: the real SDK, real HTTPS, real JWTs; nothing mocked."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fake_vonage import FakeVonage
from webapp.config import ConfigError
from webapp.providers.base import Outbound, OutcomeUnknown, Rejected, TemporaryFailure
from webapp.providers.vonage.sending import VonageSender as VonageProvider
from webapp.providers.vonage.sending import from_config

TO = "+447400123456"
FROM = "+4915112345678"


@pytest.fixture
def provider(fake: FakeVonage) -> Iterator[VonageProvider]:
    provider = VonageProvider(fake.application_id, str(fake.private_key_path), fake.api_host, timeout=2)
    yield provider
    provider.close()


def outbound(channel: str = "sms", message_id: int = 41, body: str = "Hello Ada, are you free on Monday?"):
    return Outbound(message_id=message_id, channel=channel, to=TO, sender=FROM, body=body)


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_vonage_receives_exactly_this_json(fake: FakeVonage, provider: VonageProvider, channel: str) -> None:
    provider.send(outbound(channel))

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {
        "to": "447400123456",
        "from": "4915112345678",
        "text": "Hello Ada, are you free on Monday?",
        "channel": channel,
        "message_type": "text",
        "client_ref": "41",
    }


def test_the_jwt_is_rs256_signed_with_the_application_key(fake: FakeVonage, provider: VonageProvider) -> None:
    provider.send(outbound())

    [request] = fake.requests
    assert request.jwt_verified, request.jwt_error
    token = request.headers["Authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    key = serialization.load_pem_private_key(fake.private_key_path.read_bytes(), password=None)
    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"])
    assert claims["application_id"] == fake.application_id
    assert claims["exp"] > time.time()


def test_one_jwt_serves_every_thread_for_its_reuse_time_then_a_new_one_is_signed(
    fake: FakeVonage, provider: VonageProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.send(outbound(message_id=1))
    other = threading.Thread(target=provider.send, args=(outbound(message_id=2),))  # a client of its own
    other.start()
    other.join()
    first, second = (r.headers["Authorization"] for r in fake.requests)
    assert first == second and all(r.jwt_verified for r in fake.requests)

    from webapp.providers.vonage import sending

    monkeypatch.setattr(sending, "JWT_REUSE_SECONDS", 0.0)
    provider.send(outbound(message_id=3))  # each request past the reuse time signs anew (a new jti)
    provider.send(outbound(message_id=4))
    third, fourth = (r.headers["Authorization"] for r in fake.requests[2:])
    assert len({first, third, fourth}) == 3
    assert all(r.jwt_verified for r in fake.requests)
    claims = [r.jwt_claims for r in fake.requests]
    assert claims[3]["exp"] - claims[3]["iat"] == 900 and claims[3]["exp"] > time.time() + 800


def test_send_returns_the_message_uuid(fake: FakeVonage, provider: VonageProvider) -> None:
    first = provider.send(outbound(message_id=1))
    second = provider.send(outbound(message_id=2))

    assert [first, second] == [r.response_body["message_uuid"] for r in fake.requests]
    assert first != second
    fake.respond(202, {"message_uuid": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"})
    assert provider.send(outbound()) == "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


@pytest.mark.parametrize(
    ("status", "title", "detail"),
    [
        (401, "Unauthorized", "You did not provide correct credentials."),
        (403, "Forbidden", "Your account does not have permission to perform this action."),
        (402, "Low balance", "This request could not be performed due to your account balance being low."),
        (422, "Invalid sender", "The `from` parameter is invalid for the given channel."),
    ],
)
def test_a_4xx_is_rejected_with_vonages_words(
    fake: FakeVonage, provider: VonageProvider, status: int, title: str, detail: str
) -> None:
    fake.fail(status, title, detail)

    with pytest.raises(Rejected) as caught:
        provider.send(outbound())

    assert (caught.value.title, caught.value.detail, caught.value.code) == (title, detail, str(status))
    assert len(fake.requests) == 1


def test_invalid_parameters_are_named_in_the_detail(fake: FakeVonage, provider: VonageProvider) -> None:
    fake.fail(
        422,
        "Invalid params",
        "The value of one or more parameters is invalid.",
        invalid_parameters=[{"name": "to", "reason": "Invalid number"}],
    )

    with pytest.raises(Rejected) as caught:
        provider.send(outbound())

    assert caught.value.detail == "The value of one or more parameters is invalid. (to: Invalid number)"


def test_a_4xx_without_a_problem_body_falls_back_to_the_status_text(
    fake: FakeVonage, provider: VonageProvider
) -> None:
    fake.respond(404)

    with pytest.raises(Rejected) as caught:
        provider.send(outbound())

    assert (caught.value.title, caught.value.code) == ("Not Found", "404")


def test_a_429_is_temporary_and_not_retried_by_the_sdk(fake: FakeVonage, provider: VonageProvider) -> None:
    fake.fail(429, "Rate Limit Hit", "Please wait, then retry your request")

    with pytest.raises(TemporaryFailure) as caught:
        provider.send(outbound())

    assert (caught.value.title, caught.value.code) == ("Rate Limit Hit", "429")
    assert len(fake.requests) == 1  # the SDK did not retry


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_an_unknown_outcome(
    fake: FakeVonage, provider: VonageProvider, status: int
) -> None:
    # Vonage had the request and broke while handling it: it may have sent the message anyway.
    fake.fail(status, "Try again", "Later, please.")

    with pytest.raises(OutcomeUnknown) as caught:
        provider.send(outbound())

    assert (caught.value.title, caught.value.detail, caught.value.code) == (
        "Try again",
        "Later, please.",
        str(status),
    )
    assert len(fake.requests) == 1


def test_a_hang_longer_than_the_timeout_is_an_unknown_outcome(fake: FakeVonage) -> None:
    provider = VonageProvider(fake.application_id, str(fake.private_key_path), fake.api_host, timeout=0.5)
    fake.hang(2)

    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as caught:
        provider.send(outbound())

    assert time.monotonic() - started < 1.2
    assert caught.value.title == "Vonage did not answer in time"
    assert len(fake.requests) == 1  # it reached Vonage: that is why it is not "temporary"
    provider.close()


def test_a_server_that_never_accepts_the_connection_is_temporary(fake: FakeVonage) -> None:
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)  # a backlog of 0: after the first queued connection the kernel stops answering SYNs
        port = full.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        provider = VonageProvider(
            fake.application_id,
            str(fake.private_key_path),
            f"127.0.0.1:{port}",
            timeout=5,
            connect_timeout=0.3,
        )
        try:
            with pytest.raises((TemporaryFailure, OutcomeUnknown)) as caught:
                provider.send(outbound())
        finally:
            for filler in fillers:
                filler.close()
    # A TLS handshake that never completes is also "never connected"; both say nothing was sent.
    assert isinstance(caught.value, TemporaryFailure), caught.value
    assert (caught.value.title, caught.value.detail) == (
        "Could not reach Vonage",
        "No connection within 0.3 seconds.",
    )


def test_a_refused_connection_is_temporary(tmp_path: Path, fake: FakeVonage) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    provider = VonageProvider(fake.application_id, str(fake.private_key_path), f"127.0.0.1:{closed_port}")

    with pytest.raises(TemporaryFailure) as caught:
        provider.send(outbound())

    assert (caught.value.title, caught.value.detail) == ("Could not reach Vonage", "Connection refused")


def test_a_dropped_connection_is_an_unknown_outcome_and_not_resent(
    fake: FakeVonage, provider: VonageProvider
) -> None:
    # The SDK re-sends after RemoteDisconnected up to pool_maxsize times; for a POST that can double-text.
    fake.drop()

    with pytest.raises(OutcomeUnknown) as caught:
        provider.send(outbound())

    assert caught.value.title == "The connection to Vonage broke"

    assert len(fake.requests) == 1


def test_an_untrusted_certificate_is_temporary(fake: FakeVonage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    provider = VonageProvider(fake.application_id, str(fake.private_key_path), fake.api_host)

    with pytest.raises(TemporaryFailure):
        provider.send(outbound())

    assert fake.requests == []


def test_a_token_signed_with_another_key_is_rejected(tmp_path: Path, fake: FakeVonage) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    provider = VonageProvider(fake.application_id, pem, fake.api_host)

    with pytest.raises(Rejected) as caught:
        provider.send(outbound())

    assert caught.value.code == "401"
    assert not fake.requests[0].jwt_verified


def test_a_pkcs1_key_in_a_file_without_extension_works(tmp_path: Path, fake: FakeVonage) -> None:
    # The SDK itself takes a path only when it has an extension, and refuses PKCS#1 given as text.
    key = serialization.load_pem_private_key(fake.private_key_path.read_bytes(), password=None)
    path = tmp_path / "private"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    assert path.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    provider = VonageProvider(fake.application_id, str(path), fake.api_host)

    provider.send(outbound())

    assert fake.requests[0].jwt_verified


def test_a_number_vonage_cannot_take_is_rejected_without_a_call(
    fake: FakeVonage, provider: VonageProvider
) -> None:
    with pytest.raises(Rejected) as caught:
        provider.send(Outbound(message_id=1, channel="sms", to="+0123", sender=FROM, body="Hi"))

    assert caught.value.title == "Invalid message"
    assert "to" in caught.value.detail
    assert fake.requests == []


def test_email_is_not_a_vonage_channel(provider: VonageProvider) -> None:
    with pytest.raises(ValueError, match="email"):
        provider.send(Outbound(message_id=1, channel="email", to="ada@example.com", sender="Acme", body="Hi"))


def test_sends_from_many_threads_each_arrive_once(fake: FakeVonage, provider: VonageProvider) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def send(message_id: int) -> None:
        try:
            results[message_id] = provider.send(outbound(message_id=message_id))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    requests = fake.requests
    assert sorted(int(r.body["client_ref"]) for r in requests) == list(range(8))
    assert all(r.jwt_verified for r in requests)
    by_ref = {int(r.body["client_ref"]): r.response_body["message_uuid"] for r in requests}
    assert results == by_ref


def test_from_config_builds_the_provider(fake: FakeVonage) -> None:
    provider = from_config(
        {
            "VONAGE_APPLICATION_ID": fake.application_id,
            "VONAGE_PRIVATE_KEY_PATH": str(fake.private_key_path),
            "VONAGE_API_HOST": fake.api_host,
            "VONAGE_TIMEOUT": "2.5",
        }
    )

    assert (provider.api_host, provider.timeout) == (fake.api_host, 2.5)
    assert provider.send(outbound()) == fake.requests[0].response_body["message_uuid"]


def test_from_config_defaults_the_timeout(fake: FakeVonage) -> None:
    provider = from_config(
        {
            "VONAGE_APPLICATION_ID": fake.application_id,
            "VONAGE_PRIVATE_KEY_PATH": str(fake.private_key_path),
            "VONAGE_API_HOST": fake.api_host,
        }
    )

    assert provider.timeout == 10


@pytest.mark.parametrize("missing", ["VONAGE_APPLICATION_ID", "VONAGE_PRIVATE_KEY_PATH"])
def test_from_config_names_a_missing_setting(fake: FakeVonage, missing: str) -> None:
    config = {
        "VONAGE_APPLICATION_ID": fake.application_id,
        "VONAGE_PRIVATE_KEY_PATH": str(fake.private_key_path),
        "VONAGE_API_HOST": fake.api_host,
        missing: None,
    }

    with pytest.raises(ConfigError, match=missing):
        from_config(config)


def test_an_unreadable_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="private key"):
        VonageProvider("app-id", str(tmp_path / "missing.key"), "api.nexmo.com")
