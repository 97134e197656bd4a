"""The Vonage webhooks through the real endpoints with real signed tokens."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import factories as f
from tests.conftest import WEBHOOK_SECRET
from tests.webhook_support import inbound, post, status, token
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import checks, compose, dispatch, optouts
from webapp.messaging.subjects import of_application
from webapp.models import Conversation, Message, OptOut

INBOUND = "/webhooks/vonage/inbound"
STATUS = "/webhooks/vonage/status"
OUR = "+4915123456700"
LENA = "+4915123456789"


def make_world() -> dict:
    """Acme with two numbers, Lena's application and one SMS sent to her (tests/test_ingest.py too)."""
    org = f.messaging_org("Acme", sender_name="Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, OUR)
    f.number(org, "+12015550100")
    job = f.job(org, team=[user])
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile=LENA))
    f.credits(org, 10)
    db.session.commit()
    sent = compose.compose(db.session, user, of_application(lena), "sms", "Hi Lena")
    db.session.commit()
    return {"org": org, "user": user, "lena": lena, "sent": sent}


@pytest.fixture
def world(app):
    return make_world()


def count_messages() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Message))


def inbound_messages() -> list[Message]:
    db.session.expire_all()
    return list(
        db.session.scalars(sa.select(Message).where(Message.direction == "inbound").order_by(Message.id))
    )


# --- Signatures ----------------------------------------------------------------------------------


def _forged(kind: str, raw: bytes) -> str:
    if kind == "missing":
        return ""
    if kind == "wrong secret":
        return "Bearer " + token(raw, secret="another-secret-that-is-long-enough-0123456789")
    if kind == "tampered":
        return "Bearer " + token(raw + b" ")
    if kind == "HS512":  # a valid token of another algorithm
        return "Bearer " + token(raw, secret=WEBHOOK_SECRET * 2, algorithm="HS512")
    if kind == "none":
        claims = {"iat": 1, "payload_hash": __import__("hashlib").sha256(raw).hexdigest()}
        return "Bearer " + jwt.encode(claims, None, algorithm="none")
    if kind == "malformed":
        return "Bearer not.a.token"
    if kind == "no hash":
        return "Bearer " + jwt.encode({"iat": 1}, WEBHOOK_SECRET)
    if kind == "basic":
        return "Basic dXNlcjpwYXNz"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["missing", "wrong secret", "tampered", "HS512", "none", "malformed", "no hash", "basic"]
)
@pytest.mark.parametrize("path", [INBOUND, STATUS])
def test_unsigned_or_forged_is_401_and_stores_nothing(client, world, kind, path) -> None:
    payload = inbound(OUR, LENA, "STOP") if path == INBOUND else status("x", "delivered")
    raw = json.dumps(payload).encode()
    before = count_messages()
    response = post(client, path, payload, body=raw, auth=_forged(kind, raw))
    assert response.status_code == 401
    assert count_messages() == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OptOut)) == 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"channel": "sms", "message_type": "text", "to": "4915123456700"}).encode(), "missing"),
        (json.dumps(inbound(OUR, LENA, channel="viber_service")).encode(), "not handled"),
        (json.dumps({**inbound(OUR, LENA), "from": "not-a-number"}).encode(), "not a phone number"),
        (json.dumps({**inbound(OUR, LENA), "timestamp": "yesterday"}).encode(), "ISO 8601"),
    ],
)
def test_signed_but_malformed_is_400(client, world, payload, reason) -> None:
    before = count_messages()
    response = post(client, INBOUND, None, body=payload)
    assert response.status_code == 400 and reason in response.get_json()["error"]
    assert count_messages() == before


def test_status_with_unknown_value_is_400(client, world) -> None:
    response = post(client, STATUS, status("abc", "failed"))
    assert response.status_code == 400 and "not known" in response.get_json()["error"]


def test_body_over_64_kb_is_413(client, world) -> None:
    payload = inbound(OUR, LENA, "x" * (65 * 1024))
    assert post(client, INBOUND, payload).status_code == 413
    assert inbound_messages() == []


def test_a_webhook_neither_reads_nor_saves_the_cookie_session(client, auth, world) -> None:
    """Issue #19: a provider sends no cookie and a webhook is nobody's session: Flask's null session,
    not the signed cookie read, and nothing saved (no Set-Cookie, no Vary: Cookie)."""
    auth.login(world["user"].email)  # a cookie the webhook must ignore
    response = post(client, INBOUND, inbound(OUR, LENA, "Hi"))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.headers.get("Vary", "")
    page = client.get("/jobs")  # the pages' sessions are as before: still signed in
    assert page.status_code == 200 and "Cookie" in page.headers.get("Vary", "")


def test_an_error_page_for_a_webhook_still_renders(client, world) -> None:
    # Its template writes a CSRF token into the session: an empty one, not Flask's null session.
    missing = client.post("/webhooks/nobody/inbound", data=b"{}")
    assert missing.status_code == 404 and "Set-Cookie" not in missing.headers


def test_webhooks_need_no_csrf_but_the_rest_still_does(client, world) -> None:
    assert post(client, INBOUND, inbound(OUR, LENA)).status_code == 200
    assert client.post("/logout").status_code == 400


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        (0, True),
        (4 * 60, True),  # Vonage's retries within five minutes
        (-20, True),  # a clock a little ahead of ours
        (5 * 60 + 5, False),
        (365 * 24 * 3600, False),  # a token captured a year ago
        (-5 * 60, False),  # from the future
    ],
)
@pytest.mark.parametrize("path", [INBOUND, STATUS])
def test_tokens_age_out_after_five_minutes(client, world, path, age, accepted) -> None:
    payload = inbound(OUR, LENA, "STOP") if path == INBOUND else status(str(uuid.uuid4()), "delivered")
    raw = json.dumps(payload).encode()
    before = count_messages()
    auth = "Bearer " + token(raw, iat=int(time.time()) - age)
    response = post(client, path, payload, body=raw, auth=auth)
    if accepted:
        assert response.status_code in (200, 204)
        assert count_messages() == before + (1 if path == INBOUND else 0)
    else:
        assert response.status_code == 401
        assert count_messages() == before
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OptOut)) == 0


@pytest.mark.parametrize("iat", ["1700000000", True, None, 1.5e300, [1]])
def test_an_iat_that_is_not_a_time_is_refused(client, world, iat) -> None:
    raw = json.dumps(inbound(OUR, LENA)).encode()
    response = post(client, INBOUND, None, body=raw, auth="Bearer " + token(raw, iat=iat))
    assert response.status_code == 401


# --- Inbound matching ----------------------------------------------------------------------------


def test_a_reply_joins_the_conversation_that_wrote_from_that_number(client, world) -> None:
    response = post(client, INBOUND, inbound(OUR, LENA, "Tuesday works!"))
    assert response.status_code == 200
    [reply] = inbound_messages()
    assert reply.conversation_id == world["sent"].conversation_id
    assert (reply.body, reply.from_addr, reply.to_addr, reply.status) == (
        "Tuesday works!",
        LENA,
        OUR,
        "received",
    )


def test_the_same_message_uuid_is_stored_once(client, world) -> None:
    payload = inbound(OUR, LENA, "Once")
    assert post(client, INBOUND, payload).status_code == 200
    assert post(client, INBOUND, payload).status_code == 204
    assert len(inbound_messages()) == 1


def test_a_known_number_without_conversation_waits_unmatched(client, world) -> None:
    post(client, INBOUND, inbound("+12015550100", LENA, "Wrong number?"))  # we never wrote from this one
    post(client, INBOUND, inbound(OUR, "+447400123456", "Who is this?"))  # nor to this sender
    messages = inbound_messages()
    assert len(messages) == 2
    assert all(m.conversation_id is None and m.organization_id == world["org"].id for m in messages)


def test_an_unknown_number_is_kept_too(client, world) -> None:
    assert post(client, INBOUND, inbound("+33612345678", LENA, "Hello?")).status_code == 200
    [m] = inbound_messages()
    assert m.conversation_id is None and m.organization_id is None


def test_whatsapp_media_is_kept_with_its_link(client, world) -> None:
    payload = inbound(OUR, LENA, channel="whatsapp")
    payload.update(message_type="image", image={"url": "https://example.test/cv.png", "caption": "My CV"})
    del payload["text"]
    assert post(client, INBOUND, payload).status_code == 200
    assert inbound_messages()[0].body == "[image] https://example.test/cv.png\nMy CV"


# --- Opt-out -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "  Stop!  ",
        "StopAll",
        "UNSUBSCRIBE.",
        "cancel",
        "End",
        "quit",
        "REVOKE",
        "opt out",
        "Opt-Out",
        "OPT OUT!!",
    ],
)
def test_stop_words_opt_the_number_out(client, world, text) -> None:
    post(client, INBOUND, inbound(OUR, LENA, text))
    row = optouts.active(db.session, world["org"].id, LENA)
    assert row is not None and row.source_message_id == inbound_messages()[0].id
    with pytest.raises(checks.SendRefused, match="opted out"):
        compose.compose(db.session, world["user"], of_application(world["lena"]), "whatsapp", "Still there?")


@pytest.mark.parametrize("text", ["please stop calling me", "STOP IT", "non-stop", "STOPP"])
def test_stop_inside_a_sentence_is_just_a_message(client, world, text) -> None:
    post(client, INBOUND, inbound(OUR, LENA, text))
    assert optouts.active(db.session, world["org"].id, LENA) is None


def test_start_opts_back_in_and_stop_again_counts(client, world) -> None:
    post(client, INBOUND, inbound(OUR, LENA, "STOP"))
    post(client, INBOUND, inbound(OUR, LENA, "start"))
    assert optouts.active(db.session, world["org"].id, LENA) is None
    compose.compose(db.session, world["user"], of_application(world["lena"]), "sms", "Welcome back")
    db.session.commit()
    post(client, INBOUND, inbound("+12015550100", LENA, "Stop"))  # another of our numbers: same organisation
    assert optouts.active(db.session, world["org"].id, LENA) is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OptOut)) == 1


def test_help_gets_the_company_reply_from_the_same_number(client, world) -> None:
    balance = credits.balance(db.session, world["org"])
    post(client, INBOUND, inbound(OUR, LENA, "help"))
    db.session.expire_all()
    reply = db.session.scalar(
        sa.select(Message).where(Message.direction == "outbound", Message.author_id.is_(None))
    )
    assert reply is not None and reply.from_addr == OUR and reply.to_addr == LENA
    assert "Acme" in reply.body and "STOP" in reply.body
    assert reply.status in ("submitted", "delivered")  # dispatched after the commit
    assert credits.balance(db.session, world["org"]) == balance - reply.credits


# --- Status --------------------------------------------------------------------------------------


@pytest.fixture
def submitted(world, app):
    app.config["SIMULATOR_DELIVERY_SECONDS"] = 3600  # the test, not the simulator, reports here
    dispatch.deliver(world["sent"].id)
    db.session.expire_all()
    return db.session.get(Message, world["sent"].id)


@pytest.mark.parametrize(
    ("order", "final"),
    [
        (["delivered", "read"], "read"),
        (["read", "delivered", "submitted"], "read"),
        (["delivered", "delivered", "delivered"], "delivered"),
        (["undeliverable", "delivered"], "undeliverable"),
    ],
)
def test_status_moves_only_forward(client, submitted, order, final) -> None:
    for i, value in enumerate(order):
        assert (
            post(client, STATUS, status(submitted.provider_id, value, f"2026-11-23T10:00:0{i}Z")).status_code
            == 204
        )
    db.session.expire_all()
    m = db.session.get(Message, submitted.id)
    assert m.status == final
    if final == "read":
        assert m.delivered_at is not None and m.read_at is not None


def test_rejected_keeps_the_error_in_words_and_refunds(client, world, submitted) -> None:
    before = credits.balance(db.session, world["org"])
    payload = status(
        submitted.provider_id,
        "rejected",
        error={
            "type": "https://developer.vonage.com/api-errors/messages#1340",
            "title": 1340,
            "detail": "Outside of the allowed window",
        },
    )
    post(client, STATUS, payload)
    post(client, STATUS, payload)  # twice: refunded once
    db.session.expire_all()
    m = db.session.get(Message, submitted.id)
    assert (m.status, m.error_code) == ("rejected", "1340")
    assert credits.balance(db.session, world["org"]) == before + m.credits
    from webapp.messaging.status import explain

    assert "outside the 24-hour window" in explain(m).lower()


def test_the_window_error_reads_in_words_on_the_page(client, auth, world, submitted) -> None:
    payload = status(
        submitted.provider_id,
        "rejected",
        error={"type": "x", "title": 1340, "detail": "Outside of the allowed window"},
    )
    post(client, STATUS, payload)
    auth.login(world["user"].email)
    html = client.get(f"/applications/{world['lena'].id}?tab=sms").get_data(as_text=True)
    assert "Not sent: Outside the 24-hour window" in html and "the credits were given back" in html


def test_a_receipt_that_overtakes_the_dispatcher_finds_the_message_by_client_ref(client, world) -> None:
    claimed = dispatch.claim(world["sent"].id)  # the dispatcher is mid-send: no provider id stored yet
    assert claimed == 0  # the claim's token: no try made before
    vonage_uuid = str(uuid.uuid4())
    post(client, STATUS, status(vonage_uuid, "delivered", client_ref=str(world["sent"].id)))
    db.session.expire_all()
    m = db.session.get(Message, world["sent"].id)
    assert (m.status, m.provider_id) == ("delivered", vonage_uuid)


def test_status_for_a_message_we_do_not_know_is_acknowledged(client, world) -> None:
    assert (
        post(client, STATUS, status(str(uuid.uuid4()), "delivered", client_ref="999999")).status_code == 204
    )


# --- WhatsApp window -----------------------------------------------------------------------------


def test_inbound_whatsapp_opens_the_window_for_24_hours(client, world) -> None:
    f.open_whatsapp_window(world["lena"])
    compose.compose(db.session, world["user"], of_application(world["lena"]), "whatsapp", "Hi on WhatsApp")
    conversation = db.session.get(Conversation, world["sent"].conversation_id)
    conversation.whatsapp_window_ends_at = None
    db.session.commit()
    wrote = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    stamp = wrote.strftime("%Y-%m-%dT%H:%M:%SZ")
    post(client, INBOUND, inbound(OUR, LENA, "Hi!", channel="whatsapp", timestamp=stamp))
    db.session.expire_all()
    conversation = db.session.get(Conversation, world["sent"].conversation_id)
    assert conversation.whatsapp_window_ends_at == wrote + timedelta(hours=24)
    # An older message arriving late does not shorten it …
    earlier = (wrote - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    post(client, INBOUND, inbound(OUR, LENA, "Earlier", channel="whatsapp", timestamp=earlier))
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).whatsapp_window_ends_at == wrote + timedelta(
        hours=24
    )
    # … and a time in the future (a clock ahead, a forged body) opens it from now, not from then.
    post(client, INBOUND, inbound(OUR, LENA, "Later", channel="whatsapp", timestamp="2099-01-01T00:00:00Z"))
    db.session.expire_all()
    ends = db.session.get(Conversation, conversation.id).whatsapp_window_ends_at
    assert ends <= datetime.now(UTC) + timedelta(hours=24)


# --- Races and fuzz ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite serialises writers
def test_two_deliveries_of_one_uuid_racing(app, client, world, backend) -> None:
    payload = inbound(OUR, LENA, "Racing")
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def deliver() -> None:
        c = app.test_client()
        barrier.wait()
        codes.append(post(c, INBOUND, payload).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(inbound_messages()) == 1, codes
    assert sorted(codes).count(200) == 1 and set(codes) <= {200, 204}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # row locks are PostgreSQL's
def test_replies_in_one_conversation_at_once_do_not_deadlock(app, client, world, backend) -> None:
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def reply(i: int) -> None:
        c = app.test_client()
        payload = inbound(OUR, LENA, f"Reply {i}")
        barrier.wait()
        codes.append(post(c, INBOUND, payload).status_code)

    threads = [threading.Thread(target=reply, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert codes == [200] * 8
    assert {m.conversation_id for m in inbound_messages()} == {world["sent"].conversation_id}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)
webhook_like = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.sampled_from(["sms", "whatsapp", "mms", ""]) | st.text(max_size=5),
        "message_type": st.sampled_from(["text", "image", "audio"]) | json_values,
        "message_uuid": st.uuids().map(str) | json_values,
        "to": st.sampled_from(["4915123456700", "+4915123456700", "12", ""]) | json_values,
        "from": st.sampled_from(["4915123456789", "999999999999999999999"]) | json_values,
        "text": st.text(max_size=50) | json_values,
        "timestamp": st.sampled_from(["2026-11-23T10:00:00Z", "2026-13-45", ""]) | json_values,
        "status": st.sampled_from(["submitted", "delivered", "read", "rejected", "undeliverable"])
        | json_values,
        "client_ref": st.sampled_from(["1", "99999999999999999999", "-1"]) | json_values,
        "error": json_values,
        "image": json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=webhook_like | json_values)
def test_arbitrary_json_never_breaks_the_webhooks(client, world, payload) -> None:
    for path in (INBOUND, STATUS):
        response = post(client, path, payload)
        assert response.status_code in (200, 204, 400), (path, payload, response.get_data(as_text=True))


def test_nul_in_a_signed_body(client, world) -> None:
    assert post(client, INBOUND, inbound(OUR, LENA, "Hi\x00there")).status_code == 200
    assert inbound_messages()[0].body == "Hithere"
    assert post(client, INBOUND, {**inbound(OUR, LENA), "message_uuid": "a\x00b"}).status_code == 400


# --- Found in review --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {**status("x", "delivered"), "client_ref": "2147483648"},
        {**status("x", "rejected"), "error": {"type": "a\x00b", "title": "1\x002", "detail": "\x00"}},
        {**status("x", "delivered"), "timestamp": "0001-01-01T00:30:00+01:00"},
        {**status("x", "delivered"), "timestamp": "9999-12-31T23:00:00Z"},
    ],
)
def test_odd_signed_status_bodies_are_not_a_500(client, world, payload) -> None:
    assert post(client, STATUS, payload).status_code in (204, 400)


def test_lone_surrogates_and_deep_nesting_are_a_400(client, world) -> None:
    assert post(client, INBOUND, None, body=b'{"text": "\\ud800"}').status_code == 400
    assert post(client, INBOUND, None, body=b"[" * 30000).status_code == 400


@pytest.mark.parametrize("written", ["004915123456789", "+49 151 23456789", "+49 (151) 234-56789"])
def test_stop_from_a_number_written_differently(client, world, written) -> None:
    assert post(client, INBOUND, {**inbound(OUR, LENA, "STOP"), "from": written}).status_code == 200
    assert optouts.active(db.session, world["org"].id, LENA) is not None


def test_a_number_read_again_is_not_parsed_again(client, world, monkeypatch) -> None:
    """Issue #19: a webhook's numbers are mostly the same few; libphonenumber's parse of each (25–45 µs,
    twice per inbound webhook, again in the worker) is done once per number and process."""
    import phonenumbers

    parsed: list[str] = []
    real = phonenumbers.parse
    monkeypatch.setattr(phonenumbers, "parse", lambda text, *rest: parsed.append(text) or real(text, *rest))
    assert post(client, INBOUND, inbound(OUR, LENA, "First")).status_code == 200
    parsed.clear()
    assert post(client, INBOUND, inbound(OUR, LENA, "Second")).status_code == 200
    assert parsed == []
    assert [m.body for m in inbound_messages()] == ["First", "Second"]


def test_a_queued_message_is_not_sent_after_stop(client, world) -> None:
    post(client, INBOUND, inbound(OUR, LENA, "STOP"))
    before = credits.balance(db.session, world["org"])
    dispatch.deliver(world["sent"].id)
    db.session.expire_all()
    m = db.session.get(Message, world["sent"].id)
    assert m.status == "rejected" and "opted out" in m.error_title
    assert credits.balance(db.session, world["org"]) == before + m.credits


def test_a_status_report_never_touches_an_inbound_message(client, world) -> None:
    payload = inbound(OUR, LENA, "Hello")
    post(client, INBOUND, payload)
    assert (
        post(
            client, STATUS, status(payload["message_uuid"], "rejected", client_ref=str(world["sent"].id))
        ).status_code
        == 204
    )
    assert inbound_messages()[0].status == "received"
    db.session.expire_all()
    assert db.session.get(Message, world["sent"].id).status == "queued"


def test_chunked_body_over_64_kb_is_413(client, world) -> None:
    raw = json.dumps(inbound(OUR, LENA, "x" * 70_000)).encode()
    # No Content-Length, as with Transfer-Encoding: chunked behind gunicorn (wsgi.input_terminated).
    response = client.post(
        INBOUND,
        input_stream=io.BytesIO(raw),
        headers={"Authorization": "Bearer " + token(raw), "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert inbound_messages() == []


def test_sub_organisation_replies_and_stop_through_the_parents_number(client, world) -> None:
    sub = f.messaging_org("Acme Nordics", parent_id=world["org"].id)
    user = f.user(sub, codes=[permissions.RECRUITMENT_SMS])
    application = f.application(
        f.job(sub, team=[user]), f.candidate(sub, "Sven", "Ek", mobile="+46701234567")
    )
    db.session.commit()
    sent = compose.compose(db.session, user, of_application(application), "sms", "Hej Sven")
    db.session.commit()
    assert sent.from_addr in (OUR, "+12015550100")  # the parent's pool
    post(client, INBOUND, inbound(sent.from_addr, "+46701234567", "Hej!"))
    reply = next(m for m in inbound_messages() if m.body == "Hej!")
    assert reply.conversation_id == sent.conversation_id
    post(client, INBOUND, inbound(sent.from_addr, "+46701234567", "STOP"))
    with pytest.raises(checks.SendRefused, match="opted out"):
        compose.compose(db.session, user, of_application(application), "sms", "Still there?")


# --- Cost: statements compiled once --------------------------------------------------------------


def test_webhooks_compile_no_statement_after_the_first_of_each_kind(app, client, world) -> None:
    """Issue #19: the webhooks' statements (the INSERT … ON CONFLICT ones too) come from SQLAlchemy's
    compiled cache after the first webhook of each kind; compiling them anew cost most of a webhook."""
    from sqlalchemy.engine.default import CACHE_HIT

    app.config["SIMULATOR_DELIVERY_SECONDS"] = 3600  # the test, not the simulator, reports here
    second = compose.compose(db.session, world["user"], of_application(world["lena"]), "sms", "Again")
    db.session.commit()
    for message in (world["sent"], second):
        dispatch.deliver(message.id)
    db.session.expire_all()
    first_id, second_id = (db.session.get(Message, m.id).provider_id for m in (world["sent"], second))
    db.session.rollback()

    compiled: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        if context is not None and context.compiled is not None and context.cache_hit is not CACHE_HIT:
            compiled.append(statement)

    def webhooks(provider_id: str, text: str) -> None:
        assert post(client, INBOUND, inbound(OUR, LENA, text)).status_code == 200
        assert post(client, STATUS, status(provider_id, "delivered")).status_code == 204

    # The first of each kind compiles (a reply after an outbound message changes more of the
    # conversation's row than a reply after a reply: two shapes of the ORM's UPDATE).
    webhooks(first_id, "Thursday?")
    assert post(client, INBOUND, inbound(OUR, LENA, "Or Friday")).status_code == 200
    sa.event.listen(db.engine, "after_cursor_execute", note)
    try:
        webhooks(second_id, "Friday it is")
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", note)
    assert compiled == []
    db.session.expire_all()
    assert [
        m.status for m in db.session.scalars(sa.select(Message).where(Message.direction == "outbound"))
    ] == [
        "delivered",
        "delivered",
    ]
    assert len(inbound_messages()) == 3
