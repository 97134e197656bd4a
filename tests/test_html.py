"""What the pages' HTML must not hold, and the html-validate check that the browser tests run on every
page they are served (tests/browser_support.py): it names the page and the error."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests import factories as f
from tests.browser_support import ServedPage, html_problems, html_validate_available
from tests.conftest import Auth, csrf_from, need
from webapp.accounts import permissions


@pytest.fixture
def world(app):
    acme = f.messaging_org("Acme")
    admin = f.user(acme, "admin@acme.test", name="Ada Admin")
    admin.roles = [f.role(acme, sorted(permissions.CODES), "Administrator")]
    colleague = f.user(acme, "riley@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.user(None, "csm@relay.test", is_staff=True, name="Casey Staff")
    job = f.job(acme, team=[admin, colleague], title="Backend Engineer")
    from webapp.extensions import db

    db.session.commit()
    return {"acme": acme, "admin": admin, "colleague": colleague, "job": job}


def repeated_ids(html: str) -> list[str]:
    return [i for i, n in Counter(re.findall(r'\sid="([^"]+)"', html)).items() if n > 1]


def tag(html: str, id_: str) -> str:
    found = re.search(rf'<input [^>]*\bid="{id_}"[^>]*>', html)
    assert found, id_
    return found.group(0)


def autofocus(tag: str) -> bool:
    return re.search(r"\sautofocus[\s>]", tag) is not None


def test_boolean_autofocus_and_password_autocomplete(client, world) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert 'autofocus="' not in page  # a boolean attribute: present or absent, never "None"
    assert autofocus(tag(page, "email")) and not autofocus(tag(page, "password"))
    assert 'autocomplete="username"' in tag(page, "email")
    assert 'autocomplete="current-password"' in tag(page, "password")
    # A wrong password: the email is kept and the password field has the focus, still without a value.
    refused = client.post(
        "/login",
        data={"email": "admin@acme.test", "password": "wrong", "csrf_token": csrf_from(client)},
    ).get_data(as_text=True)
    assert 'autofocus="' not in refused
    assert autofocus(tag(refused, "password")) and not autofocus(tag(refused, "email"))


def test_a_page_with_two_forms_holds_each_id_once(client, world) -> None:
    auth = Auth(client)
    auth.login("admin@acme.test")
    pages = ["/admin/roles", f"/admin/people/{world['colleague'].id}"]
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        assert html.count('name="csrf_token"') >= 2, path  # two forms, each with its token
        assert 'id="csrf_token"' not in html and repeated_ids(html) == [], path
    auth.logout()
    auth.login("csm@relay.test")
    html = client.get(f"/staff/organizations/{world['acme'].id}").get_data(as_text=True)
    assert 'id="csrf_token"' not in html and repeated_ids(html) == []


def test_date_and_time_inputs_have_no_maxlength(client, world) -> None:
    Auth(client).login("admin@acme.test")
    html = client.get(f"/jobs/{world['job'].id}/slots").get_data(as_text=True)
    for kind in ("date", "time"):
        found = re.findall(rf'<input [^>]*type="{kind}"[^>]*>', html)
        assert found and not any("maxlength" in tag for tag in found), found


# A valid page (trailing whitespace and a lower-case doctype are no errors: .htmlvalidate.json), BODY
# to be replaced.
PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Probe</title></head>
<body>
  <main>
    <h1>Probe</h1>\x20\x20
    <form method="post" action="/x">
      <input type="hidden" name="csrf_token" value="t"><button type="submit">Go</button>
    </form>
    BODY
  </main>
</body>
</html>
"""


def test_html_validate_names_the_page_the_rule_and_the_markup() -> None:
    if not html_validate_available():
        need("html-validate and node (npm ci)")
    good = ServedPage("/good", 200, "tests/test_html.py::probe", PAGE.replace("BODY", ""))
    bad = ServedPage(
        "/admin/bad?x=1",
        422,
        "tests/test_html.py::probe",
        PAGE.replace("BODY", '<p id="twice">One</p><p id="twice">Two</p><input type="date" maxlength="20">'),
    )
    assert html_problems([good]) == []
    found = html_problems([good, bad])
    assert len(found) == 1, found
    told = found[0]
    assert told.startswith("/admin/bad?x=1 (422, served in tests/test_html.py::probe):")
    assert '[no-dup-id] Duplicate ID "twice"' in told and '<p id="twice">Two</p>' in told
    assert "[input-attributes]" in told and "maxlength" in told
