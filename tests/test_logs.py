"""The log lines an operator reads: one JSON line per request and per send attempt, the request id from
X-Request-ID (or made) in the answer, in every line of the request and in the lines of the RQ job that
sends what it queued; and never a message's text, a password, a token or a cookie.

What is checked is the process's real log output (file descriptor 2, where the handler webapp.logs
installs writes it), of real requests through the test client and real sends to the fake Vonage over HTTPS."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from tests import factories as f
from tests.conftest import Auth, csrf_from, need
from webapp import logs
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.interviews import invitations
from webapp.messaging import dispatch
from webapp.models import InterviewSlot, Message, utcnow

REDIS_URL = os.environ.get("REDIS_TEST_URL", "")
PASSWORD = "Correct-Horse-Battery-7319-staple"
BODY = "Zebra-quartz-body-5521 see you at nine"
BASE = "https://relay.example"


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        "LOG_FORMAT": "json",
        "PUBLIC_BASE_URL": BASE,
        **fake.app_settings(),
        "VONAGE_TIMEOUT": 2,
    }


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", sender_name="Acme Careers")
    user = f.user(org, "riley@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    f.credits(org, 20)
    db.session.commit()
    return {"org": org, "user": user, "lena": lena, "job": job}


def lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON lines written to stderr since the last call (every line must be one)."""
    err = capfd.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def of(found: list[dict[str, Any]], msg: str) -> list[dict[str, Any]]:
    return [line for line in found if line["msg"] == msg]


def sign_in(client, capfd) -> None:
    response = Auth(client).login("riley@acme.test", PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)


def send(client, world, body: str = BODY, headers: dict[str, str] | None = None):
    conversation = f.conversation_url(world["lena"])
    token = csrf_from(client, "/jobs")
    return client.post(
        f"{conversation}/messages",
        data={"csrf_token": token, "channel": "sms", "body": body},
        headers={"HX-Request": "true", **(headers or {})},
    )


# --- A request's line ------------------------------------------------------------------------------------


def test_a_request_line_holds_time_id_user_organisation_route_status_and_milliseconds(
    client, world, capfd
) -> None:
    sign_in(client, capfd)
    conversation = f.conversation_url(world["lena"])
    lines(capfd)
    response = client.get(conversation, headers={"X-Request-ID": "req-7f3a.1"})
    assert response.status_code == 302  # to the application's page, where the thread is shown
    assert response.headers["X-Request-ID"] == "req-7f3a.1"

    [line] = of(lines(capfd), "request")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["level"] == "info" and line["logger"] == "relay.request"
    assert line["request_id"] == "req-7f3a.1"
    assert line["user_id"] == world["user"].id
    assert line["organization_id"] == world["org"].id
    # The route's rule, not the path with the conversation's id in it.
    assert line["route"] == "/conversations/<id:conversation_id>"
    assert line["endpoint"] == "conversations.panel"
    assert line["method"] == "GET" and line["status"] == 302
    assert isinstance(line["ms"], float) and 0 < line["ms"] < 60_000


def test_a_signed_out_request_and_a_404_have_lines_too(client, world, capfd) -> None:
    lines(capfd)
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/login").status_code == 200
    missing, login = of(lines(capfd), "request")
    assert missing["status"] == 404 and missing["route"] is None and missing["user_id"] is None
    assert login["route"] == "/login" and login["status"] == 200 and login["organization_id"] is None


def test_the_organisation_is_named_when_the_request_expired_the_user(app, client, world, capfd) -> None:
    from flask_login import current_user

    @app.get("/test-logs-expired")
    def expire_after_reading_the_user() -> str:
        assert current_user.is_authenticated  # loaded …
        db.session.expire_all()  # … and expired (as the simulated reply does): nothing reads it again
        return "ok"

    sign_in(client, capfd)
    lines(capfd)
    assert client.get("/test-logs-expired").status_code == 200
    [line] = of(lines(capfd), "request")
    assert (line["user_id"], line["organization_id"]) == (world["user"].id, world["org"].id)


@pytest.mark.parametrize(
    "given",
    ["", "has space", "x" * 101, 'quote"d', "semi;colon", "-leading-dash", "é-accented"],
)
def test_an_insane_request_id_is_replaced_by_a_new_one(client, world, capfd, given: str) -> None:
    lines(capfd)
    response = client.get("/login", headers={"X-Request-ID": given} if given else {})
    made = response.headers["X-Request-ID"]
    assert made != given and re.fullmatch(r"[0-9a-f]{32}", made)
    [line] = of(lines(capfd), "request")
    assert line["request_id"] == made
    # Another request, another id.
    assert client.get("/login").headers["X-Request-ID"] != made


def test_every_line_of_a_request_carries_its_id_and_none_after_it(app, client, world, capfd) -> None:
    import logging

    @app.get("/test-logs-inside")
    def inside() -> str:
        logging.getLogger("relay.test").warning("inside the request")
        return "ok"

    lines(capfd)
    client.get("/test-logs-inside", headers={"X-Request-ID": "abc-123"})
    logging.getLogger("relay.test").warning("outside any request")
    found = lines(capfd)
    assert [(line["msg"], line["request_id"]) for line in found] == [
        ("inside the request", "abc-123"),
        ("request", "abc-123"),
        ("outside any request", None),
    ]


# --- A send's line ---------------------------------------------------------------------------------------


def test_a_send_attempt_line_carries_the_request_id_provider_outcome_and_milliseconds(
    client, world, fake, capfd
) -> None:
    sign_in(client, capfd)
    lines(capfd)
    response = send(client, world, headers={"X-Request-ID": "send-req-1"})
    assert response.status_code == 200
    found = lines(capfd)
    [attempt] = of(found, "send attempt")
    message = db.session.query(Message).one()
    assert attempt["logger"] == "relay.send"
    assert attempt["request_id"] == "send-req-1"  # sent inline, in the request (the tests' dispatch mode)
    assert attempt["message_id"] == message.id
    assert (attempt["provider"], attempt["channel"], attempt["outcome"]) == ("vonage", "sms", "accepted")
    assert attempt["attempt"] == 1 and attempt["error_code"] is None
    assert isinstance(attempt["ms"], float) and attempt["ms"] > 0
    assert len(fake.requests) == 1


def test_a_refused_then_unknown_send_is_logged_try_by_try(client, world, fake, capfd) -> None:
    sign_in(client, capfd)
    fake.fail(429, "Too Many Requests")  # tried again …
    fake.fail(500, "Internal Error")  # … then the provider may have it
    lines(capfd)
    send(client, world)
    attempts = of(lines(capfd), "send attempt")
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "temporary"), (2, "unknown")]
    assert len(fake.requests) == 2


def test_the_rq_job_logs_under_the_id_of_the_request_that_queued_it(app, client, world, fake, capfd) -> None:
    if not REDIS_URL:
        need("Redis (REDIS_TEST_URL)")
    from webapp.messaging import worker

    app.config.update(DISPATCH_MODE="rq", REDIS_URL=REDIS_URL)
    q = dispatch.queue(app)
    q.empty()
    sign_in(client, capfd)
    lines(capfd)
    assert send(client, world, headers={"X-Request-ID": "from-the-web-42"}).status_code == 200
    assert fake.requests == []  # queued in Redis, not sent in the request
    worker.work_now([q])
    q.empty()
    found = lines(capfd)
    [attempt] = of(found, "send attempt")
    assert attempt["request_id"] == "from-the-web-42" and attempt["outcome"] == "accepted"
    [request_line] = [line for line in of(found, "request") if line["method"] == "POST"]
    assert request_line["request_id"] == "from-the-web-42"
    assert len(fake.requests) == 1


def test_the_sending_thread_logs_under_the_id_of_the_request_that_queued_it(
    app, client, world, fake, capfd
) -> None:
    from webapp.providers import registry

    app.config["DISPATCH_MODE"] = "thread"
    sign_in(client, capfd)
    lines(capfd)
    assert send(client, world, headers={"X-Request-ID": "threaded-7"}).status_code == 200
    registry.close(app)  # waits for the sending thread
    [attempt] = of(lines(capfd), "send attempt")
    assert attempt["request_id"] == "threaded-7" and attempt["outcome"] == "accepted"


def test_a_job_queued_outside_a_request_gets_an_id_of_its_own(app, world, fake, capfd) -> None:
    if not REDIS_URL:
        need("Redis (REDIS_TEST_URL)")
    from webapp.messaging import compose, worker
    from webapp.messaging.subjects import of_application

    app.config.update(DISPATCH_MODE="rq", REDIS_URL=REDIS_URL)
    q = dispatch.queue(app)
    q.empty()
    message = compose.compose(db.session, world["user"], of_application(world["lena"]), "sms", "Hi")
    db.session.commit()
    dispatch.enqueue(message.id)  # as the sweep does
    lines(capfd)
    worker.work_now([q])
    q.empty()
    [attempt] = of(lines(capfd), "send attempt")
    assert re.fullmatch(r"[0-9a-f]{32}", attempt["request_id"])


# --- Never a secret ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_body_password_token_or_cookie_in_any_line(app, client, world, fake, capfd, log_format) -> None:
    logs.configure(log_format, "DEBUG")  # everything any library says, too
    app.config["LOG_FORMAT"] = log_format
    try:
        capfd.readouterr()
        refused = Auth(client).login("riley@acme.test", PASSWORD[:-1])
        assert refused.status_code == 200 and "riley@acme.test" in refused.get_data(as_text=True)
        sign_in(client, capfd)
        assert send(client, world, body=BODY).status_code == 200

        soon = utcnow().replace(microsecond=0) + timedelta(days=2)
        db.session.add(InterviewSlot(job_id=world["job"].id, starts_at=soon, minutes=30, place="Room 3"))
        db.session.commit()
        invitation = invitations.invite(
            db.session, world["user"], world["lena"], "sms", "Book: %INVITELINK%", None, BASE, utcnow()
        )
        db.session.commit()
        found = re.search(r"/book/([A-Za-z0-9_-]+)", invitation.message.body)
        assert found
        booking_token = found.group(1)
        assert client.get(f"/book/{booking_token}?ref={booking_token}").status_code == 200
        assert client.get(f"/book/{booking_token}x").status_code == 404

        cookie = client.get_cookie("session")
        assert cookie is not None
        output = capfd.readouterr().err
    finally:
        logs.configure("json", "INFO")
    for secret in (BODY, "Zebra-quartz", PASSWORD, booking_token, cookie.value):
        assert secret not in output
    assert "send attempt" in output and "/book/<token>" in output  # the lines were there


def test_the_development_server_logs_no_path(app, world, capfd) -> None:
    # Werkzeug's own line per request has the path and the query; the request line replaces it.
    import threading
    import urllib.error
    import urllib.request

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    capfd.readouterr()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                f"http://127.0.0.1:{server.port}/book/Tok3nTok3nTok3n?next=Qu3ryQu3ry", timeout=10
            )
        assert refused.value.code == 404
        refused.value.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    output = capfd.readouterr().err
    assert "Tok3nTok3n" not in output and "Qu3ryQu3ry" not in output
    assert '"route": "/book/<token>"' in output
