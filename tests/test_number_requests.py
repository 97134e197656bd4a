"""Issue 23 §1: administrators request a sending number; staff search the provider's offer, buy one, link
it to our application and put it in the customer's pool in one step — through the real SDK against the
fake Vonage (real HTTPS), on SQLite and PostgreSQL. Every error of the provider is said to staff, and
nothing half-done is left unsaid; rights; two staff buying at once over real HTTP on PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from tests import factories as f
from tests.browser_support import serve
from tests.conftest import CSRF_RE, Auth
from tests.test_html import repeated_ids
from webapp.accounts import permissions
from webapp.compliance import catalogue
from webapp.extensions import db
from webapp.models import ComplianceEvent, NumberRequest, SendingNumber
from webapp.numbers import matching, pool
from webapp.providers.base import AvailableNumber

BERLIN_1, BERLIN_2, HAMBURG = "+493012345601", "+493012345602", "+494012345603"
LONDON = "+447400123401"


@pytest.fixture
def app_config(request) -> dict[str, object]:
    fake = request.getfixturevalue("fake")
    return {
        "MESSAGING_PROVIDER": "vonage",
        "VONAGE_API_HOST": fake.api_host,
        "VONAGE_APPLICATION_ID": fake.application_id,
        "VONAGE_PRIVATE_KEY_PATH": str(fake.private_key_path),
        "VONAGE_REST_HOST": fake.api_host,
        "VONAGE_API_KEY": fake.api_key,
        "VONAGE_API_SECRET": fake.api_secret,
        "VONAGE_TIMEOUT": 3,
        # Two staff at once over real HTTP (the race below): a connection each, and the test's own.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 6, "max_overflow": 2, "pool_timeout": 30},
    }


@pytest.fixture
def world(app, fake) -> dict[str, object]:
    catalogue.sync(db.session)  # DE and FR ask for documents
    acme = f.messaging_org("Acme")
    globex = f.messaging_org("Globex")
    acme_admin = f.user(acme, "admin@acme.test", admin=True, name="Ada Admin")
    numbers_admin = f.user(acme, "numbers@acme.test", codes=[permissions.ADMIN_NUMBERS], name="Nora Numbers")
    recruiter = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS])
    globex_admin = f.user(globex, "admin@globex.test", admin=True, name="Gus Globex")
    staff = f.user(None, "csm@relay.test", is_staff=True, name="Cass Success")
    other_staff = f.user(None, "csm2@relay.test", is_staff=True, name="Sam Support")
    db.session.commit()
    fake.offer(BERLIN_1, BERLIN_2, HAMBURG, cost="1.25")
    fake.offer(LONDON, cost="0.90")
    return {
        "acme": acme,
        "globex": globex,
        "acme_admin": acme_admin,
        "numbers_admin": numbers_admin,
        "recruiter": recruiter,
        "globex_admin": globex_admin,
        "staff": staff,
        "other_staff": other_staff,
    }


class Person:
    """A signed-in browser of the test client. Each request runs in an app context of its own, as in a
    real server: the test's context (and its `g`, where Flask-Login keeps the user) is not shared."""

    def __init__(self, app: Flask, email: str) -> None:
        self.app, self.client = app, app.test_client()
        with app.app_context():
            assert Auth(self.client).login(email).status_code == 302

    def get(self, path: str, **kw: object) -> TestResponse:
        with self.app.app_context():
            return self.client.get(path, **kw)

    def post(self, path: str, **kw: object) -> TestResponse:
        with self.app.app_context():
            return self.client.post(path, **kw)

    def token(self, path: str) -> str:
        found = CSRF_RE.search(self.get(path).get_data(as_text=True))
        assert found, f"no CSRF token on {path}"
        return found.group(1)


def signed_in(app: Flask, email: str) -> Person:
    return Person(app, email)


def ask(person: Person, **fields: str) -> TestResponse:
    token = person.token("/admin/numbers")
    data = {"csrf_token": token, "country": "DE", "sms": "y", "reason": "new_country", **fields}
    return person.post("/admin/numbers/requests", data=data)


def the_request(org) -> NumberRequest:
    db.session.expire_all()
    return db.session.scalars(
        sa.select(NumberRequest)
        .where(NumberRequest.organization_id == org.id)
        .order_by(NumberRequest.id.desc())
    ).first()


def steps(request: NumberRequest) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(ComplianceEvent.action)
            .where(ComplianceEvent.number_request_id == request.id)
            .order_by(ComplianceEvent.id)
        )
    )


def staff_post(person: Person, request: NumberRequest, action: str, **fields: str) -> TestResponse:
    token = person.token(f"/staff/number-requests/{request.id}")
    return person.post(
        f"/staff/number-requests/{request.id}/{action}",
        data={"csrf_token": token, **fields},
        follow_redirects=True,
    )


def text(response) -> str:
    return response.get_data(as_text=True)


def flashed_error(response) -> str:
    found = re.search(r'<p class="flash flash-error">(.*?)</p>', text(response), re.S)
    assert found, text(response)[:3000]
    return found.group(1)


# --- The whole way --------------------------------------------------------------------------------------


def test_request_search_buy_link_and_pool_a_german_number_that_waits_for_its_documents(
    app, fake, world
) -> None:
    admin = signed_in(app, "admin@acme.test")
    answer = ask(admin, area_code="030", locality="Berlin", note="")
    assert answer.status_code == 303
    request = the_request(world["acme"])
    assert (request.state, request.area_code, request.locality, request.requested_by_id) == (
        "open",
        "030",
        "Berlin",
        world["acme_admin"].id,
    )
    page = text(admin.get("/admin/numbers"))
    assert re.search(rf'id="number-request-{request.id}">.*?Germany.*?number-request-open">Open<', page, re.S)

    staff = signed_in(app, "csm@relay.test")
    index = text(staff.get("/staff/"))
    assert f'href="/staff/number-requests/{request.id}">Acme · Germany · SMS</a>' in index
    # The page suggests the preference as the provider's pattern: calling code and area code, no 0.
    assert 'value="4930"' in text(staff.get(f"/staff/number-requests/{request.id}"))

    found = staff_post(staff, request, "search", pattern="4930")
    assert found.status_code == 200
    search = next(r for r in fake.requests if r.path.startswith("/number/search"))
    assert "pattern=4930" in search.path and "search_pattern=0" in search.path and "country=DE" in search.path
    offers = text(found)
    assert repeated_ids(offers) == [] and repeated_ids(page) == []
    assert offers.count('<tr id="offer-') == 2 and "49401234" not in offers  # Hamburg is not asked for
    assert re.search(r'<td class="fit-yes">starts with 030 — Berlin</td>', offers)
    assert the_request(world["acme"]).state == "offered"

    done = staff_post(staff, request, "buy", e164=BERLIN_1, monthly_cost="1.25")
    assert "+49 30 12345601 bought, linked and added to Acme&#39;s pool (pending documents)." in text(done)
    request = the_request(world["acme"])
    number = db.session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == BERLIN_1))
    assert (request.state, request.number_id, request.decided_by_id) == ("done", number.id, world["staff"].id)
    assert (number.organization_id, number.status, number.provider, number.sms) == (
        world["acme"].id,
        "pending_documents",
        "vonage",
        True,
    )
    assert fake.linked == {BERLIN_1[1:]: fake.application_id}
    update = next(r for r in fake.requests if r.path == "/number/update")
    assert update.body == {"country": ["DE"], "msisdn": [BERLIN_1[1:]], "app_id": [fake.application_id]}
    assert steps(request) == [
        "number_requested",
        "numbers_searched",
        "number_bought",
        "number_linked",
        "request_done",
    ]
    # The pool's own rows, as for any number added: added, then waiting for the DE documents.
    actions = db.session.scalars(
        sa.select(ComplianceEvent.action).where(ComplianceEvent.number_id == number.id)
    )
    assert set(actions) == {"number_added", "number_pending"}

    # The documents approved (what a review's last approval does), the number sends.
    pool.activate_country(db.session, world["staff"], world["acme"].id, "DE", "Documents approved")
    db.session.commit()
    assert db.session.get(SendingNumber, number.id).status == "active"
    page = text(admin.get("/admin/numbers"))
    assert 'number-request-done">Done<' in page and "+49 30 12345601 is in your pool (active)." in page
    assert f'href="/staff/number-requests/{request.id}"' not in text(staff.get("/staff/"))


def test_a_country_without_documents_is_active_at_once_and_whatsapp_only_still_searches_sms(
    app, fake, world
) -> None:
    admin = signed_in(app, "numbers@acme.test")  # the numbers right alone is enough
    assert ask(admin, country="GB", sms="", whatsapp="y", reason="volume").status_code == 303
    request = the_request(world["acme"])
    staff = signed_in(app, "csm@relay.test")
    offers = text(staff_post(staff, request, "search", pattern=""))
    assert "features=SMS" in next(r for r in fake.requests if r.path.startswith("/number/search")).path
    assert '<td class="fit-yes">no preference</td>' in offers
    staff_post(staff, request, "buy", e164=LONDON, monthly_cost="0.90")
    number = db.session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == LONDON))
    assert (number.status, number.sms, number.whatsapp) == ("active", False, True)


def test_a_pattern_that_finds_nothing_shows_the_countrys_other_numbers(app, fake, world) -> None:
    ask(signed_in(app, "admin@acme.test"), area_code="089", locality="München")
    request = the_request(world["acme"])
    page = text(staff_post(signed_in(app, "csm@relay.test"), request, "search", pattern="4989"))
    assert "Nothing on offer starting with 4989; the other numbers of Germany:" in page
    assert page.count('<td class="fit-no">does not start with 089</td>') == 3


# --- The provider's errors, said to staff ---------------------------------------------------------------


@pytest.fixture
def offered(app, fake, world) -> tuple[Person, NumberRequest]:
    ask(signed_in(app, "admin@acme.test"), area_code="030")
    request = the_request(world["acme"])
    staff = signed_in(app, "csm@relay.test")
    staff_post(staff, request, "search", pattern="4930")
    return staff, request


def nothing_pooled() -> bool:
    return db.session.scalar(sa.select(sa.func.count()).select_from(SendingNumber)) == 0


def test_a_number_taken_meanwhile_is_refused_clearly_and_the_request_stays_open_for_another(
    app, fake, world, offered
) -> None:
    staff, request = offered
    taken = "+493012345699"  # never on offer: as if bought by someone else since the search
    answer = staff_post(staff, request, "buy", e164=taken, monthly_cost="1.25")
    assert flashed_error(answer) == (
        "Vonage would not sell +49 30 12345699 (method failed): it was taken meanwhile, or is not for sale "
        "to this account. Search again."
    )
    request = the_request(world["acme"])
    assert (request.state, request.claimed_at, request.bought_e164) == ("offered", None, None)
    assert steps(request)[-1] == "number_not_bought" and nothing_pooled()
    # Another number of the same search still goes through.
    assert "bought, linked and added" in text(
        staff_post(staff, request, "buy", e164=BERLIN_2, monthly_cost="1.25")
    )


def test_a_balance_that_cannot_pay_is_said_with_the_amounts(app, fake, world, offered) -> None:
    staff, request = offered
    fake.balance = 0.5
    answer = staff_post(staff, request, "buy", e164=BERLIN_1, monthly_cost="1.25")
    assert flashed_error(answer) == (
        "Vonage would not sell +49 30 12345601 (method failed): the account&#39;s balance, €0.50, does not "
        "pay for it (€1.25 a month). Top up the Vonage account, then buy it again."
    )
    assert any(r.path == "/account/get-balance" for r in fake.requests)
    request = the_request(world["acme"])
    assert request.state == "offered" and request.bought_e164 is None and nothing_pooled()
    assert steps(request)[-1] == "number_not_bought"
    fake.balance = 10.0
    assert "bought, linked and added" in text(
        staff_post(staff, request, "buy", e164=BERLIN_1, monthly_cost="1.25")
    )


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (420, "Vonage would not link +49 30 12345601 to the application (method failed)."),
        (500, "Vonage answered 500 to the numbers update."),
    ],
)
def test_a_failed_link_keeps_the_bought_number_on_the_request_and_the_retry_finishes(
    app, fake, world, offered, status, why
) -> None:
    staff, request = offered
    fake.fail_updates(1, status)
    answer = staff_post(staff, request, "buy", e164=BERLIN_1, monthly_cost="1.25")
    assert flashed_error(answer) == (
        f"+49 30 12345601 is bought and kept on this request, but not linked to our application: {why} "
        "Retry the link."
    )
    page = text(answer)
    assert "+49 30 12345601 was bought for this request" in page and ">Retry the link</button>" in page
    assert 'id="offers"' not in page and 'id="decline"' not in page  # no second purchase from here
    request = the_request(world["acme"])
    assert (request.state, request.bought_e164, request.linked_at, request.claimed_at) == (
        "offered",
        BERLIN_1,
        None,
        None,
    )
    assert nothing_pooled() and fake.linked == {}
    assert steps(request)[-2:] == ["number_bought", "number_link_failed"]
    # Buying again is refused (the request has its number); the link is retried instead.
    again = staff_post(staff, request, "buy", e164=BERLIN_2, monthly_cost="1.25")
    assert flashed_error(again) == "+49 30 12345601 was bought for this request already: retry its link."
    assert [r.path for r in fake.requests].count("/number/buy") == 1

    done = staff_post(staff, request, "finish")
    assert "+49 30 12345601 bought, linked and added to Acme&#39;s pool (pending documents)." in text(done)
    assert the_request(world["acme"]).state == "done" and fake.linked == {BERLIN_1[1:]: fake.application_id}
    assert steps(request)[-3:] == ["number_link_failed", "number_linked", "request_done"]


def test_staff_decline_with_a_reason_the_admin_reads(app, fake, world, offered) -> None:
    staff, request = offered
    refused = staff_post(staff, request, "decline", reason="")
    assert refused.status_code == 422 and 'id="reason-error">Say why, for the customer.</p>' in text(refused)
    staff_post(staff, request, "decline", reason="No Berlin numbers until March; ask again then.")
    request = the_request(world["acme"])
    assert (request.state, request.decided_by_id) == ("declined", world["staff"].id)
    assert steps(request)[-1] == "request_declined"
    page = text(signed_in(app, "admin@acme.test").get("/admin/numbers"))
    assert "Declined: No Berlin numbers until March; ask again then." in page
    assert "This request was declined by Cass Success" in flashed_error(
        staff_post(staff, request, "buy", e164=BERLIN_1)
    )
    # The customer's page in the staff area lists its requests, declined ones too.
    customer = text(signed_in(app, "csm@relay.test").get(f"/staff/organizations/{world['acme'].id}"))
    listed = customer.split('id="customer-number-requests"')[1].split("</section>")[0]
    assert f'href="/staff/number-requests/{request.id}"' in listed and "Declined" in listed


# --- The form and the rights ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"country": ""}, "country", "Choose the country the number is for."),
        ({"sms": ""}, "sms", None),
        (
            {"area_code": "+49 30"},
            "area_code",
            "An area code is a few digits as dialled in the country, e.g. 030.",
        ),
        ({"prefix": "+33 1 23"}, "prefix", "+33 1 23 is not a number of DE (+49)."),
        ({"prefix": "030-abc"}, "prefix", "030-abc is not digits."),
        ({"reason": ""}, "reason", "Say why you need the number."),
        ({"reason": "other", "note": ""}, "note", "Say in a few words why you need the number."),
    ],
)
def test_a_bad_request_is_told_beside_its_field_and_keeps_what_was_typed(
    app, world, fields, field, message
) -> None:
    admin = signed_in(app, "admin@acme.test")
    answer = ask(admin, locality="Berlin-Mitte", **fields)
    assert answer.status_code == 422
    page = text(answer)
    if field == "sms":
        assert 'id="request-sms-error">Choose what the number sends: SMS, WhatsApp or both.</p>' in page
    else:
        assert f'id="{field}-error">{message}</p>' in page
    assert 'value="Berlin-Mitte"' in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NumberRequest)) == 0


def test_admins_see_only_their_organisations_requests(app, world) -> None:
    ask(signed_in(app, "admin@acme.test"), area_code="030", locality="Berlin")
    ask(signed_in(app, "admin@globex.test"), country="FR", area_code="01", locality="Paris")
    acme_page = text(signed_in(app, "numbers@acme.test").get("/admin/numbers"))
    globex_page = text(signed_in(app, "admin@globex.test").get("/admin/numbers"))
    assert "Berlin" in acme_page and "Paris" not in acme_page
    assert "Paris" in globex_page and "Berlin" not in globex_page
    # Someone without the numbers right cannot ask.
    recruiter = signed_in(app, "recruiter@acme.test")
    token = recruiter.token("/jobs")
    answer = recruiter.post(
        "/admin/numbers/requests", data={"csrf_token": token, "country": "DE", "sms": "y"}
    )
    assert answer.status_code == 403


def test_only_staff_act_on_a_request(app, fake, world) -> None:
    ask(signed_in(app, "admin@acme.test"), area_code="030")
    request = the_request(world["acme"])
    admin = signed_in(app, "admin@acme.test")
    token = admin.token("/admin/numbers")
    base = f"/staff/number-requests/{request.id}"
    assert admin.get(base).status_code == 403
    for action, data in (
        ("search", {"pattern": "4930"}),
        ("buy", {"e164": BERLIN_1}),
        ("finish", {}),
        ("decline", {"reason": "no"}),
    ):
        assert admin.post(f"{base}/{action}", data={"csrf_token": token, **data}).status_code == 403, action
    assert [r.path for r in fake.requests] == []
    assert the_request(world["acme"]).state == "open" and steps(request) == ["number_requested"]
    assert signed_in(app, "csm@relay.test").get("/staff/number-requests/999").status_code == 404


# --- Two staff buying at once ------------------------------------------------------------------------


class Browser:
    """A staff member's own browser, signed in, over real HTTP."""

    def __init__(self, base: str, email: str) -> None:
        self.base = base
        self.http = requests.Session()
        token = CSRF_RE.search(self.http.get(f"{base}/login", timeout=30).text)
        assert token
        data = {"email": email, "password": f.PASSWORD, "csrf_token": token.group(1)}
        assert self.http.post(f"{base}/login", data=data, allow_redirects=False, timeout=30).status_code in (
            302,
            303,
        )

    def token(self, path: str) -> str:
        found = CSRF_RE.search(self.http.get(self.base + path, timeout=30).text)
        assert found
        return found.group(1)


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    with serve(app) as url:
        yield url


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_staff_buying_for_one_request_at_once_buy_one_number(app, fake, world, served, backend) -> None:
    ask(signed_in(app, "admin@acme.test"), area_code="030")
    request = the_request(world["acme"])
    path = f"/staff/number-requests/{request.id}"
    browsers = [Browser(served, "csm@relay.test"), Browser(served, "csm2@relay.test")]
    tokens = [b.token(path) for b in browsers]
    fake.buy_delay = 0.5  # the first purchase is still with the provider when the second arrives
    start = threading.Barrier(2)
    pages: dict[int, str] = {}

    def buy(n: int, e164: str) -> None:
        start.wait()
        answer = browsers[n].http.post(
            f"{served}{path}/buy",
            data={"csrf_token": tokens[n], "e164": e164, "monthly_cost": "1.25"},
            timeout=60,
        )
        pages[n] = answer.text

    threads = [threading.Thread(target=buy, args=(n, e)) for n, e in enumerate((BERLIN_1, BERLIN_2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    said = sorted(
        re.search(r'<p class="flash flash-(\w+)">(.*?)</p>', page, re.S).groups() for page in pages.values()
    )
    (error, refusal), (success, bought) = said
    assert (error, success) == ("error", "success"), said
    assert re.fullmatch(
        r"\+49 30 1234560[12] bought, linked and added to Acme&#39;s pool \(pending documents\)\.", bought
    )
    winner = bought.split(" bought")[0]
    assert refusal in (
        "Cass Success is buying a number for this request right now. Reload the page in a moment.",
        "Sam Support is buying a number for this request right now. Reload the page in a moment.",
    ) or refusal.startswith(f"This request is done already: {winner} was added by")
    assert [r.path for r in fake.requests].count("/number/buy") == 1
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SendingNumber)) == 1
    assert the_request(world["acme"]).state == "done"


# --- Matching, on its own ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "typed", "digits"),
    [
        ("DE", "030", "4930"),
        ("DE", "+49 30 12", "493012"),
        ("DE", "0049 30", "4930"),
        ("US", "212", "1212"),
        ("US", "1 212", "1212"),
        ("GB", "020 7", "44207"),
        ("IT", "06", "3906"),  # Italy keeps its 0
        ("FR", "", ""),
    ],
)
def test_a_preference_becomes_the_digits_numbers_start_with(country, typed, digits) -> None:
    assert matching.international(country, typed) == digits


def test_how_a_number_fits_is_said_in_words() -> None:
    berlin = AvailableNumber(BERLIN_1, "DE", ("SMS",), "landline")
    hamburg = AvailableNumber(HAMBURG, "DE", ("SMS",), "landline")
    assert matching.fit(berlin, "DE", "030", "Berlin", None).how == "starts with 030 — Berlin"
    assert matching.fit(berlin, "DE", "030", None, "+49 30 123").how == "starts with +49 30 123"
    missed = matching.fit(hamburg, "DE", "030", "Berlin", None)
    assert (missed.matches, missed.how) == (False, "does not start with 030")
    assert [f.number for f in matching.ranked([hamburg, berlin], "DE", "030", None, None)] == [
        berlin,
        hamburg,
    ]
    assert matching.search_pattern("DE", "030", "+49 30 12") == "493012"


def test_the_port_searches_by_pattern_on_vonage_the_simulator_and_the_fake_carrier(app, fake, world) -> None:
    from webapp.providers import registry
    from webapp.providers.base import CONTAINS, ENDS_WITH, STARTS_WITH

    vonage = registry.texting(app, "vonage").numbers
    assert [n.e164 for n in vonage.search("DE", ("SMS",), "4930", STARTS_WITH)] == [BERLIN_1, BERLIN_2]
    assert [n.e164 for n in vonage.search("DE", ("SMS",), "603", ENDS_WITH)] == [HAMBURG]
    assert [n.e164 for n in vonage.search("DE", ("SMS",), "4012", CONTAINS)] == [HAMBURG]
    asked = [r.path for r in fake.requests if r.path.startswith("/number/search")]
    assert "pattern=603" in asked[1] and "search_pattern=2" in asked[1]
    with pytest.raises(ValueError, match="digits only"):
        vonage.search("DE", ("SMS",), "+4930")
    simulated = registry.texting(app, "simulator").numbers
    offers = simulated.search("DE", ("SMS",), "49151")
    assert offers and all(n.e164.startswith("+49151") for n in offers)
    assert simulated.search("DE", ("SMS",), "4930") == []
