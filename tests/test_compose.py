"""Sending from the candidate-application page: checks, placeholders, numbers, credits, dispatch."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tests import factories as f
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import checks, compose
from webapp.messaging.subjects import of_application
from webapp.models import Conversation, CreditTransaction, Message, OptOut

SMS = [permissions.RECRUITMENT_SMS]


@pytest.fixture
def acme(app):
    org = f.messaging_org("Acme", sender_name="Acme")
    sub = f.messaging_org("Acme Nordics", parent_id=org.id)
    recruiter = f.user(org, "recruiter@acme.test", codes=SMS, name="Riley Chen")
    manager = f.user(org, "manager@acme.test", name="Morgan Patel")
    job = f.job(org, team=[recruiter, manager], title="Backend Engineer")
    for e164 in ("+12015550100", "+4915123456700", "+447400123400", "+447400123401"):
        f.number(org, e164)
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    astrid = f.application(job, f.candidate(org, "Astrid", "Lund", mobile="+46701234567"))
    f.credits(org, 20)
    db.session.commit()
    return {
        "org": org,
        "sub": sub,
        "recruiter": recruiter,
        "manager": manager,
        "job": job,
        "lena": lena,
        "astrid": astrid,
    }


def send(w, application, channel="sms", body="Hi %FIRSTNAME%", user="recruiter", subject=None):
    message = compose.compose(
        db.session, w[user], of_application(w[application]), channel, body, subject=subject
    )
    db.session.commit()
    return message


def test_german_candidate_gets_the_german_number_and_rendered_text(acme) -> None:
    m = send(acme, "lena", body="Hi %FIRSTNAME%, about %JOBTITLE% at %COMPANY%")
    assert (m.from_addr, m.to_addr, m.status) == ("+4915123456700", "+4915123456789", "queued")
    assert m.body == "Hi Lena, about Backend Engineer at Acme"
    assert (m.encoding, m.segments, m.credits) == ("GSM-7", 1, 1)
    assert m.author.name == "Riley Chen"


def test_swedish_candidate_gets_the_us_number(acme) -> None:
    assert send(acme, "astrid").from_addr == "+12015550100"


def test_the_number_is_kept_for_the_conversation(acme) -> None:
    first = send(acme, "lena")
    conversation = db.session.get(Conversation, first.conversation_id)
    assert conversation.sms_number.e164 == "+4915123456700"
    # Even when another German number would now be less recently used, the conversation keeps its own.
    f.number(acme["org"], "+4915123456701")
    db.session.commit()
    assert send(acme, "lena").from_addr == "+4915123456700"


def test_new_conversations_spread_over_one_countrys_numbers(acme) -> None:
    org, job = acme["org"], acme["job"]
    used = []
    for i in range(4):
        application = f.application(job, f.candidate(org, "Brit", f"On{i}", mobile=f"+44740012345{i}"))
        db.session.commit()
        used.append(
            compose.compose(db.session, acme["recruiter"], of_application(application), "sms", "Hi").from_addr
        )
        db.session.commit()
    assert sorted(used) == ["+447400123400", "+447400123400", "+447400123401", "+447400123401"]
    assert used[0] != used[1]


def test_long_message_with_euro_is_two_segments_and_two_credits(acme) -> None:
    body = "Price: 10 € " + "a" * 150
    m = send(acme, "lena", body=body)
    assert (m.encoding, m.segments, m.credits) == ("GSM-7", 2, 2)
    assert credits.balance(db.session, acme["org"]) == 18


def test_whatsapp_costs_the_organisations_price_and_email_nothing(acme) -> None:
    acme["org"].whatsapp_price = 3
    f.open_whatsapp_window(acme["lena"])
    db.session.commit()
    assert send(acme, "lena", channel="whatsapp").credits == 3
    email = send(acme, "lena", channel="email", body="Dear %FIRSTNAME%", subject="About %JOBTITLE%")
    assert (email.credits, email.subject, email.from_addr, email.to_addr) == (
        0,
        "About Backend Engineer",
        "Acme",
        acme["lena"].candidate.email,
    )
    assert credits.balance(db.session, acme["org"]) == 17


def test_credits_are_shared_with_the_sub_organisation(acme) -> None:
    sub = acme["sub"]
    user = f.user(sub, "nordic@acme.test", codes=SMS)
    job = f.job(sub, team=[user])
    f.number(sub, "+46701234500")
    application = f.application(job, f.candidate(sub, "Sven", "Svensson", mobile="+46701234568"))
    db.session.commit()
    compose.compose(db.session, user, of_application(application), "sms", "Hej")
    db.session.commit()
    assert credits.balance(db.session, sub) == credits.balance(db.session, acme["org"]) == 19


def test_balance_always_equals_the_ledger(acme) -> None:
    for _ in range(3):
        send(acme, "lena")
    account = credits.account_for(db.session, acme["org"])
    assert account.balance == credits.ledger_sum(db.session, account.id) == 17
    kinds = db.session.scalars(sa.select(CreditTransaction.kind).order_by(CreditTransaction.id)).all()
    assert kinds == ["top_up", "debit", "debit", "debit"]


def test_no_credits_no_send(acme) -> None:
    send(acme, "lena", body="x" * 161 * 9)  # 10 segments
    send(acme, "lena", body="x" * 161 * 9)
    with pytest.raises(checks.SendRefused) as refused:
        send(acme, "lena", body="x" * 200)
    db.session.rollback()
    text = refused.value.message
    assert "needs 2 credits" in text and "has 0 left" in text and "Customer Success" in text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 2


@pytest.mark.parametrize(
    ("setup", "channel", "expected"),
    [
        (lambda w: None, "fax", "Choose SMS, WhatsApp or email."),
        (lambda w: setattr(w["org"], "whatsapp_enabled", False), "whatsapp", "WhatsApp is not switched on"),
        (lambda w: setattr(w["org"], "has_messaging", False), "sms", "does not have Messaging"),
        (lambda w: setattr(w["lena"].candidate, "mobile", None), "sms", "Lena Müller has no mobile number."),
        (lambda w: setattr(w["lena"].candidate, "email", None), "email", "Lena Müller has no email address."),
        (
            lambda w: db.session.add(OptOut(organization_id=w["org"].id, e164="+4915123456789")),
            "whatsapp",
            "has opted out",
        ),
    ],
)
def test_each_check_says_what_is_wrong(acme, setup, channel, expected) -> None:
    setup(acme)
    db.session.commit()
    with pytest.raises(checks.SendRefused, match=expected):
        send(acme, "lena", channel=channel, subject="Hello")


def test_manager_without_the_right_cannot_text(acme) -> None:
    with pytest.raises(checks.SendRefused, match="Recruitment – SMS"):
        send(acme, "lena", user="manager")
    db.session.rollback()
    assert send(acme, "lena", user="manager", channel="email", subject="Hi").status == "queued"


def test_outside_the_team_or_the_organisation(acme) -> None:
    outsider = f.user(acme["org"], "other@acme.test", codes=SMS)
    stranger = f.user(f.messaging_org("Globex"), "x@globex.test", codes=SMS)
    db.session.commit()
    acme["outsider"], acme["stranger"] = outsider, stranger
    with pytest.raises(checks.SendRefused, match="hiring team"):
        send(acme, "lena", user="outsider")
    with pytest.raises(checks.SendRefused, match="another organisation"):
        send(acme, "lena", user="stranger")


@pytest.mark.parametrize(
    ("channel", "body", "expected"),
    [
        ("sms", "   ", "Write a message."),
        ("sms", "x" * 1531, "would be 11 segments; the limit is 10"),
        ("whatsapp", "x" * 4097, "at most 4,096 characters"),
    ],
)
def test_body_limits(acme, channel, body, expected) -> None:
    f.open_whatsapp_window(acme["lena"])
    db.session.commit()
    with pytest.raises(checks.SendRefused, match=expected):
        send(acme, "lena", channel=channel, body=body)


def test_email_needs_a_subject(acme) -> None:
    with pytest.raises(checks.SendRefused, match="subject") as refused:
        send(acme, "lena", channel="email", body="Hello", subject=" ")
    assert refused.value.field == "subject"


def test_simulator_delivers_through_the_status_function(acme, app) -> None:
    from webapp.messaging import dispatch

    app.config["SIMULATOR_DELIVERY_SECONDS"] = 0.2
    m = send(acme, "lena")
    dispatch.deliver(m.id)
    db.session.expire_all()
    m = db.session.get(Message, m.id)
    assert m.status == "submitted" and m.provider_id
    deadline = time.monotonic() + 5
    while m.status != "delivered" and time.monotonic() < deadline:
        time.sleep(0.05)
        db.session.expire_all()
        m = db.session.get(Message, m.id)
    assert m.status == "delivered" and m.delivered_at is not None


def test_a_job_that_runs_twice_sends_once(acme, app) -> None:
    from webapp.messaging import dispatch

    m = send(acme, "lena")
    dispatch.deliver(m.id)
    db.session.expire_all()
    first = db.session.get(Message, m.id).provider_id
    dispatch.deliver(m.id)
    db.session.expire_all()
    again = db.session.get(Message, m.id)
    assert again.provider_id == first and again.attempts == 1


def test_whatsapp_free_text_only_inside_the_window(acme) -> None:
    with pytest.raises(checks.SendRefused, match="Outside the 24-hour window") as refused:
        send(acme, "lena", channel="whatsapp", body="Hi")
    assert refused.value.field == "whatsapp_template_id"
    db.session.rollback()
    f.open_whatsapp_window(acme["lena"], hours=-0.001)  # closed a few seconds ago
    db.session.commit()
    with pytest.raises(checks.SendRefused, match="Outside the 24-hour window"):
        send(acme, "lena", channel="whatsapp", body="Hi")
    db.session.rollback()
    f.open_whatsapp_window(acme["lena"], hours=0.01)  # closes in under a minute: still open
    db.session.commit()
    assert send(acme, "lena", channel="whatsapp", body="Hi").status == "queued"


def test_an_approved_template_may_go_outside_the_window(acme) -> None:
    template = f.whatsapp_template(acme["org"])
    db.session.commit()
    m = compose.compose(
        db.session,
        acme["recruiter"],
        of_application(acme["lena"]),
        "whatsapp",
        "",
        whatsapp_template_id=template.id,
    )
    db.session.commit()
    assert m.body == "Hi Lena, can we talk about Backend Engineer? Reply here."
    assert m.whatsapp_template_id == template.id and m.credits == 1
    other = f.whatsapp_template(f.messaging_org("Globex"), name="theirs")
    unapproved = f.whatsapp_template(acme["org"], name="draft", approved=False)
    db.session.commit()
    for t in (other, unapproved):
        with pytest.raises(checks.SendRefused, match="approved WhatsApp templates"):
            compose.compose(
                db.session,
                acme["recruiter"],
                of_application(acme["lena"]),
                "whatsapp",
                "",
                whatsapp_template_id=t.id,
            )


def test_a_sub_organisation_of_a_sub_organisation_sends_from_the_numbers_above_it(app) -> None:
    top = f.messaging_org("Acme")
    middle = f.messaging_org("Acme Europe", parent_id=top.id)
    bottom = f.messaging_org("Acme Nordics", parent_id=middle.id)
    f.number(middle, "+4915123456700")  # the middle one lends its number; the top has none
    user = f.user(bottom, codes=[permissions.RECRUITMENT_SMS])
    application = f.application(f.job(bottom, team=[user]), f.candidate(bottom, mobile="+4915123456789"))
    f.credits(top, 5)
    db.session.commit()
    message = compose.compose(db.session, user, of_application(application), "sms", "Hej")
    assert message.from_addr == "+4915123456700"
