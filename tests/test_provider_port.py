"""Providers are a port: each sending number records its provider and sends through it; a second provider
is one package and one setting (tests/fake_carrier); the simulator and Vonage implement the whole port
(webhooks into our own types, the numbers account); nothing outside the Vonage package speaks Vonage."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests import webhook_support
from tests.conftest import FILE_KEY, Auth, csrf_from
from tests.fake_carrier import FakeCarrier
from webapp.accounts import permissions
from webapp.config import BUILT_IN_PROVIDERS, ConfigError, from_environment
from webapp.extensions import db
from webapp.messaging import compose, dispatch, simulate
from webapp.messaging.subjects import of_application
from webapp.models import Message, SendingNumber
from webapp.numbers import pool
from webapp.providers import base, registry
from webapp.providers.base import AvailableNumber, BadPayload, NumberNotBought, NumbersUnavailable
from webapp.providers.simulator import SimulatorProvider
from webapp.providers.vonage import Vonage
from webapp.providers.vonage import numbers as vonage_numbers

ROOT = Path(__file__).resolve().parent.parent
CARRIER_TOKEN = "carrier-token-0123456789"
DE_NUMBER, GB_NUMBER = "+4915123456700", "+447400123400"
LENA, OLIVER = "+4915123456789", "+447400123456"


@pytest.fixture
def app_config(request) -> dict[str, object]:
    config: dict[str, object] = {
        "TEXTING_PROVIDERS": {**BUILT_IN_PROVIDERS, "carrier": "tests.fake_carrier"},
        "CARRIER_TOKEN": CARRIER_TOKEN,
    }
    if "fake" in request.fixturenames:
        fake = request.getfixturevalue("fake")
        config.update(
            MESSAGING_PROVIDER="vonage",
            VONAGE_API_HOST=fake.api_host,
            VONAGE_APPLICATION_ID=fake.application_id,
            VONAGE_PRIVATE_KEY_PATH=str(fake.private_key_path),
            VONAGE_REST_HOST=fake.api_host,
            VONAGE_API_KEY=fake.api_key,
            VONAGE_API_SECRET=fake.api_secret,
            VONAGE_TIMEOUT=2,
        )
    return config


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", sender_name="Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    staff = f.user(None, "csm@relay.test", is_staff=True)
    job = f.job(org, team=[user], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile=LENA))
    oliver = f.application(job, f.candidate(org, "Oliver", "Smith", mobile=OLIVER))
    f.credits(org, 20)
    db.session.commit()
    return {"org": org, "user": user, "staff": staff, "lena": lena, "oliver": oliver}


def carrier(app) -> FakeCarrier:
    provider = registry.texting(app, "carrier")
    assert isinstance(provider, FakeCarrier)
    return provider


def send(world, who: str, body: str = "Hi %FIRSTNAME%") -> Message:
    message = compose.compose(db.session, world["user"], of_application(world[who]), "sms", body)
    db.session.commit()
    dispatch.deliver(message.id)
    db.session.expire_all()
    return db.session.get(Message, message.id)


def carrier_post(client, kind: str, payload: dict, token: str = CARRIER_TOKEN):
    return client.post(
        f"/webhooks/carrier/{kind}",
        data=json.dumps(payload).encode(),
        headers={"X-Carrier-Token": token, "Content-Type": "application/json"},
    )


# --- The port ------------------------------------------------------------------------------------


def port_members() -> set[str]:
    members = set()
    for protocol in (base.Provider, base.Sender):
        members |= {n for n in vars(protocol) if not n.startswith("_")} | set(protocol.__annotations__)
    return members


def test_every_texting_provider_has_the_whole_port(app) -> None:
    wanted = port_members()
    assert {"send", "open", "close", "verify", "parse_inbound", "parse_status", "numbers", "label"} <= wanted
    account = {"owned", "search", "buy"}
    for name in ("vonage", "simulator", "carrier"):
        provider = registry.texting(app, name)
        assert {m for m in wanted if not hasattr(provider, m)} == set(), name
        assert {m for m in account if not callable(getattr(provider.numbers, m, None))} == set(), name


def test_a_provider_name_that_is_not_configured_is_refused(app) -> None:
    with pytest.raises(ConfigError, match="No texting provider is called 'nobody'"):
        registry.texting(app, "nobody")


def test_the_providers_come_from_the_settings(tmp_path) -> None:
    env = {
        "TEXTING_PROVIDERS": "carrier=tests.fake_carrier, other=some.package",
        "MESSAGING_PROVIDER": "carrier",
    }
    config = from_environment(str(tmp_path), env)
    assert config["TEXTING_PROVIDERS"] == {
        **BUILT_IN_PROVIDERS,
        "carrier": "tests.fake_carrier",
        "other": "some.package",
    }
    assert from_environment(str(tmp_path), {})["TEXTING_PROVIDERS"] == BUILT_IN_PROVIDERS
    with pytest.raises(ConfigError, match="MESSAGING_PROVIDER must be simulator or vonage, not 'carrier'"):
        from_environment(str(tmp_path), {"MESSAGING_PROVIDER": "carrier"})
    for bad in ("carrier", "Carrier=x.y", "=x.y", "carrier="):
        with pytest.raises(ConfigError, match="TEXTING_PROVIDERS"):
            from_environment(str(tmp_path), {"TEXTING_PROVIDERS": bad})


# --- Each number sends through its own provider ---------------------------------------------------


def test_a_second_provider_from_the_settings_carries_the_numbers_that_record_it(app, world, fake) -> None:
    org = world["org"]
    vonage_number = f.number(org, DE_NUMBER)
    carrier_number = f.number(org, GB_NUMBER, provider="carrier")
    db.session.commit()
    assert (vonage_number.provider, carrier_number.provider) == ("vonage", "carrier")

    to_lena, to_oliver = send(world, "lena"), send(world, "oliver")

    # Lena's SMS leaves from the German number, through Vonage (the fake over HTTPS) …
    [request] = fake.requests
    assert (request.body["from"], request.body["to"]) == ("4915123456700", "4915123456789")
    assert to_lena.status == "submitted" and to_lena.provider_id == request.response_body["message_uuid"]
    # … and Oliver's from the British number, through the carrier alone.
    [outbound] = carrier(app).sent
    assert (outbound.sender, outbound.to, outbound.body, outbound.message_id) == (
        GB_NUMBER,
        OLIVER,
        "Hi Oliver",
        to_oliver.id,
    )
    assert to_oliver.status == "submitted" and to_oliver.provider_id.startswith("carrier-")


def test_the_second_providers_webhooks_are_its_own(app, client, world) -> None:
    f.number(world["org"], GB_NUMBER, provider="carrier")
    db.session.commit()
    sent = send(world, "oliver")
    report = {"id": sent.provider_id, "state": "DELIVERED", "reference": str(sent.id)}
    assert carrier_post(client, "status", report, token="wrong").status_code == 401
    # Vonage's signature is no signature here, and a state in another provider's words is not known.
    assert webhook_support.post(client, "/webhooks/carrier/status", report).status_code == 401
    assert carrier_post(client, "status", {**report, "state": "delivered"}).status_code == 400
    assert carrier_post(client, "status", report).status_code == 204
    db.session.expire_all()
    assert db.session.get(Message, sent.id).status == "delivered"

    reply = {"id": str(uuid.uuid4()), "from": OLIVER, "to": GB_NUMBER, "body": "Sounds good", "kind": "text"}
    assert carrier_post(client, "inbound", reply).status_code == 200
    assert carrier_post(client, "inbound", reply).status_code == 204  # the same id again: nothing new
    stored = db.session.scalar(sa.select(Message).where(Message.direction == "inbound"))
    assert (stored.body, stored.from_addr, stored.conversation_id) == (
        "Sounds good",
        OLIVER,
        sent.conversation_id,
    )
    assert client.post("/webhooks/nobody/inbound", data=b"{}").status_code == 404


def test_a_number_belongs_to_the_configured_provider_unless_told(app, world) -> None:
    assert f.number(world["org"], DE_NUMBER).provider == "simulator"
    app.config["MESSAGING_PROVIDER"] = "carrier"
    assert f.number(world["org"], GB_NUMBER).provider == "carrier"
    typed = pool.add(db.session, world["staff"], world["org"], "+12015550100", sms=True, whatsapp=False)
    picked = pool.add(
        db.session, world["staff"], world["org"], "+12015550111", sms=True, whatsapp=False, provider="vonage"
    )
    assert (typed.provider, picked.provider) == ("carrier", "vonage")


def test_staff_pick_numbers_from_every_account_and_each_records_its_provider(
    app, client, world, fake
) -> None:
    fake.own("+33612345600")
    carrier(app).numbers.own("+447400123499")
    Auth(client).login("csm@relay.test")
    path = f"/staff/organizations/{world['org'].id}"
    page = client.get(path).get_data(as_text=True)
    assert "+33 6 12 34 56 00" in page and "+44 7400 123499" in page
    token = csrf_from(client, "/staff/")
    for e164 in ("+33612345600", "+447400123499"):
        added = client.post(f"{path}/numbers", data={"csrf_token": token, "owned": e164, "sms": "y"})
        assert added.status_code == 303
    typed = client.post(f"{path}/numbers", data={"csrf_token": token, "number": "+12015550100", "sms": "y"})
    assert typed.status_code == 303
    recorded = dict(db.session.execute(sa.select(SendingNumber.e164, SendingNumber.provider)).all())
    assert recorded == {"+33612345600": "vonage", "+447400123499": "carrier", "+12015550100": "vonage"}
    page = client.get(path).get_data(as_text=True)
    assert "Every number on the Vonage account is in a pool already." in page
    assert "Every number on the Fake Carrier account is in a pool already." in page


# --- The simulator implements the whole port ------------------------------------------------------


def simulator(app) -> SimulatorProvider:
    provider = registry.texting(app, "simulator")
    assert isinstance(provider, SimulatorProvider)
    return provider


def test_the_simulators_webhooks_are_signed_and_read_into_our_types(app, client, world) -> None:
    f.number(world["org"], DE_NUMBER)
    db.session.commit()
    sent = send(world, "lena")
    sim = simulator(app)
    body, headers = sim.signed(
        {"message_uuid": sent.provider_id, "status": "read", "client_ref": str(sent.id)}
    )
    assert sim.verify(headers, body) and not sim.verify(headers, body + b" ") and not sim.verify({}, body)
    assert client.post("/webhooks/simulator/status", data=body + b" ", headers=headers).status_code == 401
    assert client.post("/webhooks/simulator/status", data=body, headers=headers).status_code == 204
    db.session.expire_all()
    assert db.session.get(Message, sent.id).status == "read"

    failed = sim.parse_status(
        sim.signed(
            {
                "message_uuid": "m-1",
                "status": "undeliverable",
                "timestamp": "2026-11-23T10:00:05Z",
                "error": {"code": "1340", "title": "Outside of the allowed window", "detail": "d"},
            }
        )[0]
    )
    assert (failed.status, failed.error_code, failed.error_title, failed.timestamp.isoformat()) == (
        "undeliverable",
        "1340",
        "Outside of the allowed window",
        "2026-11-23T10:00:05+00:00",
    )
    message = sim.parse_inbound(
        json.dumps(
            {"message_uuid": "m-2", "channel": "whatsapp", "from": "0049 1512 3456789", "to": DE_NUMBER}
            | {"text": "Hallo", "profile_name": "Lena"}
        ).encode()
    )
    assert (message.sender, message.recipient, message.channel, message.profile_name) == (
        LENA,
        DE_NUMBER,
        "whatsapp",
        "Lena",
    )
    for broken, reason in (
        (b"[]", "not a JSON object"),
        (
            b'{"channel": "sms", "message_uuid": "x", "from": "+4915123456789", "to": "+4915123456700"}',
            "text",
        ),
        (b'{"channel": "fax", "text": "hi"}', "channel 'fax' is not handled"),
    ):
        with pytest.raises(BadPayload, match=reason):
            sim.parse_inbound(broken)
    with pytest.raises(BadPayload, match="status 'failed' is not known"):
        sim.parse_status(b'{"message_uuid": "m", "status": "failed"}')


def test_a_simulated_reply_goes_through_the_simulators_webhook(app, world) -> None:
    f.number(world["org"], DE_NUMBER)
    db.session.commit()
    sent = send(world, "lena")
    app.config["VONAGE_SIGNATURE_SECRET"] = ""  # Vonage's webhooks would refuse everything now
    assert simulate.reply(app, of_application(world["lena"]), sent.conversation, "sms", "Ja, gerne") == 200
    reply = db.session.scalar(sa.select(Message).where(Message.direction == "inbound"))
    assert (reply.body, reply.from_addr, reply.to_addr) == ("Ja, gerne", LENA, DE_NUMBER)
    assert reply.conversation_id == sent.conversation_id


def test_the_simulators_numbers_account_offers_buys_and_owns(app, client, world) -> None:
    account = simulator(app).numbers
    assert account.owned() == []
    offered = account.search("FR", ("SMS",))
    assert len(offered) == 10 and all(n.country == "FR" and n.e164.startswith("+336") for n in offered)
    assert account.search("FR", ("FAX",)) == [] and account.search("XX") == []
    bought = account.buy(offered[0])
    assert account.owned() == [bought] and bought.e164 == offered[0].e164 and bought.sms
    assert offered[0] not in account.search("FR")
    with pytest.raises(NumberNotBought):
        account.buy(offered[0])
    with pytest.raises(NumberNotBought):
        account.buy(AvailableNumber("+33612345678", "FR", ("SMS",), "mobile"))

    # The staff page offers what the simulator's account owns, and the number records the simulator.
    Auth(client).login("csm@relay.test")
    path = f"/staff/organizations/{world['org'].id}"
    assert re.search(rf'<option value="\{bought.e164}"', client.get(path).get_data(as_text=True))
    token = csrf_from(client, "/staff/")
    assert (
        client.post(
            f"{path}/numbers", data={"csrf_token": token, "owned": bought.e164, "sms": "y"}
        ).status_code
        == 303
    )
    number = db.session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == bought.e164))
    assert (number.provider, number.country, number.organization_id) == ("simulator", "FR", world["org"].id)


# --- Vonage's numbers account: search and buy against the fake Numbers API --------------------------


def test_vonage_searches_and_buys_numbers(app, fake) -> None:
    fake.offer("+447400123401", "+447400123402", features=("SMS", "VOICE"))
    fake.offer("+447400123403", features=("VOICE",))
    fake.offer("+33612345601")
    account = registry.texting(app, "vonage").numbers
    offered = account.search("GB", ("SMS",))
    assert [n.e164 for n in offered] == ["+447400123401", "+447400123402"]
    assert (offered[0].country, offered[0].features, offered[0].monthly_cost) == (
        "GB",
        ("SMS", "VOICE"),
        "1.25",
    )
    search = next(r for r in fake.requests if r.path.startswith("/number/search"))
    assert "country=GB" in search.path and "features=SMS" in search.path
    assert search.headers["Authorization"].startswith("Basic ")

    bought = account.buy(offered[0])
    assert bought.e164 == "+447400123401" and bought.sms
    [purchase] = [r for r in fake.requests if r.method == "POST"]
    assert purchase.path == "/number/buy" and purchase.body == {"country": ["GB"], "msisdn": ["447400123401"]}
    assert [n.e164 for n in account.owned()] == ["+447400123401"]
    with pytest.raises(NumberNotBought, match=r"Vonage would not sell \+44 7400 123401 \(method failed\)"):
        account.buy(offered[0])


def test_vonage_numbers_unavailable_say_why(app, fake) -> None:
    account = Vonage({**app.config, "VONAGE_API_SECRET": "wrong"}).numbers
    with pytest.raises(NumbersUnavailable, match="refused VONAGE_API_KEY"):
        account.search("GB")
    with pytest.raises(NumbersUnavailable, match="refused VONAGE_API_KEY"):
        account.buy(AvailableNumber("+447400123401", "GB", ("SMS",), "mobile-lvn"))
    unset = Vonage({**app.config, "VONAGE_API_KEY": None}).numbers
    with pytest.raises(NumbersUnavailable, match="are not set") as refused:
        unset.owned()
    assert refused.value.set_up is False
    with pytest.raises(ValueError, match="no feature FAX"):
        vonage_numbers.search_numbers(app.config, "GB", ("FAX",))


# --- Vonage stays in its package -----------------------------------------------------------------


def test_nothing_outside_the_vonage_package_speaks_vonage() -> None:
    """Its settings' names (VONAGE_…) are configuration, and config.py names the built-in providers."""
    allowed = {ROOT / "webapp" / "config.py"}
    offending = []
    for path in sorted((ROOT / "webapp").rglob("*.py")):
        if path in allowed or (ROOT / "webapp" / "providers" / "vonage") in path.parents:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"vonage", re.sub(r"\bVONAGE_[A-Z_]+\b", "", line), re.IGNORECASE):
                offending.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offending == []


def test_reading_vonage_webhooks_and_an_account_without_keys_load_no_sdk() -> None:
    from tests.test_startup import loaded_after

    code = f"""
import hashlib, json, time, jwt
from webapp import create_app
from webapp.extensions import db
from webapp.providers import registry
app = create_app({{"TESTING": True, "SECRET_KEY": "k" * 40, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                  "VONAGE_SIGNATURE_SECRET": "s" * 40, "RELAY_FILE_KEY": {FILE_KEY!r}}})
with app.app_context():
    db.create_all()
    body = json.dumps({{"message_uuid": "m-1", "status": "delivered"}}).encode()
    claims = {{"iat": int(time.time()), "payload_hash": hashlib.sha256(body).hexdigest()}}
    headers = {{"Authorization": "Bearer " + jwt.encode(claims, "s" * 40, algorithm="HS256")}}
    assert app.test_client().post("/webhooks/vonage/status", data=body, headers=headers).status_code == 204
    try:
        registry.texting(app, "vonage").numbers.owned()
    except Exception as error:
        assert "are not set" in str(error)
"""
    assert loaded_after(code) == []
