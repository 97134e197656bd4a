"""Bad input is a 4xx (or a one-line CLI error), never a 500: ids that do not fit an INTEGER, digits that
are not ASCII, control characters in `next`, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.routing import FloatConverter, IntegerConverter

from tests import factories as f
from tests.conftest import Auth, csrf_from
from tests.webhook_support import inbound, post
from webapp import ids
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.ids import IdConverter
from webapp.models import CreditAccount, CreditTransaction, Message

OUR = "+4915123456700"
NOT_IDS = [
    "99999999999999999999",  # over BIGINT too
    "2147483648",  # 2³¹: over PostgreSQL's INTEGER
    "0",
    "-1",
    "1.0",
    "%C2%B2",  # ², which str.isdigit() takes for a digit
    "%D9%A3",  # ٣ (Arabic-Indic three), which int() reads as 3
    "1%20",
    "007",
]


@pytest.fixture
def world(app, client):
    org = f.messaging_org("Acme")
    admin = f.user(org, email="admin@acme.test", admin=True, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, OUR)
    job = f.job(org, team=[admin])
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    f.credits(org, 10)
    db.session.commit()
    Auth(client).login("admin@acme.test")
    return {"org": org, "job": job, "lena": lena}


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        (" 42 ", 42),
        ("007", 7),
        ("2147483647", 2**31 - 1),
        (17, 17),
        ("2147483648", None),
        ("99999999999999999999", None),
        ("0", None),
        ("-3", None),
        ("²", None),
        ("٣", None),
        ("1e3", None),
        ("", None),
        (None, None),
        (True, None),
        (2**31, None),
    ],
)
def test_parse_takes_ascii_ids_that_fit_an_integer(value, expected) -> None:
    assert ids.parse(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-10, max_value=10**11) | st.sampled_from([ids.MAX_ID, ids.MAX_ID + 1, 10**9]))
def test_the_route_converter_matches_exactly_the_ids(number: int) -> None:
    pattern = re.compile(IdConverter.regex)
    assert bool(pattern.fullmatch(str(number))) == (1 <= number <= ids.MAX_ID)
    assert not pattern.fullmatch("0" + str(number))  # one spelling per id


def test_every_route_takes_ids_through_the_id_converter(app) -> None:
    # <int:...> would pass 99999999999999999999 (and "٣") on to the database.
    numeric = [
        f"{rule.rule} ({name})"
        for rule in app.url_map.iter_rules()
        for name, converter in rule._converters.items()
        if isinstance(converter, (IntegerConverter, FloatConverter))
    ]
    assert numeric == []
    assert any(isinstance(c, IdConverter) for r in app.url_map.iter_rules() for c in r._converters.values())


@pytest.mark.parametrize("value", NOT_IDS)
def test_an_id_that_is_not_one_in_a_path_is_a_404(client, world, value) -> None:
    for path in ["/jobs/{}", "/applications/{}", "/conversations/{}/thread?tab=sms"]:
        assert client.get(path.format(value)).status_code == 404, path
    token = csrf_from(client, "/jobs")
    for path in [
        "/conversations/{}/messages",
        "/conversations/{}/preview",
        "/conversations/{}/simulate-reply",
        "/admin/unmatched/{}/assign",
    ]:
        assert client.post(path.format(value), data={"csrf_token": token}).status_code == 404, path


def test_the_largest_id_is_just_not_found(client, world) -> None:
    assert client.get(f"/applications/{2**31 - 1}").status_code == 404
    assert client.get(f"/jobs/{2**31 - 1}").status_code == 404
    assert client.get(f"/applications/{world['lena'].id}").status_code == 200


def test_a_non_ascii_digit_does_not_reach_another_application(client, world) -> None:
    # ٣ and ³ must not be read as the application's id.
    digit = {1: "١", 2: "٢", 3: "٣"}.get(world["lena"].id)
    if digit is None:
        pytest.skip("the application's id has no one-digit spelling here")
    assert client.get(f"/applications/{digit}").status_code == 404


@pytest.mark.parametrize("value", ["²", "٣", "99999999999999999999", "abc"])
def test_a_whatsapp_template_id_that_is_not_one_is_refused_in_the_form(client, world, value) -> None:
    url = f"{f.conversation_url(world['lena'])}/messages"
    token = csrf_from(client, f"/applications/{world['lena'].id}")
    response = client.post(
        url,
        data={
            "channel": "whatsapp",
            "body": "",
            "whatsapp_template_id": value,
            "template_id": value,
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    assert "approved" in response.get_data(as_text=True)  # no template chosen, outside the window
    assert count(Message) == 0


@pytest.mark.parametrize("field", ["application_id", "other_application_id"])
@pytest.mark.parametrize("value", ["²", "99999999999999999999", ""])
def test_an_application_id_that_is_not_one_is_refused_when_assigning(client, world, field, value) -> None:
    assert (
        post(client, "/webhooks/vonage/inbound", inbound(OUR, "+447400123456", "Hello?")).status_code == 200
    )
    message = db.session.scalars(sa.select(Message).where(Message.conversation_id.is_(None))).one()
    token = csrf_from(client, "/admin/unmatched")
    response = client.post(
        f"/admin/unmatched/{message.id}/assign",
        data={field: value, "csrf_token": token},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Choose the application the message belongs to" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Message, message.id).conversation_id is None


@pytest.mark.parametrize("next_url", ["/\r\nX", "/\r\nSet-Cookie: a=b", "/jobs\x7f", "/\x85x"])
def test_control_characters_in_next_go_home(client, app, next_url) -> None:
    f.user(f.org(), email="riley@acme.test")
    db.session.commit()
    token = csrf_from(client)
    response = client.post(
        "/login",
        query_string={"next": next_url},
        data={"email": "riley@acme.test", "password": "password", "csrf_token": token},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
    # Signed in, /login sends on to `next` at once.
    response = client.get("/login", query_string={"next": next_url})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_the_raw_crlf_of_the_issue(client, app) -> None:
    f.user(f.org(), email="riley@acme.test")
    db.session.commit()
    Auth(client).login("riley@acme.test")
    response = client.get("/login?next=/%0d%0aX")
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("user_id", ["²", "99999999999999999999", "-1", "", "1 OR 1=1"])
def test_a_user_id_in_the_cookie_that_is_not_one_is_signed_out(client, app, user_id) -> None:
    with client.session_transaction() as session:
        session["_user_id"] = user_id
    response = client.get("/jobs")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# --- The command line -------------------------------------------------------------------------------


@pytest.fixture
def acme(app):
    org = f.org("Acme")
    db.session.commit()
    return org


def assert_one_line_error(result, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], result.output


def ledger() -> tuple[int, int]:
    db.session.expire_all()
    balance = db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(CreditAccount.balance), 0)))
    return balance, count(CreditTransaction)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["Acme", "3000000000", "--note", "Order 1"], "at most 2147483647"),
        (["Acme", "5", "--note", "x" * 501], "501 characters long; at most 500"),
        (["Acme", "5", "--note", "Order\x001"], "NUL"),
        (["99999", "5", "--note", "Order 1"], "no organisation '99999'"),
        (["99999999999999999999", "5", "--note", "Order 1"], "no organisation"),
        (["²", "5", "--note", "Order 1"], "no organisation '²'"),
        (["Nobody", "5", "--note", "Order 1"], "no organisation 'Nobody'"),
        # Amounts that are not whole positive numbers: the form's rule, a one-line error, not a usage text.
        (["Acme", "0", "--note", "Order 1"], "a top-up adds a positive number of credits"),
        (["Acme", "-5", "--note", "Order 1"], "a top-up adds a positive number of credits"),
        (["Acme", "nan", "--note", "Order 1"], "“nan” is not a whole number of credits"),
        (["Acme", "1e3", "--note", "Order 1"], "“1e3” is not a whole number of credits"),
        (["Acme", "99999999999999999999", "--note", "Order 1"], "at most 2147483647"),
    ],
)
def test_a_bad_top_up_is_a_one_line_error_and_writes_nothing(runner, acme, args, text) -> None:
    before = ledger()
    result = runner.invoke(args=["credits", "top-up", *args])
    assert_one_line_error(result, text)
    assert ledger() == before


def test_a_top_up_may_not_overflow_the_balance(runner, acme) -> None:
    assert (
        runner.invoke(args=["credits", "top-up", "Acme", str(2**31 - 10), "--note", "Big order"]).exit_code
        == 0
    )
    before = ledger()
    result = runner.invoke(args=["credits", "top-up", str(acme.id), "10", "--note", "One more"])
    assert_one_line_error(result, "would be over the most an account holds")
    assert ledger() == before == (2**31 - 10, 1)
    assert runner.invoke(args=["credits", "top-up", str(acme.id), "9", "--note", "Fits"]).exit_code == 0


@pytest.mark.parametrize("ref", ["99999", "99999999999999999999", "²"])
def test_balance_of_an_unknown_organisation_is_a_one_line_error(runner, acme, ref) -> None:
    assert_one_line_error(runner.invoke(args=["credits", "balance", ref]), "no organisation")
    result = runner.invoke(args=["credits", "balance", str(acme.id)])
    assert result.exit_code == 0 and "Acme: 0 credits" in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308", "-1", "soon", "", "٣"])
def test_requeue_older_than_a_time_that_is_not_one_is_a_one_line_error(runner, acme, value) -> None:
    result = runner.invoke(args=["dispatch", "requeue", "--older-than", value])
    assert_one_line_error(result, "--older-than takes a number of seconds from 0 to 316224000 (ten years)")
    assert runner.invoke(args=["dispatch", "requeue", "--older-than", "316224000"]).exit_code == 0
