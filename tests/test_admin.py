"""Administration (issue #12): organisation settings, people and rights, credits, templates; and the
staff side of credits. Each page's right, the bad-input list, the ledger's sums and its CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from tests import factories as f
from tests.conftest import Auth, csrf_from
from tests.test_sessions import Visitor
from tests.test_sessions import served as served  # a fixture: a real server for a second browser
from webapp import zones
from webapp.accounts import password_links, permissions
from webapp.billing import credits, ledger, refills
from webapp.extensions import db
from webapp.messaging import templates
from webapp.models import (
    CommunityMembership,
    Conversation,
    CreditAccount,
    CreditTransaction,
    Message,
    MessageTemplate,
    Organization,
    Prospect,
    RefillRequest,
    Role,
    User,
    UserSession,
    WhatsappTemplate,
)


@pytest.fixture
def world(app):
    acme = f.messaging_org("Acme", sender_name="Acme", time_zone="Europe/Berlin")
    nordics = f.messaging_org("Acme Nordics", parent_id=acme.id)
    globex = f.org("Globex")
    admin_role = f.role(acme, sorted(permissions.CODES), "Administrator")
    admin = f.user(acme, "admin@acme.test", name="Ada Admin")
    admin.roles = [admin_role]
    recruiter = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    templater = f.user(acme, "templates@acme.test", codes=[permissions.ADMIN_TEMPLATES])
    nordic_admin = f.user(nordics, "admin@nordics.test", codes=sorted(permissions.CODES))
    globex_admin = f.user(globex, "admin@globex.test", codes=sorted(permissions.CODES))
    staff = f.user(None, "csm@relay.test", is_staff=True, name="Casey Staff")
    f.number(acme, "+4915123456700")
    job = f.job(acme, team=[recruiter], title="Backend Engineer")
    lena = f.application(job, f.candidate(acme, "Lena", "Müller", mobile="+4915123456789"))
    community = f.community(acme, "Engineers")
    g_template = MessageTemplate(organization_id=globex.id, channel="email", name="G", subject="S", body="B")
    db.session.add(g_template)
    db.session.commit()
    return {
        "acme": acme,
        "nordics": nordics,
        "globex": globex,
        "admin": admin,
        "admin_role": admin_role,
        "recruiter": recruiter,
        "templater": templater,
        "nordic_admin": nordic_admin,
        "globex_admin": globex_admin,
        "staff": staff,
        "job": job,
        "lena": lena,
        "community": community,
        "g_template": g_template,
    }


def post(client: FlaskClient, path: str, data: dict | None = None, **kw):
    token = csrf_from(client, "/login" if path.startswith("/set-password") else "/jobs")
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kw)


def staff_post(client: FlaskClient, path: str, data: dict | None = None):
    return client.post(path, data={"csrf_token": csrf_from(client, "/staff/"), **(data or {})})


def text(response) -> str:
    return response.get_data(as_text=True)


def error_of(html: str, field: str) -> str:
    match = re.search(rf'id="{field}-error">([^<]*)<', html)
    assert match, f"no error next to {field}"
    return match.group(1)


# --- Rights --------------------------------------------------------------------------------------------

PAGES = {
    "/admin/settings": permissions.ADMIN_ORGANIZATION,
    "/admin/people": permissions.ADMIN_USERS,
    "/admin/roles": permissions.ADMIN_USERS,
    "/admin/credits": permissions.ADMIN_CREDITS,
    "/admin/credits/ledger.csv": permissions.ADMIN_CREDITS,
    "/admin/templates": permissions.ADMIN_TEMPLATES,
    "/admin/templates/new": permissions.ADMIN_TEMPLATES,
    "/admin/templates/whatsapp/new": permissions.ADMIN_TEMPLATES,
}


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_needs_its_right(client, world, path) -> None:
    assert client.get(path).status_code == 302  # signed out: to the sign-in page
    auth = Auth(client)
    auth.login("recruiter@acme.test")
    denied = client.get(path)
    assert denied.status_code == 403
    spec = next(p for p in permissions.CATALOGUE if p.code == PAGES[path])
    assert spec.name in text(denied)
    auth.logout()
    # Another admin right is not this one.
    auth.login("templates@acme.test")
    assert client.get(path).status_code == (200 if PAGES[path] == permissions.ADMIN_TEMPLATES else 403)
    auth.logout()
    auth.login("csm@relay.test")
    assert client.get(path).status_code == 403  # staff belong to no organisation
    auth.logout()
    auth.login("admin@acme.test")
    assert client.get(path).status_code == 200


def test_another_organisations_objects_are_not_found(client, world) -> None:
    Auth(client).login("admin@globex.test")
    acme_user, acme_template = world["recruiter"].id, None
    template = MessageTemplate(organization_id=world["acme"].id, channel="sms", name="T", body="Hi")
    wa = f.whatsapp_template(world["acme"])
    db.session.add(template)
    db.session.commit()
    acme_template = template.id
    for path in (
        f"/admin/people/{acme_user}",
        f"/admin/templates/{acme_template}",
        f"/admin/templates/whatsapp/{wa.id}",
    ):
        assert client.get(path).status_code == 404
    for path in (
        f"/admin/people/{acme_user}/deactivate",
        f"/admin/people/{acme_user}/roles",
        f"/admin/people/{acme_user}/link",
        f"/admin/templates/{acme_template}/delete",
        f"/admin/templates/whatsapp/{wa.id}/delete",
        f"/admin/roles/{world['admin_role'].id}/delete",
    ):
        assert post(client, path).status_code == 404, path
    db.session.expire_all()
    assert db.session.get(User, acme_user).active
    assert db.session.get(MessageTemplate, acme_template) is not None
    assert db.session.get(Role, world["admin_role"].id) is not None
    # Nor can they put their people on another organisation's teams.
    me = world["globex_admin"].id
    bad = post(client, f"/admin/people/{me}/teams", {"jobs": str(world["job"].id)})
    assert bad.status_code == 422 and "of your organisation" in text(bad)


def test_staff_pages_are_for_staff_only(client, world) -> None:
    Auth(client).login("admin@acme.test")
    acme = world["acme"].id
    assert client.get("/staff/").status_code == 403
    assert (
        post(client, f"/staff/organizations/{acme}/credits", {"amount": "50", "note": "x"}).status_code == 403
    )
    assert post(client, f"/staff/organizations/{acme}/entitlements", {"has_crm": "y"}).status_code == 403
    assert credits.balance(db.session, world["acme"]) == 0


# --- Organisation settings ------------------------------------------------------------------------------


def settings(**kw) -> dict:
    return {
        "sender_name": "Acme Careers",
        "channels": "sms",
        "help_reply": "Acme Careers. Reply STOP to opt out.",
        "low_credit_threshold": "25",
        "time_zone": "America/New_York",
        "send_from": "09:30",
        "send_until": "18:00",
        "send_days": ["1", "2", "3", "4", "5", "6"],
        "bulk_cap": "250",
        **kw,
    }


def test_settings_are_saved(client, world) -> None:
    Auth(client).login("admin@acme.test")
    response = post(client, "/admin/settings", settings())
    assert response.status_code == 303
    db.session.expire_all()
    acme = db.session.get(Organization, world["acme"].id)
    assert (acme.sender_name, acme.sms_enabled, acme.whatsapp_enabled) == ("Acme Careers", True, False)
    assert (acme.low_credit_threshold, acme.time_zone) == (25, "America/New_York")
    assert acme.help_reply == "Acme Careers. Reply STOP to opt out."
    assert (acme.send_from, acme.send_until, acme.send_days) == (time(9, 30), time(18), "123456")
    assert acme.bulk_cap == 250
    page = text(client.get("/admin/settings"))
    assert 'name="bulk_cap"' in page and 'value="250"' in page
    assert 'value="America/New_York"' in page and '<option value="Europe/Berlin">' in page
    assert 'value="09:30"' in page and 'value="18:00"' in page
    assert re.search(r'<input checked[^>]*value="6"', page) and not re.search(
        r'<input checked[^>]*value="7"', page
    )


def test_the_organisations_hours_for_texts_start_at_08_00_to_20_00_monday_to_friday(client, world) -> None:
    acme = db.session.get(Organization, world["acme"].id)
    assert (acme.send_from, acme.send_until, acme.send_days) == (time(8), time(20), "12345")
    Auth(client).login("admin@acme.test")
    page = text(client.get("/admin/settings"))
    assert 'name="send_from"' in page and 'value="08:00"' in page and 'value="20:00"' in page
    assert "On the recipient's clock" in page
    # Typed as people type times: kept as the time it means.
    assert post(client, "/admin/settings", settings(send_from="7.45", send_until="2100")).status_code == 303
    db.session.expire_all()
    acme = db.session.get(Organization, world["acme"].id)
    assert (acme.send_from, acme.send_until) == (time(7, 45), time(21))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("low_credit_threshold", "abc", "whole number"),
        ("low_credit_threshold", "-5", "from 0 to"),
        ("low_credit_threshold", "99999999999", "from 0 to"),
        ("bulk_cap", "0", "from 1 to 5000"),
        ("bulk_cap", "many", "whole number"),
        ("time_zone", "Mars/Olympus", "Choose a time zone from the list"),
        ("time_zone", "", "Choose a time zone from the list"),
        ("channels", "fax", "SMS only, WhatsApp only, or both"),
        ("sender_name", "  ", "Enter the name candidates see"),
        ("sender_name", "A" * 101, "at most 100 fit"),
        ("sender_name", "Acme\nBcc: eve@example.com", "on one line"),
        ("sender_name", "Acme\r\nCareers", "on one line"),
        ("sender_name", "Acme\tCareers", "on one line"),
        ("sender_name", "Acme \u202emoc.knab", "invisible control characters"),
        ("sender_name", "=?utf-8?q?Bank?=", "cannot contain “=?”"),
        ("help_reply", "x" * 301, "at most 300 fit"),
        ("send_from", "25:00", "a time of day in 24-hour form"),
        ("send_from", "", "a time of day in 24-hour form"),
        ("send_until", "9pm", "a time of day in 24-hour form"),
        ("send_until", "07:00", "End after the start (09:30)"),
        ("send_until", "09:30", "End after the start (09:30)"),
        ("send_days", [], "Tick at least one day"),
        ("send_days", ["1", "8"], "Tick days from the list"),
    ],
)
def test_bad_settings_are_refused_next_to_the_field_and_nothing_is_saved(
    client, world, field, value, message
) -> None:
    Auth(client).login("admin@acme.test")
    response = post(client, "/admin/settings", settings(**{field: value}))
    assert response.status_code == 422
    assert message in error_of(text(response), field)
    db.session.expire_all()
    acme = db.session.get(Organization, world["acme"].id)
    assert acme.sender_name == "Acme" and acme.time_zone == "Europe/Berlin" and acme.whatsapp_enabled
    assert (acme.send_from, acme.send_days) == (time(8), "12345")
    if field in ("send_from", "send_until"):  # what was typed is kept
        assert f'value="{value}"' in text(response)


def test_a_long_sender_name_with_commas_quotes_and_brackets_is_kept_as_typed(client, world) -> None:
    name = 'Acme "Talent", Zoë & Co <careers@acme.example> ' + "x" * 53
    assert len(name) == 100
    Auth(client).login("admin@acme.test")
    assert post(client, "/admin/settings", settings(sender_name=name)).status_code == 303
    db.session.expire_all()
    assert db.session.get(Organization, world["acme"].id).sender_name == name


def test_channels_stay_within_the_entitlement_and_a_sub_organisation_follows_the_parents_threshold(
    client, world
) -> None:
    auth = Auth(client)
    auth.login("admin@globex.test")
    page = text(client.get("/admin/settings"))
    assert "Email only" in page and 'name="send_from"' not in page  # no texts: no hours for texts
    assert post(client, "/admin/settings", settings(channels="both", send_days=[])).status_code == 303
    db.session.expire_all()
    globex = db.session.get(Organization, world["globex"].id)
    assert not (globex.sms_enabled or globex.whatsapp_enabled) and globex.channels == ["email"]
    assert globex.send_days == "12345"  # kept
    auth.logout()
    auth.login("admin@nordics.test")
    page = text(client.get("/admin/settings"))
    assert "follow Acme's setting" in page and 'name="low_credit_threshold"' not in page
    assert post(client, "/admin/settings", settings(low_credit_threshold="7")).status_code == 303
    db.session.expire_all()
    assert db.session.get(Organization, world["nordics"].id).low_credit_threshold == 50  # untouched
    assert db.session.get(Organization, world["acme"].id).low_credit_threshold == 50


def test_staff_set_products_and_the_whatsapp_price(client, world) -> None:
    Auth(client).login("csm@relay.test")
    path = f"/staff/organizations/{world['globex'].id}/entitlements"
    bad = staff_post(client, path, {"has_messaging": "y", "whatsapp_price": "two"})
    assert bad.status_code == 422 and "whole number" in error_of(text(bad), "whatsapp_price")
    db.session.expire_all()
    assert not db.session.get(Organization, world["globex"].id).has_messaging
    assert staff_post(client, path, {"has_messaging": "y", "whatsapp_price": "2"}).status_code == 303
    db.session.expire_all()
    globex = db.session.get(Organization, world["globex"].id)
    assert globex.has_messaging and not globex.has_crm and globex.whatsapp_price == 2
    assert globex.channels == ["email", "sms"]  # SMS to start with; its admins choose


def test_times_are_shown_in_the_organisations_zone(client, world) -> None:
    winter = datetime(2026, 1, 15, 13, 5, tzinfo=UTC)
    assert zones.format_time(winter, "Europe/Berlin", "%H:%M") == "14:05 CET"
    assert zones.format_time(winter, "America/New_York", "%H:%M") == "08:05 EST"
    assert zones.format_time(winter, "Not/AZone", "%H:%M") == "13:05 UTC"
    assert zones.start_of_day(winter.date(), "Europe/Berlin") == datetime(2026, 1, 14, 23, tzinfo=UTC)
    conversation = f.conversation_url(world["lena"])
    message = Message(
        conversation_id=int(conversation.split("/")[-1]),
        channel="email",
        body="Hello",
        status="sent",
        created_at=winter,
    )
    db.session.add(message)
    db.session.commit()
    Auth(client).login("recruiter@acme.test")
    page = text(client.get(f"/applications/{world['lena'].id}?tab=email"))
    assert "15 Jan 14:05 CET" in page


# --- People and rights ------------------------------------------------------------------------------------


def shown_link(html: str) -> str:
    match = re.search(r'id="new-link-url"[^>]*value="[^"]*(/set-password/[^"]+)"', html)
    assert match, "no link shown"
    return match.group(1)


def test_an_invitation_is_a_one_time_link_that_sets_the_password(client, world) -> None:
    auth = Auth(client)
    auth.login("admin@acme.test")
    recruiter_role = world["recruiter"].roles[0].id
    response = post(
        client,
        "/admin/people/invite",
        {"name": "Robin New", "email": " Robin@Acme.test ", "roles": recruiter_role},
    )
    assert response.status_code == 200
    link = shown_link(text(response))
    robin = db.session.scalar(sa.select(User).where(User.email == "robin@acme.test"))
    assert robin is not None and [r.id for r in robin.roles] == [recruiter_role]
    assert robin.password_hash == ""
    # Only the token's hash is stored.
    token = link.rsplit("/", 1)[1]
    assert token not in str(db.session.execute(sa.text("SELECT token_hash FROM set_password_link")).all())
    assert "Invited" in text(client.get("/admin/people"))
    auth.logout()
    assert auth.login("robin@acme.test", "").status_code != 302  # no password yet: no way in

    too_short = post(client, link, {"password": "short", "repeated": "short"})
    assert too_short.status_code == 422 and "at least 10" in text(too_short)
    differ = post(client, link, {"password": "long-enough-1", "repeated": "long-enough-2"})
    assert differ.status_code == 422 and "differ" in text(differ)
    done = post(client, link, {"password": "long-enough-1", "repeated": "long-enough-1"})
    assert done.status_code == 303 and done.location == "/"  # signed in, to their start page
    start = client.get("/", follow_redirects=True)
    assert start.status_code == 200 and "Robin New · Acme" in text(start)
    assert client.get(link).status_code == 404  # once
    auth.logout()
    assert auth.login("robin@acme.test", "long-enough-1").status_code == 302


def test_a_link_expires_and_a_new_one_retires_the_old(app, world) -> None:
    user = world["recruiter"]
    old = password_links.issue(db.session, user, world["admin"])
    new = password_links.issue(db.session, user, world["admin"])
    assert password_links.find(db.session, old) is None
    assert password_links.find(db.session, new) is not None
    later = datetime.now(UTC) + password_links.LIFETIME + timedelta(seconds=1)
    assert password_links.find(db.session, new, now=later) is None


def test_setting_a_password_ends_the_users_other_sessions(app, client, served, world) -> None:
    phone = Visitor(app, served)  # a browser of its own, over HTTP
    assert phone.login("recruiter@acme.test").status_code == 302 and phone.signed_in()
    token = password_links.issue(db.session, world["recruiter"], world["admin"])
    db.session.commit()
    data = {"password": "a-new-secret!", "repeated": "a-new-secret!"}
    assert post(client, f"/set-password/{token}", data).status_code == 303
    assert not phone.signed_in()
    assert Visitor(app, served).login("recruiter@acme.test", "a-new-secret!").status_code == 302


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("recruiter@acme.test", "already has a Relay account"),
        ("RECRUITER@ACME.TEST", "already has a Relay account"),
        ("admin@globex.test", "already has a Relay account"),
        ("csm@relay.test", "already has a Relay account"),
        ("not-an-address", "is not an email address"),
        ("", "Enter their email address"),
    ],
)
def test_an_invitation_to_an_email_in_use_or_no_email_is_refused(client, world, email, message) -> None:
    Auth(client).login("admin@acme.test")
    before = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    response = post(client, "/admin/people/invite", {"name": "Someone", "email": email})
    assert response.status_code == 422
    assert message in error_of(text(response), "email")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == before


def test_deactivating_a_user_ends_their_sessions_and_reactivating_lets_them_back(
    app, client, served, world
) -> None:
    theirs = Visitor(app, served)
    assert theirs.login("recruiter@acme.test").status_code == 302 and theirs.signed_in()
    Auth(client).login("admin@acme.test")
    rid = world["recruiter"].id
    response = post(client, f"/admin/people/{rid}/deactivate")
    assert response.status_code == 303
    assert "signed out of 1 session" in text(client.get(response.location))
    assert not theirs.signed_in()
    live = sa.select(sa.func.count()).where(UserSession.user_id == rid, UserSession.revoked_at.is_(None))
    assert db.session.scalar(live) == 0
    assert Visitor(app, served).login("recruiter@acme.test").status_code != 302
    assert post(client, f"/admin/people/{rid}/reactivate").status_code == 303
    assert Visitor(app, served).login("recruiter@acme.test").status_code == 302


def test_the_last_admin_cannot_be_removed(client, world) -> None:
    Auth(client).login("admin@acme.test")
    admin, role = world["admin"], world["admin_role"]
    # Deactivating oneself, dropping one's own admin role, the right from the matrix, the role itself.
    assert post(client, f"/admin/people/{admin.id}/deactivate").status_code == 422
    refused = post(client, f"/admin/people/{admin.id}/roles", {"roles": world["recruiter"].roles[0].id})
    assert refused.status_code == 422 and "nobody who can manage users and roles" in error_of(
        text(refused), "roles"
    )
    grants = [f"{role.id}:{c}" for c in permissions.CODES if c != permissions.ADMIN_USERS]
    matrix = post(client, "/admin/roles", {"grant": grants})
    assert matrix.status_code == 422 and "nobody who can manage users and roles" in text(matrix)
    assert post(client, f"/admin/roles/{role.id}/delete").status_code == 422
    db.session.expire_all()
    role = db.session.get(Role, role.id)
    assert role is not None and permissions.ADMIN_USERS in {p.code for p in role.permissions}
    assert db.session.get(User, admin.id).active and db.session.get(User, admin.id).roles == [role]

    # With a second admin, the first may go.
    second = f.user(world["acme"], "second@acme.test")
    second.roles = [role]
    db.session.commit()
    assert post(client, f"/admin/people/{second.id}/deactivate").status_code == 303
    assert post(client, f"/admin/people/{second.id}/reactivate").status_code == 303
    assert post(client, f"/admin/people/{admin.id}/roles", {"roles": []}).status_code == 303


def test_the_matrix_roles_and_teams(client, world) -> None:
    Auth(client).login("admin@acme.test")
    page = text(client.get("/admin/roles"))
    assert "Candidate management" in page and "Recruitment – SMS" in page and "Sourcing – messaging" in page
    assert post(client, "/admin/roles/new", {"name": "Coordinator"}).status_code == 303
    clash = post(client, "/admin/roles/new", {"name": "Coordinator"})
    assert clash.status_code == 422 and "already" in error_of(text(clash), "name")
    coordinator = db.session.scalar(sa.select(Role).where(Role.name == "Coordinator"))
    keep = [f"{world['admin_role'].id}:{c}" for c in permissions.CODES]
    grants = [*keep, f"{coordinator.id}:{permissions.RECRUITMENT_SMS}", f"{coordinator.id}:no.such.right"]
    assert post(client, "/admin/roles", {"grant": grants}).status_code == 422  # not in the catalogue
    assert post(client, "/admin/roles", {"grant": grants[:-1]}).status_code == 303
    db.session.expire_all()
    assert [p.code for p in db.session.get(Role, coordinator.id).permissions] == [permissions.RECRUITMENT_SMS]

    rid = world["recruiter"].id
    other_job = f.job(world["acme"], title="Designer")
    world["acme"].has_crm = True  # sourcing teams are the CRM's (tests/test_crm.py: without it)
    db.session.commit()
    saved = post(
        client, f"/admin/people/{rid}/teams", {"jobs": [other_job.id], "communities": [world["community"].id]}
    )
    assert saved.status_code == 303
    from webapp.accounts import people

    assert people.team_ids(db.session, db.session.get(User, rid)) == ({other_job.id}, {world["community"].id})
    forged = post(client, f"/admin/people/{rid}/teams", {"jobs": ["1x"]})
    assert forged.status_code == 422


# --- Credits --------------------------------------------------------------------------------------------


def send_sms(client, world, body: str) -> None:
    conversation = f.conversation_url(world["lena"])
    response = post(
        client, f"{conversation}/messages", {"channel": "sms", "body": body}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200, text(response)


def account(world) -> CreditAccount:
    return credits.account_for(db.session, world["acme"])


def test_the_balance_always_equals_the_ledger_after_refills_and_sends(client, world) -> None:
    Auth(client).login("csm@relay.test")
    path = f"/staff/organizations/{world['nordics'].id}/credits"  # a sub-organisation: the parent's account
    assert staff_post(client, path, {"amount": "20", "note": "Order 1"}).status_code == 303
    Auth(client).logout()
    Auth(client).login("recruiter@acme.test")
    send_sms(client, world, "Hi %FIRSTNAME%")
    send_sms(client, world, "x" * 200)  # two segments
    Auth(client).logout()
    Auth(client).login("csm@relay.test")
    assert staff_post(client, path, {"amount": " +5 ", "note": "Order 2"}).status_code == 303
    db.session.expire_all()
    acc = account(world)
    assert acc.balance == 20 - 1 - 2 + 5 == credits.ledger_sum(db.session, acc.id)
    rows = db.session.scalars(sa.select(CreditTransaction).order_by(CreditTransaction.id)).all()
    assert [(r.kind, r.amount) for r in rows] == [("top_up", 20), ("debit", -1), ("debit", -2), ("top_up", 5)]
    assert rows[0].user_id == world["staff"].id and rows[1].user_id == world["recruiter"].id
    # Each row's balance_after is the running sum.
    running = 0
    for r in rows:
        running += r.amount
        assert r.balance_after == running
    Auth(client).logout()
    Auth(client).login("admin@acme.test")
    page = text(client.get("/admin/credits"))
    assert re.search(r'id="balance">22<', page) and "differ" not in page
    assert re.search(r'id="ledger-count">4<', page)
    assert "Riley Chen" in page and "Casey Staff" in page


@pytest.mark.parametrize(
    ("amount", "note", "field", "message"),
    [
        ("-5", "Order", "amount", "A top-up adds a positive number of credits."),
        ("0", "Order", "amount", "A top-up adds a positive number of credits."),
        ("abc", "Order", "amount", "is not a whole number of credits"),
        ("1.5", "Order", "amount", "is not a whole number of credits"),
        ("1e3", "Order", "amount", "is not a whole number of credits"),
        ("٣", "Order", "amount", "is not a whole number of credits"),
        ("", "Order", "amount", "Enter the number of credits to add."),
        ("99999999999999999999", "Order", "amount", "at most 2147483647"),
        ("2147483647", "Order", "amount", "would be over the most an account holds"),
        ("50", "  ", "note", "Say why in the note"),
    ],
)
def test_a_bad_refill_is_refused_next_to_the_field_and_writes_nothing(
    client, world, amount, note, field, message
) -> None:
    credits.top_up(db.session, world["acme"], 10, "Before")
    db.session.commit()
    Auth(client).login("csm@relay.test")
    response = staff_post(
        client, f"/staff/organizations/{world['acme'].id}/credits", {"amount": amount, "note": note}
    )
    assert response.status_code == 422
    assert message in error_of(text(response), field)
    db.session.expire_all()
    assert account(world).balance == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditTransaction)) == 1


def test_the_cli_keeps_refusing_what_the_page_refuses(runner, world) -> None:
    for args, expected in (
        (["Acme", "0", "--note", "x"], "a top-up adds a positive number of credits"),
        (["Acme", "5", "--note", " "], "say why"),
    ):
        result = runner.invoke(args=["credits", "top-up", *args])
        assert result.exit_code != 0 and expected in result.output
    assert runner.invoke(args=["credits", "top-up", "Acme", "5", "--note", "Order"]).exit_code == 0
    assert credits.balance(db.session, world["acme"]) == 5


def test_a_refill_request_reaches_staff_and_a_refill_closes_it(client, world) -> None:
    auth = Auth(client)
    auth.login("admin@acme.test")
    assert post(client, "/admin/credits/request", {"note": "For the spring campaign"}).status_code == 303
    assert post(client, "/admin/credits/request", {"note": "again"}).status_code == 303  # one open is enough
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RefillRequest)) == 1
    assert "Customer success has been told" in text(client.get("/admin/credits"))
    auth.logout()
    auth.login("admin@nordics.test")  # a sub-organisation asks nobody: its parent holds the credits
    refused = post(client, "/admin/credits/request", {"note": ""})
    assert refused.status_code == 422 and "parent organisation" in text(refused)
    auth.logout()
    auth.login("csm@relay.test")
    index = text(client.get("/staff/"))
    assert "Acme: refill requested" in index and "For the spring campaign" in index
    assert (
        staff_post(
            client, f"/staff/organizations/{world['acme'].id}/credits", {"amount": "100", "note": "PO 7"}
        ).status_code
        == 303
    )
    request = db.session.scalar(sa.select(RefillRequest))
    db.session.refresh(request)
    assert request.handled_by_id == world["staff"].id and request.transaction_id is not None
    assert "No customer is waiting" in text(client.get("/staff/"))


def test_a_sub_organisation_sees_the_parents_balance_read_only(client, world) -> None:
    credits.top_up(db.session, world["acme"], 42, "Order")
    db.session.commit()
    Auth(client).login("admin@nordics.test")
    page = text(client.get("/admin/credits"))
    assert re.search(r'id="balance">42<', page) and 'id="read-only"' in page
    assert "Request a refill" not in page and 'id="ledger"' not in page
    assert client.get("/admin/credits/ledger.csv").status_code == 404


def ledger_world(world) -> None:
    """Refills and sends at known times: a refill in January, a send in February, a refund."""
    acme = world["acme"]
    jan = datetime(2026, 1, 10, 9, tzinfo=UTC)
    row = credits.top_up(db.session, acme, 100, '=HYPERLINK("http://evil")', world["staff"])
    row.created_at = jan
    conversation_id = int(f.conversation_url(world["lena"]).split("/")[-1])
    for n, (at, status) in enumerate(
        [
            (datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "delivered"),
            (datetime(2026, 2, 2, 8, tzinfo=UTC), "rejected"),
        ]
    ):
        message = Message(
            conversation_id=conversation_id,
            channel="sms",
            body=f"m{n}",
            author_id=world["recruiter"].id,
            to_addr="+4915123456789",
            credits=2,
            status=status,
        )
        db.session.add(message)
        db.session.flush()
        debit = credits.debit(db.session, acme, message)
        debit.created_at = at
        if status == "rejected":
            credits.refund(db.session, acme, message)
    db.session.commit()


def test_the_ledger_filters_and_its_csv(client, world) -> None:
    ledger_world(world)
    Auth(client).login("admin@acme.test")

    def count(query: str) -> int:
        page = text(client.get("/admin/credits" + query))
        return int(re.search(r'id="ledger-count">(\d+)<', page).group(1))

    assert count("") == 4
    assert count("?kind=debit") == 2 and count("?kind=top_up") == 1 and count("?kind=refund") == 1
    assert count(f"?user={world['recruiter'].id}") == 3  # debits and the refund of their message
    assert count(f"?user={world['staff'].id}") == 1
    # 31 Jan 23:30 UTC is 1 Feb in Berlin: the date filter counts the organisation's days.
    assert count("?since=2026-02-01&until=2026-02-01") == 1
    assert count("?since=2026-02-01") == 3
    fragment = client.get("/admin/credits?kind=debit", headers={"HX-Request": "true"})
    assert text(fragment).startswith('\n<div id="ledger"') or text(fragment).lstrip().startswith(
        '<div id="ledger"'
    )
    bad = text(client.get("/admin/credits?kind=nonsense&since=yesterday"))
    assert "Choose a type from the list." in bad and "Pick a date" in bad

    response = client.get("/admin/credits/ledger.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text(response))))
    assert rows[0] == ledger.CSV_HEADER
    assert [r[2] for r in rows[1:]] == ["Refill", "Message", "Message", "Refund"]
    assert [int(r[3]) for r in rows[1:]] == [100, -2, -2, 2]
    assert [int(r[4]) for r in rows[1:]] == [100, 98, 96, 98]
    assert rows[1][0] == "2026-01-10 10:00:00" and rows[1][1] == "Europe/Berlin"
    assert rows[1][9].startswith("'=")  # a spreadsheet shows it as text, not a formula
    assert rows[2][5:9] == ["Riley Chen", "sms", "Lena Müller", "'+4915123456789"]
    debits_only = list(csv.reader(io.StringIO(text(client.get("/admin/credits/ledger.csv?kind=debit")))))
    assert len(debits_only) == 3
    assert client.get("/admin/credits/ledger.csv?since=soon").status_code == 400


def test_the_ledger_names_whom_each_message_was_for(client, world) -> None:
    """A debit names the conversation's person (a candidate or a prospect), the number beside it; a
    message in no conversation (a HELP reply to a stranger) names its number alone. The CSV has the
    person and the channel, not our message id."""
    acme = world["acme"]
    credits.top_up(db.session, acme, 10, "Order", world["staff"])
    prospect = Prospect(
        organization_id=acme.id, first_name="=Paul", last_name="Becker", mobile="+447400900111"
    )
    db.session.add(prospect)
    db.session.flush()
    membership = CommunityMembership(community_id=world["community"].id, prospect_id=prospect.id)
    db.session.add(membership)
    db.session.flush()
    with_prospect = Conversation(organization_id=acme.id, community_membership_id=membership.id)
    db.session.add(with_prospect)
    db.session.flush()
    with_lena = int(f.conversation_url(world["lena"]).split("/")[-1])
    for conversation_id, channel, to in [
        (with_lena, "sms", "+4915123456789"),
        (with_prospect.id, "whatsapp", "+447400900111"),
        (None, "sms", "+447700900555"),
    ]:
        message = Message(
            conversation_id=conversation_id, channel=channel, body="Hi", to_addr=to, credits=1, status="sent"
        )
        db.session.add(message)
        db.session.flush()
        credits.debit(db.session, acme, message)
    db.session.commit()
    Auth(client).login("admin@acme.test")

    page = text(client.get("/admin/credits?kind=debit"))
    details = [
        " ".join(re.sub(r"<[^>]+>", " ", cell).split())
        for cell in re.findall(r'<td class="cell-wide">(.*?)</td>', page, re.S)
    ]
    assert details == [
        "SMS to +44 7700 900555",
        "WhatsApp to =Paul Becker +44 7400 900111",
        "SMS to Lena Müller +49 1512 3456789",
    ]
    assert (
        '<span class="ledger-person">Lena Müller</span> <span class="muted nowrap">+49 1512 3456789</span>'
        in page
    )

    rows = list(csv.reader(io.StringIO(text(client.get("/admin/credits/ledger.csv?kind=debit")))))
    assert rows[0] == ledger.CSV_HEADER and "message" not in rows[0]
    person, to = rows[0].index("person"), rows[0].index("to")
    assert [(r[6], r[person], r[to]) for r in rows[1:]] == [
        ("sms", "Lena Müller", "'+4915123456789"),
        ("whatsapp", "'=Paul Becker", "'+447400900111"),  # a name is quoted against formulas too
        ("sms", "", "'+447700900555"),
    ]


def test_usage_by_month_user_and_country(app, world) -> None:
    ledger_world(world)
    acc = account(world)
    use = ledger.usage(db.session, acc.id, "Europe/Berlin", months=3, now=datetime(2026, 3, 5, tzinfo=UTC))
    assert use.months == ["2026-01", "2026-02", "2026-03"]
    # The delivered SMS counts in February (Berlin time); the rejected one was refunded.
    assert use.by_month["2026-01"]["sms"] == 0 and use.by_month["2026-02"]["sms"] == 2
    assert use.by_user == [("Riley Chen", 2)] and use.by_country == [("DE", 2)]
    chart = ledger.chart(use)
    assert [b.month for b in chart.bars] == ["2026-02"] and chart.top == 2
    utc = ledger.usage(db.session, acc.id, "UTC", months=3, now=datetime(2026, 3, 5, tzinfo=UTC))
    assert utc.by_month["2026-01"]["sms"] == 2


def test_the_low_balance_banner_for_admins_and_senders(client, world) -> None:
    credits.top_up(db.session, world["acme"], 60, "Order")
    db.session.commit()
    auth = Auth(client)
    auth.login("recruiter@acme.test")
    application = f"/applications/{world['lena'].id}"
    assert "Credits are running low" not in text(client.get(application))
    world["acme"].low_credit_threshold = 60
    db.session.commit()
    assert "Credits are running low: 60 left" in text(client.get(application))
    auth.logout()
    auth.login("admin@acme.test")
    assert 'id="low-credits"' in text(client.get("/admin/"))


# --- Templates ------------------------------------------------------------------------------------------


def template(**kw) -> dict:
    return {
        "name": "Invitation to interview (SMS)",
        "channel": "sms",
        "kind": "general",
        "body": "Hi %FIRSTNAME%",
        **kw,
    }


def test_an_sms_template_is_created_as_named_and_offered_in_the_composer(client, world) -> None:
    Auth(client).login("templates@acme.test")
    assert post(client, "/admin/templates/new", template()).status_code == 303
    invitation = template(name="Book (SMS)", kind="interview_invitation", body="Book: %INVITELINK%")
    assert post(client, "/admin/templates/new", invitation).status_code == 303
    saved = db.session.scalars(
        sa.select(MessageTemplate).where(MessageTemplate.organization_id == world["acme"].id)
    ).all()
    assert {(t.name, t.kind) for t in saved} == {
        ("Invitation to interview (SMS)", "general"),
        ("Book (SMS)", "interview_invitation"),
    }
    assert "Invitation to interview (SMS)" in text(client.get("/admin/templates"))
    Auth(client).logout()
    Auth(client).login("recruiter@acme.test")
    composer = text(client.get(f"/applications/{world['lena'].id}"))
    assert "SMS · Invitation to interview (SMS)" in composer
    assert "Book (SMS)" not in composer  # an invitation goes with its booking link, not from here


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (template(kind="interview_invitation"), "body", "must contain %INVITELINK%"),
        (template(channel="whatsapp", kind="interview_invitation"), "body", "must contain %INVITELINK%"),
        (template(body="Book: %INVITELINK%"), "body", "only in interview invitations"),
        (template(kind="interview_invitation", body="Book/%INVITELINK%"), "body", "touches the text beside"),
        (template(body=""), "body", "Write a message."),
        (template(body="x" * 1600), "body", "the limit is 10"),
        (template(name=" "), "name", "Give the template a name."),
        (template(channel="fax"), "channel", "Choose SMS, WhatsApp or email."),
        (template(kind="other"), "kind", "Choose general or interview invitation."),
        (template(channel="email", subject=""), "subject", "Give the email a subject."),
        (template(name="Taken"), "name", "There is already a SMS template called “Taken”."),
    ],
)
def test_template_rules_are_told_next_to_the_field(client, world, data, field, message) -> None:
    db.session.add(MessageTemplate(organization_id=world["acme"].id, channel="sms", name="Taken", body="x"))
    db.session.commit()
    Auth(client).login("admin@acme.test")
    response = post(client, "/admin/templates/new", data)
    assert response.status_code == 422
    html = text(response)
    assert message in error_of(html, field)
    assert "Hi %FIRSTNAME%" in html or data["body"] != "Hi %FIRSTNAME%"  # what was typed stays
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MessageTemplate)) == 2  # G and Taken


def test_email_invitations_may_leave_the_link_out_and_an_edit_keeps_the_rules(client, world) -> None:
    Auth(client).login("admin@acme.test")
    email = template(name="Invite (email)", channel="email", kind="interview_invitation", subject="Interview")
    assert post(client, "/admin/templates/new", email).status_code == 303
    saved = db.session.scalar(sa.select(MessageTemplate).where(MessageTemplate.name == "Invite (email)"))
    assert (
        post(client, f"/admin/templates/{saved.id}", {**email, "channel": "sms", "subject": ""}).status_code
        == 422
    )
    assert (
        post(client, f"/admin/templates/{saved.id}", {**email, "body": "Book: %INVITELINK%"}).status_code
        == 303
    )
    db.session.refresh(saved)
    assert saved.body == "Book: %INVITELINK%" and saved.updated_at is not None
    assert post(client, f"/admin/templates/{saved.id}/delete").status_code == 303
    assert db.session.get(MessageTemplate, saved.id) is None


def test_the_live_preview_uses_sample_data_and_the_segment_counter(client, world) -> None:
    Auth(client).login("admin@acme.test")
    html = text(
        post(client, "/admin/templates/preview", template(body="Hi %FIRSTNAME% at %COMPANY% %NAME% 😀"))
    )
    assert "Hi Alex at Acme %NAME% 😀" in html
    assert '<span data-counter="units">25 of 70 UCS-2 units</span>' in html
    assert "<code>😀</code> counts 2 units." in html  # the counter's words are the composer's
    assert re.search(r'data-preview="unknown">Unknown placeholder: %NAME%', html)
    long = text(post(client, "/admin/templates/preview", template(body="a" * 161)))
    assert '<span data-counter="segments">2 segments</span>' in long
    assert '<span data-counter="units">161 of 160 GSM-7 units</span>' in long
    euro = text(post(client, "/admin/templates/preview", template(body="a" * 159 + "€")))
    assert '<span data-counter="units">161 of 160 GSM-7 units</span>' in euro
    assert '<p class="counter-note" data-counter="doubled"><code>€</code> counts 2 units.</p>' in euro
    missing = text(post(client, "/admin/templates/preview", template(kind="interview_invitation")))
    assert "must contain %INVITELINK%" in missing
    link = text(
        post(client, "/admin/templates/preview", template(kind="interview_invitation", body="%INVITELINK%"))
    )
    assert templates.SAMPLE_BOOKING_PATH in link and 'data-preview="problem"' not in link


FIX_BUTTON = re.compile(
    r'<button type="button" class="button small link-fix" data-fix-into="(\w+)" data-fix-from="([^"]*)" '
    r'data-fix-to="([^"]*)"( form="[\w-]+")?>Put a space around the link</button>'
)


def test_a_glued_booking_link_is_refused_next_to_the_text_with_a_one_click_fix(client, world) -> None:
    Auth(client).login("admin@acme.test")
    glued = template(kind="interview_invitation", body="%INVITELINK%Hi %FIRSTNAME%")
    response = post(client, "/admin/templates/new", glued)
    assert response.status_code == 422
    html = text(response)
    assert "touches the text beside it" in error_of(html, "body")
    assert "%INVITELINK%Hi %FIRSTNAME%</textarea>" in html
    under_field, in_preview = FIX_BUTTON.findall(html)
    assert under_field == ("body", "%INVITELINK%Hi %FIRSTNAME%", "%INVITELINK% Hi %FIRSTNAME%", "")
    # The preview's (outside the form) belongs to the editor's form.
    assert in_preview[:3] == under_field[:3] and in_preview[3] == ' form="template-form"'
    assert 'data-fix-for="body"' in html  # the one under the field steps aside when the text changes
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MessageTemplate)) == 1  # Globex's
    # Said while typing too, and the fixed text is saved.
    live = text(post(client, "/admin/templates/preview", glued))
    assert 'data-preview="problem"' in live and "touches the text beside it" in live
    assert FIX_BUTTON.search(live).group(3) == "%INVITELINK% Hi %FIRSTNAME%"
    assert post(client, "/admin/templates/new", {**glued, "body": under_field[2]}).status_code == 303
    # An email invitation's subject follows the rule too, next to the subject.
    email = template(
        name="Invite (email)", channel="email", kind="interview_invitation", subject="Book%INVITELINK%"
    )
    response = post(client, "/admin/templates/new", email)
    assert response.status_code == 422
    assert "touches the text beside it" in error_of(text(response), "subject")
    assert FIX_BUTTON.search(text(response)).group(1, 3) == ("subject", "Book %INVITELINK%")


def test_the_placeholder_buttons_mark_the_link_as_a_word_of_its_own(client, world) -> None:
    Auth(client).login("admin@acme.test")
    html = text(client.get("/admin/templates/new"))
    buttons = re.findall(r'<button type="button" class="button small" data-insert="(%\w+%)"([^>]*)>', html)
    assert {p for p, attributes in buttons if "data-insert-word" in attributes} == {"%INVITELINK%"}
    assert len(buttons) == 6


def test_approved_whatsapp_templates(client, world) -> None:
    Auth(client).login("admin@acme.test")
    good = {
        "name": "interview_slot",
        "locale": "en_GB",
        "body": "Hi {{1}}, pick a slot for {{2}}.",
        "parameters": "%FIRSTNAME% %JOBTITLE%",
        "approved": "y",
    }
    for change, field, message in [
        ({"name": "Interview Slot"}, "name", "lower-case"),
        ({"locale": "english"}, "locale", "language code"),
        ({"parameters": "%FIRSTNAME%"}, "parameters", "2 slots"),
        ({"parameters": "%FIRSTNAME% %AGE%"}, "parameters", "Unknown placeholder"),
        ({"body": "Hi {{1}} and {{3}}"}, "body", "without gaps"),
    ]:
        response = post(client, "/admin/templates/whatsapp/new", {**good, **change})
        assert response.status_code == 422 and message in error_of(text(response), field), change
    assert post(client, "/admin/templates/whatsapp/new", good).status_code == 303
    assert (
        post(client, "/admin/templates/whatsapp/new", good).status_code == 422
    )  # the same name and language
    saved = db.session.scalar(sa.select(WhatsappTemplate).where(WhatsappTemplate.name == "interview_slot"))
    assert saved.parameter_list == ["%FIRSTNAME%", "%JOBTITLE%"] and saved.approved
    # Used by a message: kept, but withdrawn.
    conversation_id = int(f.conversation_url(world["lena"]).split("/")[-1])
    db.session.add(
        Message(conversation_id=conversation_id, channel="whatsapp", body="x", whatsapp_template_id=saved.id)
    )
    db.session.commit()
    assert post(client, f"/admin/templates/whatsapp/{saved.id}/delete").status_code == 303
    db.session.refresh(saved)
    assert not saved.approved


def test_refills_module_refuses_non_staff(world) -> None:
    with pytest.raises(PermissionError):
        refills.refill(db.session, world["admin"], world["acme"], "10", "x")
