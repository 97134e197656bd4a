"""Sending numbers (issue #11): the pool's rule (DE/FR wait for documents), staff adding numbers typed or
from the Vonage account (the real SDK against the fake Numbers API over TLS), suspend / resume / release,
routing only to active numbers, the admins' view with 30-day use, and the rights on every page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import Auth, csrf_from
from tests.fake_vonage import FakeVonage
from webapp.accounts import permissions
from webapp.compliance import catalogue
from webapp.extensions import db
from webapp.messaging import compose, conversations
from webapp.messaging.subjects import of_application
from webapp.models import ComplianceEvent, ComplianceSubmission, Message, SendingNumber, utcnow
from webapp.numbers import pool
from webapp.providers.vonage import numbers as vonage_account

SMS = [permissions.RECRUITMENT_SMS]


@pytest.fixture
def world(app):
    catalogue.sync(db.session)
    acme = f.messaging_org("Acme")
    nordics = f.messaging_org("Acme Nordics", parent_id=acme.id)
    globex = f.messaging_org("Globex")
    staff = f.user(None, "csm@relay.test", is_staff=True, name="Casey Moore")
    admin = f.user(acme, "admin@acme.test", admin=True, codes=SMS)
    numbers_admin = f.user(acme, "numbers@acme.test", codes=[permissions.ADMIN_NUMBERS])
    recruiter = f.user(acme, "recruiter@acme.test", codes=SMS)
    globex_admin = f.user(globex, "admin@globex.test", admin=True)
    job = f.job(acme, team=[recruiter], title="Backend Engineer")
    applications = {
        name: f.application(job, f.candidate(acme, name, "X", mobile=mobile))
        for name, mobile in (
            ("lena", "+4915123456789"),
            ("manon", "+33612345678"),
            ("astrid", "+46701234567"),
        )
    }
    f.credits(acme, 50)
    db.session.commit()
    return {
        "acme": acme,
        "nordics": nordics,
        "globex": globex,
        "staff": staff,
        "admin": admin,
        "numbers_admin": numbers_admin,
        "recruiter": recruiter,
        "globex_admin": globex_admin,
        **applications,
    }


def add(w, e164: str, org: str = "acme", **kw) -> SendingNumber:
    number = pool.add(
        db.session, w["staff"], w[org], e164, sms=kw.pop("sms", True), whatsapp=kw.pop("whatsapp", True), **kw
    )
    db.session.commit()
    return number


def sender(w, application: str, channel: str = "sms") -> str:
    conversation = conversations.for_subject(db.session, of_application(w[application]), create=True)
    number = compose.sender_number(db.session, conversation, channel, w[application].candidate.mobile)
    db.session.rollback()
    return number.e164


def approve(w, country: str, org: str = "acme") -> None:
    db.session.add(ComplianceSubmission(organization_id=w[org].id, country=country, status="approved"))
    pool.activate_country(db.session, w["staff"], w[org].id, country, "test approval")
    db.session.commit()


# --- The rule ----------------------------------------------------------------------------------------


def test_de_and_fr_numbers_wait_for_documents_others_send_at_once(world) -> None:
    us, de, fr = (add(world, n) for n in ("+12015550100", "+4915123456700", "+33612345600"))
    assert (us.status, de.status, fr.status) == ("active", "pending_documents", "pending_documents")
    assert (de.country, fr.country) == ("DE", "FR")
    # Another organisation's approval changes nothing for Acme.
    approve(world, "DE", org="globex")
    assert pool.status_for(db.session, world["acme"].id, "DE") == "pending_documents"
    approve(world, "DE")
    assert db.session.get(SendingNumber, de.id).status == "active"
    assert db.session.get(SendingNumber, fr.id).status == "pending_documents"


def test_which_countries_need_documents_is_data(world) -> None:
    catalogue.sync(
        db.session,
        {
            **catalogue.load(),
            "IT": [
                {
                    "code": "business_name",
                    "name": "Ragione sociale",
                    "value": None,
                    "documents": [{"code": "visura", "name": "Visura camerale"}],
                }
            ],
        },
    )
    db.session.commit()
    assert catalogue.countries(db.session) == ["DE", "FR", "IT"]
    assert add(world, "+393123456789").status == "pending_documents"
    # Taken out again, Italian numbers send at once.
    catalogue.sync(db.session)
    assert catalogue.countries(db.session) == ["DE", "FR"]
    assert pool.status_for(db.session, world["acme"].id, "IT") == "active"


def test_routing_uses_only_active_numbers(world) -> None:
    us = add(world, "+12015550100")
    de = add(world, "+4915123456700")
    assert sender(world, "lena") == us.e164  # DE pending: the US number stands in
    approve(world, "DE")
    assert sender(world, "lena") == de.e164
    pool.suspend(db.session, world["staff"], db.session.get(SendingNumber, de.id))
    db.session.commit()
    assert sender(world, "lena") == us.e164
    pool.resume(db.session, world["staff"], db.session.get(SendingNumber, de.id))
    db.session.commit()
    assert sender(world, "lena") == de.e164
    pool.release(db.session, world["staff"], db.session.get(SendingNumber, de.id))
    db.session.commit()
    assert sender(world, "lena") == us.e164


def test_a_kept_number_that_stops_sending_is_replaced_for_the_next_message(world) -> None:
    us = add(world, "+12015550100")
    de = add(world, "+4915123456700")
    approve(world, "DE")
    first = compose.compose(db.session, world["recruiter"], of_application(world["lena"]), "sms", "Hi")
    db.session.commit()
    assert first.from_addr == de.e164
    pool.suspend_country(db.session, None, world["acme"].id, "DE", "approval withdrawn")
    db.session.commit()
    second = compose.compose(db.session, world["recruiter"], of_application(world["lena"]), "sms", "Hi again")
    db.session.commit()
    assert second.from_addr == us.e164


def test_staff_suspension_survives_a_new_approval_compliance_suspension_does_not(world) -> None:
    a = add(world, "+4915123456700")
    b = add(world, "+4915123456701")
    approve(world, "DE")
    pool.suspend(db.session, world["staff"], db.session.get(SendingNumber, a.id), "Customer asked")
    pool.suspend_country(db.session, None, world["acme"].id, "DE", "approval withdrawn")
    pool.activate_country(db.session, world["staff"], world["acme"].id, "DE", "approved again")
    db.session.commit()
    assert (db.session.get(SendingNumber, a.id).suspension, db.session.get(SendingNumber, b.id).status) == (
        "staff",
        "active",
    )
    with pytest.raises(pool.NumberRefused, match="not suspended by customer success"):
        pool.resume(db.session, world["staff"], db.session.get(SendingNumber, b.id))


@pytest.mark.parametrize(
    ("raw", "kw", "field", "message"),
    [
        ("", {}, "number", "Enter a phone number."),
        ("12345", {}, "number", "international format"),
        ("+49 123", {}, "number", "is not a valid phone number"),
        ("+800 1234 5678", {}, "country", "belongs to no country: choose the country"),
        ("+800 1234 5678", {"country": "XX"}, "country", "XX is not a country code"),
        ("+12015550100", {"sms": False, "whatsapp": False}, "capabilities", "SMS, WhatsApp or both"),
    ],
)
def test_bad_numbers_are_refused_with_the_field(world, raw, kw, field, message) -> None:
    with pytest.raises(pool.NumberRefused, match=message) as refused:
        pool.add(db.session, world["staff"], world["acme"], raw, **{"sms": True, "whatsapp": False, **kw})
    assert refused.value.field == field
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SendingNumber)) == 0


def test_a_number_of_no_region_takes_the_chosen_country(world) -> None:
    number = add(world, "+80012345678", country="GB")
    assert (number.e164, number.country, number.status) == ("+80012345678", "GB", "active")


def test_duplicates_are_refused_and_a_released_number_comes_back_only_to_its_pool(world) -> None:
    number = add(world, "+12015550100")
    with pytest.raises(pool.NumberRefused, match="already in this pool"):
        add(world, "+1 201 555 0100")
    db.session.rollback()
    with pytest.raises(pool.NumberRefused, match=r"belongs to another customer \(Acme\)"):
        add(world, "+12015550100", org="globex")
    db.session.rollback()
    pool.release(db.session, world["staff"], db.session.get(SendingNumber, number.id))
    db.session.commit()
    with pytest.raises(pool.NumberRefused, match="belongs to another customer"):
        add(world, "+12015550100", org="globex")
    db.session.rollback()
    again = add(world, "+12015550100", whatsapp=False)
    assert (again.id, again.status, again.released_at, again.whatsapp) == (number.id, "active", None, False)


def test_every_change_leaves_an_audit_row(world) -> None:
    number = add(world, "+4915123456700")
    pool.suspend(db.session, world["staff"], number, "Spam complaints")
    pool.resume(db.session, world["staff"], number)
    pool.release(db.session, world["staff"], number)
    db.session.commit()
    rows = db.session.execute(
        sa.select(ComplianceEvent.action, ComplianceEvent.actor_id, ComplianceEvent.detail)
        .where(ComplianceEvent.number_id == number.id)
        .order_by(ComplianceEvent.id)
    ).all()
    assert [r.action for r in rows] == [
        "number_added",
        "number_pending",
        "number_suspended",
        "number_resumed",
        "number_released",
    ]
    assert {r.actor_id for r in rows} == {world["staff"].id}
    assert "Spam complaints" in rows[2].detail


def test_usage_counts_the_last_30_days_of_this_organisation_and_its_children(world) -> None:
    us = add(world, "+12015550100")
    gb = add(world, "+447400123400")
    now = utcnow()
    conversation = conversations.for_subject(db.session, of_application(world["astrid"]), create=True)
    nordic_job = f.job(world["nordics"], team=[])
    nordic = conversations.for_subject(
        db.session,
        of_application(f.application(nordic_job, f.candidate(world["nordics"], mobile="+46701234568"))),
        create=True,
    )

    def message(conv, direction, hours_ago, ours=us.e164, channel="sms"):
        theirs = "+46701234567"
        db.session.add(
            Message(
                conversation_id=conv.id,
                channel=channel,
                direction=direction,
                body="x",
                status="delivered" if direction == "outbound" else "received",
                from_addr=ours if direction == "outbound" else theirs,
                to_addr=theirs if direction == "outbound" else ours,
                created_at=now - timedelta(hours=hours_ago),
            )
        )

    message(conversation, "outbound", 2)
    message(conversation, "inbound", 1)
    message(nordic, "outbound", 5)
    message(conversation, "outbound", 24 * 40)  # too old to count, but still the last use before
    message(conversation, "outbound", 3, channel="email", ours=us.e164)  # email has no number
    db.session.commit()
    entries = {e.number.e164: e for e in pool.with_usage(db.session, world["acme"])}
    assert (entries[us.e164].conversations, entries[us.e164].messages) == (2, 3)
    assert now - entries[us.e164].last_used_at < timedelta(hours=1, minutes=1)
    assert (entries[gb.e164].conversations, entries[gb.e164].messages, entries[gb.e164].last_used_at) == (
        0,
        0,
        None,
    )
    # Globex sees none of it (and has no numbers).
    assert pool.with_usage(db.session, world["globex"]) == []


# --- The Vonage account's numbers: the real SDK against the fake Numbers API --------------------------


def vonage_config(fake: FakeVonage, **changes) -> dict:
    return {
        "VONAGE_API_KEY": fake.api_key,
        "VONAGE_API_SECRET": fake.api_secret,
        "VONAGE_REST_HOST": fake.api_host,
        "VONAGE_TIMEOUT": 5,
        "VONAGE_CONNECT_TIMEOUT": 2,
        **changes,
    }


def test_owned_numbers_come_from_the_numbers_api_with_basic_auth_and_paging(fake) -> None:
    many = [f"+4474001234{i:02d}" for i in range(60)] + ["+33612345600", "+12015550100"]
    fake.own(*many)
    owned = vonage_account.owned_numbers({**vonage_config(fake)})
    assert len(owned) == 62
    assert owned[0].country == "FR" and owned[0].e164 == "+33612345600"
    assert all(n.sms for n in owned)
    gets = [r for r in fake.requests if r.method == "GET"]
    assert [r.path.split("?")[0] for r in gets] == ["/account/numbers"]
    assert "size=100" in gets[0].path and gets[0].headers["Authorization"].startswith("Basic ")


def test_owned_numbers_pages_past_the_first_hundred(fake, monkeypatch) -> None:
    monkeypatch.setattr(vonage_account, "PAGE_SIZE", 10)
    fake.own(*[f"+4474001234{i:02d}" for i in range(25)])
    assert len(vonage_account.owned_numbers(vonage_config(fake))) == 25
    assert [re.search(r"index=(\d+)", r.path).group(1) for r in fake.requests] == ["1", "2", "3"]


def test_an_account_without_numbers_and_a_wrong_secret(fake) -> None:
    assert vonage_account.owned_numbers(vonage_config(fake)) == []
    with pytest.raises(vonage_account.NumbersUnavailable, match="refused VONAGE_API_KEY"):
        vonage_account.owned_numbers(vonage_config(fake, VONAGE_API_SECRET="wrong"))
    config = vonage_config(fake)
    fake.stop()
    with pytest.raises(vonage_account.NumbersUnavailable, match="could not be reached"):
        vonage_account.owned_numbers(config)


# --- Staff pages -------------------------------------------------------------------------------------


def staff_page(client, w) -> str:
    return client.get(f"/staff/organizations/{w['acme'].id}").get_data(as_text=True)


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_from(client, "/staff/"), **data})


def test_staff_add_a_number_from_the_vonage_account(app, client, world, fake) -> None:
    app.config.update(vonage_config(fake))
    fake.own("+33612345600", "+447400123499")
    add(world, "+447400123499", org="globex")  # in a pool already: not offered
    Auth(client).login("csm@relay.test")
    page = staff_page(client, world)
    assert "+33 6 12 34 56 00" in page and "+44 7400 123499" not in page
    response = post(client, f"/staff/organizations/{world['acme'].id}/numbers", owned="+33612345600", sms="y")
    assert response.status_code == 303
    number = db.session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == "+33612345600"))
    assert (number.organization_id, number.country, number.status, number.sms, number.whatsapp) == (
        world["acme"].id,
        "FR",
        "pending_documents",
        True,
        False,
    )
    assert "+33 6 12 34 56 00 added to Acme" in client.get(response.location).get_data(as_text=True)


def test_the_staff_page_says_when_the_account_cannot_be_listed(app, client, world, fake) -> None:
    Auth(client).login("csm@relay.test")
    assert "VONAGE_API_KEY and VONAGE_API_SECRET are not set" in staff_page(client, world)
    app.config.update(vonage_config(fake, VONAGE_API_SECRET="wrong"))
    assert "Vonage refused VONAGE_API_KEY / VONAGE_API_SECRET" in staff_page(client, world)


def test_staff_type_a_number_and_bad_input_is_told_next_to_the_field(client, world) -> None:
    Auth(client).login("csm@relay.test")
    path = f"/staff/organizations/{world['acme'].id}/numbers"
    bad = post(client, path, number="+49 123", sms="y")
    assert bad.status_code == 422
    assert re.search(r'id="number-error">\+49 123 is not a valid phone number', bad.get_data(as_text=True))
    none = post(client, path, number="+12015550100")
    assert none.status_code == 422 and "SMS, WhatsApp or both" in none.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SendingNumber)) == 0
    assert post(client, path, number="+1 201 555 0100", sms="y", whatsapp="y").status_code == 303
    twice = post(client, path, number="+12015550100", sms="y")
    assert twice.status_code == 422 and "is already in this pool" in twice.get_data(as_text=True)


def test_staff_pick_or_type_a_number_not_both(app, client, world, fake) -> None:
    app.config.update(vonage_config(fake))
    fake.own("+33612345600")
    Auth(client).login("csm@relay.test")
    path = f"/staff/organizations/{world['acme'].id}/numbers"
    both = post(client, path, owned="+33612345600", number="+12015550100", sms="y")
    assert both.status_code == 422
    said = 'id="number-error">Pick a number from the account or type one, not both'
    assert said in both.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SendingNumber)) == 0


def test_staff_suspend_resume_and_release(client, world) -> None:
    number = add(world, "+12015550100")
    Auth(client).login("csm@relay.test")
    base = f"/staff/organizations/{world['acme'].id}/numbers/{number.id}"
    assert post(client, base + "/suspend", reason="Carrier complaint").status_code == 303
    assert db.session.get(SendingNumber, number.id).status == "suspended"
    assert post(client, base + "/resume").status_code == 303
    assert post(client, base + "/release").status_code == 303
    db.session.expire_all()
    assert db.session.get(SendingNumber, number.id).status == "released"
    again = post(client, base + "/release")
    assert "is released already" in client.get(again.location).get_data(as_text=True)
    # Through another organisation's address: not found, nothing changes.
    other = f"/staff/organizations/{world['globex'].id}/numbers/{number.id}/suspend"
    assert post(client, other).status_code == 404


# --- Admin page and rights ---------------------------------------------------------------------------


def test_admins_see_their_pool_with_status_and_use(client, world) -> None:
    add(world, "+12015550100")
    add(world, "+4915123456700")
    add(world, "+447400123499", org="globex")
    Auth(client).login("numbers@acme.test")  # the right alone is enough
    page = client.get("/admin/numbers").get_data(as_text=True)
    assert "+1 201-555-0100" in page and "+49 1512 3456700" in page and "+44 7400 123499" not in page
    assert "Pending documents" in page and "Active" in page
    assert "Compliance documents" in page


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        (None, "/staff/", 302),
        ("admin@acme.test", "/staff/", 403),
        ("recruiter@acme.test", "/staff/organizations/{acme}", 403),
        ("recruiter@acme.test", "/admin/numbers", 403),
        ("recruiter@acme.test", "/admin/compliance", 403),
        ("recruiter@acme.test", "/admin/compliance/FR", 403),
        ("csm@relay.test", "/admin/numbers", 403),
        ("admin@globex.test", "/staff/organizations/{acme}", 403),
        ("csm@relay.test", "/staff/organizations/999999", 404),
        ("admin@acme.test", "/admin/compliance/US", 404),
        ("admin@acme.test", "/admin/compliance/fr", 404),
    ],
)
def test_rights_on_the_pages(client, world, who, path, status) -> None:
    if who:
        Auth(client).login(who)
    response = client.get(path.format(acme=world["acme"].id))
    assert response.status_code == status, response.get_data(as_text=True)[:500]


def test_staff_post_needs_staff(client, world) -> None:
    Auth(client).login("admin@acme.test")
    token = csrf_from(client, "/admin/")
    response = client.post(
        f"/staff/organizations/{world['acme'].id}/numbers",
        data={"csrf_token": token, "number": "+12015550100"},
    )
    assert response.status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SendingNumber)) == 0
