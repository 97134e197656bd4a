"""A refusal answered on its form (webapp.web.refusals.submit): beside its field or at the top, 422, what
the call wrote rolled back; a success committed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask, request
from werkzeug.exceptions import HTTPException
from wtforms import Form, StringField
from wtforms.validators import InputRequired

from webapp.extensions import db
from webapp.models import Organization
from webapp.refusals import Refused
from webapp.web import refusals


class NameForm(Form):
    name = StringField(validators=[InputRequired("Enter a name.")])


def page(form: NameForm) -> Callable[[], str]:
    return lambda: f"name: {' '.join(form.name.errors)} | top: {' '.join(form.form_errors)}"


@contextmanager
def posted(app: Flask, name: str = "Acme") -> Iterator[NameForm]:
    with app.test_request_context("/", method="POST", data={"name": name}):
        yield NameForm(request.form)


def add(name: str) -> Organization:
    org = Organization(name=name, sender_name=name)
    db.session.add(org)
    db.session.flush()
    return org


def names() -> list[str]:
    db.session.remove()  # what another request would read
    return list(db.session.scalars(sa.select(Organization.name).order_by(Organization.name)))


def refused_with(*args: object) -> Callable[[], Organization]:
    def call() -> Organization:
        add("Written before the refusal")
        raise Refused(*args)  # type: ignore[arg-type]

    return call


def answer(form: NameForm, call: Callable[[], object], **kw: object) -> tuple[int, str]:
    with pytest.raises(HTTPException) as raised:
        refusals.submit(form, call, page(form), **kw)  # type: ignore[arg-type]
    response = raised.value.get_response()
    return response.status_code, response.get_data(as_text=True)


def test_success_returns_the_result_and_commits(app: Flask) -> None:
    with posted(app) as form:
        org = refusals.submit(form, lambda: add(form.name.data), page(form))
        assert org.name == "Acme"
        assert names() == ["Acme"]


def test_a_refusal_with_a_field_is_said_beside_it_with_422_and_rolls_back(app: Flask) -> None:
    with posted(app) as form:
        status, body = answer(form, refused_with("That name is taken.", "name"))
        assert (status, body) == (422, "name: That name is taken. | top: ")
        assert names() == []


def test_a_refusal_without_a_field_is_said_at_the_top(app: Flask) -> None:
    with posted(app) as form:
        status, body = answer(form, refused_with("Not today."))
        assert (status, body) == (422, "name:  | top: Not today.")
        assert names() == []


def test_a_field_the_form_does_not_have_is_said_at_the_top(app: Flask) -> None:
    with posted(app) as form:
        status, body = answer(form, refused_with("About the teams.", "teams"))
        assert (status, body) == (422, "name:  | top: About the teams.")


def test_invalid_input_is_answered_without_calling(app: Flask) -> None:
    with posted(app, name="") as form:
        called = []
        status, body = answer(form, lambda: called.append(1))
        assert (status, body, called) == (422, "name: Enter a name. | top: ", [])


def test_the_route_may_answer_a_refusal_with_another_status(app: Flask) -> None:
    with posted(app) as form:
        assert answer(form, refused_with("Someone was first."), status=409)[0] == 409
    by_kind = {"Wait.": 429}
    with posted(app) as form:
        assert answer(form, refused_with("Wait."), status=lambda r: by_kind.get(r.message, 200))[0] == 429


def test_a_refusal_the_page_says_itself_is_left_off_the_form(app: Flask) -> None:
    with posted(app) as form:
        status, body = answer(form, refused_with("No free slots.", "slots"), said_by_page=("slots",))
        assert (status, body) == (422, "name:  | top: ")
        assert names() == []
    with posted(app) as form:
        status, body = answer(form, refused_with("That name is taken.", "name"), said_by_page=("slots",))
        assert (status, body) == (422, "name: That name is taken. | top: ")


def test_what_is_not_a_refusal_is_not_answered_here(app: Flask) -> None:
    def broken() -> None:
        raise RuntimeError("a bug")

    with posted(app) as form, pytest.raises(RuntimeError):
        refusals.submit(form, broken, page(form))


def test_every_domain_refusal_is_a_refused_with_its_message_and_field() -> None:
    from webapp.accounts import password_links, people, sign_in
    from webapp.billing import credits, refills
    from webapp.compliance import files, submissions
    from webapp.crm import prospects
    from webapp.interviews import booking, slots
    from webapp.messaging import checks, templates, unmatched
    from webapp.numbers import pool
    from webapp.organizations import settings

    kinds = [
        password_links.PasswordRefused,
        people.PeopleRefused,
        credits.RefillRefused,
        refills.RequestRefused,
        files.Refused,
        submissions.ComplianceRefused,
        prospects.ProspectRefused,
        booking.BookingRefused,
        slots.SlotRefused,
        checks.SendRefused,
        templates.TemplateRefused,
        pool.NumberRefused,
        settings.SettingsRefused,
        sign_in.SignInRefused,
        unmatched.CannotAssign,
    ]
    for kind in kinds:
        refusal = kind("Why not.", "name")
        assert isinstance(refusal, Refused) and (refusal.message, refusal.field) == ("Why not.", "name"), kind
    # The command line prints the top-up's reason as it is; a form says it as a sentence.
    top_up = credits.RefillRefused("a top-up adds a whole number of credits")
    assert str(top_up) == "a top-up adds a whole number of credits"
    assert top_up.message == "A top-up adds a whole number of credits."


WEB = Path(__file__).resolve().parent.parent / "webapp" / "web"
BY_HAND = re.compile(r"except [^:]*(Refused|CannotAssign)|\.errors = \[\*")
# Pages still answering refusals by hand, while their area is rebuilt: none.
NOT_YET: set[str] = set()


def test_no_route_answers_a_refusal_by_hand() -> None:
    found = []
    for path in sorted(WEB.rglob("*.py")):
        name = path.relative_to(WEB).as_posix()
        if name not in NOT_YET and name != "refusals.py":
            found += [
                f"{name}:{n}"
                for n, line in enumerate(path.read_text().splitlines(), 1)
                if BY_HAND.search(line)
            ]
    assert found == []
