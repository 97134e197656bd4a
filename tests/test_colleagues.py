"""What a colleague receives (issue 17): the invitation and a new set-password link by email, through a
real SMTP server (aiosmtpd), and signed in once the password is set; the last-admin rule that counts
only people who can sign in; staff's and the command line's new links; the start page and the sections
each demo user is offered; and an email-only organisation without texting's pages."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests import factories as f
from tests.conftest import Auth, csrf_from
from tests.smtp_sink import SmtpSink, running_smtp_sink
from webapp import demo, zones
from webapp.accounts import password_links, permissions
from webapp.extensions import db
from webapp.messaging.templates import templates_of
from webapp.models import Organization, SetPasswordLink, User, UserSession

BASE = "https://relay.acme.test"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with running_smtp_sink() as sink:
        yield sink


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, object]:
    config: dict[str, object] = {"PUBLIC_BASE_URL": BASE}
    if "sink" in request.fixturenames:
        config["SMTP_URL"] = request.getfixturevalue("sink").url
    return config


@pytest.fixture
def world(app):
    acme = f.messaging_org("Acme", time_zone="Europe/Berlin")
    admin_role = f.role(acme, sorted(permissions.CODES), "Administrator")
    recruiter_role = f.role(acme, [permissions.RECRUITMENT_SMS], "Recruiter")
    admin = f.user(acme, "ada@acme.test", name="Ada Admin")
    admin.roles = [admin_role]
    recruiter = f.user(acme, "riley@acme.test", name="Riley Chen")
    recruiter.roles = [recruiter_role]
    f.job(acme, team=[recruiter], title="Backend Engineer")
    globex = f.org("Globex")
    globex_admin = f.user(globex, "gloria@globex.test", codes=sorted(permissions.CODES), name="Gloria")
    staff = f.user(None, "casey@relay.test", is_staff=True, name="Casey Staff")
    db.session.commit()
    return {
        "acme": acme,
        "admin": admin,
        "admin_role": admin_role,
        "recruiter": recruiter,
        "recruiter_role": recruiter_role,
        "globex": globex,
        "globex_admin": globex_admin,
        "staff": staff,
    }


def post(client: FlaskClient, path: str, data: dict | None = None, page: str = "/jobs"):
    return client.post(path, data={"csrf_token": csrf_from(client, page), **(data or {})})


def text(response) -> str:
    return response.get_data(as_text=True)


def link_in(email: EmailMessage) -> str:
    """The set-password link in the email's text, as the invited person's mail program would find it."""
    [url] = re.findall(r"https?://\S+", email.get_content())
    assert url.startswith(BASE + password_links.PATH)
    return url.removeprefix(BASE)


def signed_in_as(client: FlaskClient) -> str:
    """Whose name the page header shows (empty when nobody is signed in)."""
    page = text(client.get("/", follow_redirects=True))
    found = re.search(r'<span class="who">([^<·]+)', page)
    return found.group(1).strip() if found else ""


@contextlib.contextmanager
def browser(app: Flask) -> Iterator[FlaskClient]:
    """Another browser: its own cookies, and its own app context, so that nothing a request of another
    browser left in `g` (Flask-Login keeps the signed-in user there) is taken for this one's."""
    with app.app_context():
        yield app.test_client()


def choose_password(client: FlaskClient, path: str, password: str = "a-long-new-secret"):
    return client.post(
        path,
        data={"csrf_token": csrf_from(client, path), "password": password, "repeated": password},
    )


# --- The invitation, by email ---------------------------------------------------------------------------


def test_an_invitation_is_emailed_and_its_link_signs_the_new_colleague_in(app, client, world, sink) -> None:
    Auth(client).login("ada@acme.test")
    page = post(
        client,
        "/admin/people/invite",
        {"name": "Robin New", "email": "robin@acme.test", "roles": world["recruiter_role"].id},
    )
    assert page.status_code == 200
    html = text(page)
    assert "Emailed to robin@acme.test" in html
    assert 'data-copy="new-link-url"' in html and "Copy link" in html  # the copy button, no inline script
    assert "<script>" not in html

    [received] = sink.messages
    assert received.rcpt_tos == ["robin@acme.test"]
    email = received.message
    assert [a.addr_spec for a in email["To"].addresses] == ["robin@acme.test"]
    assert [(a.display_name, a.addr_spec) for a in email["From"].addresses] == [("Relay", sink.from_address)]
    assert [a.addr_spec for a in email["Reply-To"].addresses] == ["ada@acme.test"]  # a reply reaches Ada
    assert email["Subject"] == "Ada Admin invited you to Acme on Relay"
    body = email.get_content()
    assert "Ada Admin (ada@acme.test) has invited you to Acme on Relay" in body
    robin = db.session.scalar(sa.select(User).where(User.email == "robin@acme.test"))
    link = db.session.scalar(sa.select(SetPasswordLink).where(SetPasswordLink.user_id == robin.id))
    expiry = zones.format_time(link.expires_at, "Europe/Berlin", "%A %d %B %Y, %H:%M")
    assert f"until {expiry}" in body and ("CET" in expiry or "CEST" in expiry)
    path = link_in(email)
    assert f'value="{BASE}{path}"' in html  # the page shows the same link
    assert re.search(re.escape(BASE + path) + r"\s", body)  # whitespace after the link

    # Ada tries the link in her own browser: she is signed out, and Robin is in.
    assert client.get(path).status_code == 200
    done = choose_password(client, path)
    assert done.status_code == 303 and done.location == "/"
    with app.app_context():  # the cookie, not what the last request left in `g`
        assert signed_in_as(client) == "Robin New"
    ada_sessions = sa.select(UserSession).where(
        UserSession.user_id == world["admin"].id, UserSession.revoked_at.is_(None)
    )
    assert db.session.scalars(ada_sessions).all() == []
    with app.app_context():
        assert client.get(path).status_code == 404  # once


def test_a_new_set_password_link_is_emailed_and_signs_them_in(app, world, sink) -> None:
    admin = app.test_client()
    Auth(admin).login("ada@acme.test")
    riley = world["recruiter"].id
    page = post(admin, f"/admin/people/{riley}/link", page=f"/admin/people/{riley}")
    assert page.status_code == 200 and "Emailed to riley@acme.test" in text(page)
    [received] = sink.messages
    email = received.message
    assert email["Subject"] == "Set your password for Acme on Relay"
    assert "Ada Admin (ada@acme.test) has made you a new link" in email.get_content()

    with browser(app) as riley_browser:
        assert choose_password(riley_browser, link_in(email)).status_code == 303
        assert signed_in_as(riley_browser) == "Riley Chen"
    with app.app_context():
        assert signed_in_as(admin) == "Ada Admin"  # another browser's session is not touched


def test_a_refused_email_is_said_and_the_link_is_still_there_to_copy(client, world, sink) -> None:
    sink.refuse_next(550, "5.1.1 No such user", at="rcpt")
    Auth(client).login("ada@acme.test")
    page = post(client, "/admin/people/invite", {"name": "Robin New", "email": "robin@acme.test"})
    assert page.status_code == 200
    html = text(page)
    assert "Not emailed: the mail server did not confirm it" in html and "No such user" in html
    assert 'id="new-link-url"' in html and "Copy link" in html
    assert db.session.scalar(sa.select(User.id).where(User.email == "robin@acme.test")) is not None


def test_without_a_mail_server_the_page_says_it_was_not_emailed(client, world, caplog) -> None:
    Auth(client).login("ada@acme.test")
    with caplog.at_level(logging.DEBUG):
        page = post(client, "/admin/people/invite", {"name": "Robin New", "email": "robin@acme.test"})
    assert page.status_code == 200 and "Not emailed: no mail server is set up (SMTP_URL)" in text(page)
    assert password_links.PATH not in caplog.text  # the link is not written to the log either


# --- The last admin --------------------------------------------------------------------------------------


def test_an_invited_admin_who_never_set_a_password_does_not_keep_the_organisation(app, client, world) -> None:
    invited = User(
        email="jordan@acme.test",
        name="Jordan Invited",
        organization_id=world["acme"].id,
        password_hash="",
        roles=[world["admin_role"]],
    )
    db.session.add(invited)
    db.session.commit()
    Auth(client).login("ada@acme.test")
    ada = world["admin"].id

    refused = post(client, f"/admin/people/{ada}/roles", {"roles": world["recruiter_role"].id})
    assert refused.status_code == 422
    assert "an invitation not yet accepted does not count" in text(refused)
    matrix = [f"{world['admin_role'].id}:{c}" for c in permissions.CODES if c != permissions.ADMIN_USERS]
    assert post(client, "/admin/roles", {"grant": matrix}).status_code == 422
    db.session.expire_all()
    assert [r.id for r in db.session.get(User, ada).roles] == [world["admin_role"].id]

    # Once Jordan has set a password, Ada may step down.
    token = password_links.issue(db.session, invited, world["admin"])
    db.session.commit()
    with browser(app) as jordan_browser:
        assert choose_password(jordan_browser, password_links.PATH + token).status_code == 303
    assert (
        post(client, f"/admin/people/{ada}/roles", {"roles": world["recruiter_role"].id}).status_code == 303
    )


# --- Staff and the command line ----------------------------------------------------------------------------


def test_staff_make_a_new_link_for_a_customers_user(app, client, world, sink) -> None:
    acme, riley = world["acme"].id, world["recruiter"].id
    Auth(client).login("casey@relay.test")
    staff_page = f"/staff/organizations/{acme}"
    assert "riley@acme.test" in text(client.get(staff_page))

    page = post(client, f"{staff_page}/people/{riley}/link", page=staff_page)
    assert page.status_code == 200 and "Emailed to riley@acme.test" in text(page)
    [received] = sink.messages
    email = received.message
    assert "Casey Staff of Relay's customer success team has made you a new link" in email.get_content()
    link = db.session.scalar(sa.select(SetPasswordLink).where(SetPasswordLink.user_id == riley))
    assert link.created_by_id == world["staff"].id
    with browser(app) as riley_browser:
        assert choose_password(riley_browser, link_in(email)).status_code == 303
        assert signed_in_as(riley_browser) == "Riley Chen"

    # Another organisation's user under Acme's address: not found. A deactivated one: refused.
    gloria = world["globex_admin"].id
    assert post(client, f"{staff_page}/people/{gloria}/link", page=staff_page).status_code == 404
    db.session.get(User, riley).active = False
    db.session.commit()
    refused = post(client, f"{staff_page}/people/{riley}/link", page=staff_page)
    assert refused.status_code == 422 and "is deactivated" in text(refused)
    assert len(sink.messages) == 1


def test_only_staff_make_links_on_the_staff_pages(client, world) -> None:
    Auth(client).login("ada@acme.test")
    path = f"/staff/organizations/{world['acme'].id}/people/{world['recruiter'].id}/link"
    assert post(client, path).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SetPasswordLink)) == 0


def test_the_command_line_prints_a_working_link(app, runner, world) -> None:
    result = runner.invoke(args=["users", "reset-link", " Riley@Acme.test "])
    assert result.exit_code == 0, result.output
    [url] = re.findall(r"https?://\S+", result.output)
    assert url.startswith(BASE + password_links.PATH) and "Riley Chen" in result.output
    with browser(app) as riley_browser:
        assert choose_password(riley_browser, url.removeprefix(BASE)).status_code == 303
        assert signed_in_as(riley_browser) == "Riley Chen"


@pytest.mark.parametrize(
    ("email", "error"),
    [("nobody@acme.test", "No Relay account has the address"), ("riley@acme.test", "is deactivated")],
)
def test_the_command_line_refuses_in_one_line(app, runner, world, email, error) -> None:
    world["recruiter"].active = False
    db.session.commit()
    result = runner.invoke(args=["users", "reset-link", email])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and error in result.output and "Traceback" not in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SetPasswordLink)) == 0


# --- Where each demo user starts, and what they are offered ---------------------------------------------

# user: (start page, the main navigation)
DEMO_START = {
    "recruiter@acme.example": ("/inbox", ["Jobs", "Inbox", "Communities"]),
    "manager@acme.example": ("/inbox", ["Jobs", "Inbox"]),  # on no sourcing team: no Communities
    "admin@acme.example": ("/inbox", ["Jobs", "Inbox", "Communities", "Admin"]),
    "sourcer@acme.example": ("/communities", ["Inbox", "Communities"]),  # no jobs: no Jobs
    "admin@globex.example": ("/jobs", ["Jobs", "Inbox", "Admin"]),  # no conversation yet
    "recruiter@globex.example": ("/jobs", ["Jobs", "Inbox"]),
    "csm@relay.example": ("/staff/", ["Staff"]),
}


@pytest.fixture
def demo_data(app) -> None:
    demo.seed(db.session)
    db.session.commit()


def nav_of(html: str) -> list[str]:
    nav = re.search(r'<nav class="mainnav"[^>]*>(.*?)</nav>', html, re.S)
    assert nav, "no main navigation"
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav.group(1))


def test_every_demo_user_starts_where_their_work_is_and_sees_no_empty_section(client, demo_data) -> None:
    auth = Auth(client)
    for email, (start, sections) in DEMO_START.items():
        signed_in = auth.login(email, demo.PASSWORD)
        assert signed_in.status_code == 302, email
        landed = client.get(signed_in.location)
        assert (landed.status_code, landed.location) == (302, start), email
        page = client.get(start)
        assert page.status_code == 200 and nav_of(text(page)) == sections, email
        assert client.get("/").location == start, email
        auth.logout()


def test_someone_on_no_team_yet_starts_on_jobs(client, world) -> None:
    f.user(world["acme"], "new@acme.test", name="New Person")
    db.session.commit()
    Auth(client).login("new@acme.test")
    assert client.get("/").location == "/jobs"
    assert nav_of(text(client.get("/jobs"))) == ["Jobs"]


# --- An email-only organisation ---------------------------------------------------------------------------


def organization_id_of(name: str) -> int:
    return db.session.scalar(sa.select(Organization.id).where(Organization.name == name))


TEXTING_TABS = ["Credits", "Sending numbers", "Compliance documents", "Unmatched messages"]


def test_an_email_only_organisation_is_not_shown_texting(client, demo_data) -> None:
    auth = Auth(client)
    auth.login("admin@acme.example", demo.PASSWORD)
    acme_admin = text(client.get("/admin/"))
    assert all(f">{tab}</a>" in acme_admin for tab in TEXTING_TABS)  # the same pages for a texting one
    assert client.get("/admin/templates/whatsapp/new").status_code == 200
    auth.logout()

    auth.login("admin@globex.example", demo.PASSWORD)
    overview = text(client.get("/admin/"))
    assert not any(f">{tab}</a>" in overview for tab in TEXTING_TABS)
    assert "<h2>Sending numbers</h2>" not in overview and "<h2>Credits</h2>" not in overview
    for path in ("/admin/numbers", "/admin/compliance", "/admin/compliance/DE", "/admin/compliance/FR"):
        assert client.get(path).status_code == 404, path

    templates = text(client.get("/admin/templates"))
    assert '<h3 class="channel-head">Email</h3>' in templates
    assert "SMS" not in templates and "WhatsApp" not in templates
    assert client.get("/admin/templates/whatsapp/new").status_code == 404
    editor = text(client.get("/admin/templates/new?channel=sms"))
    assert 'value="email"' in editor and 'value="sms"' not in editor and 'value="whatsapp"' not in editor
    sms = post(
        client, "/admin/templates/new", {"name": "T", "channel": "sms", "kind": "general", "body": "Hi"}
    )
    assert sms.status_code == 422 and "Choose one of your organisation" in text(sms)
    assert "T" not in [t.name for t in templates_of(db.session, organization_id_of("Globex"))]

    settings = text(client.get("/admin/settings"))
    assert "HELP" not in settings and 'name="low_credit_threshold"' not in settings
