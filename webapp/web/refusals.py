"""A form's answer to a refusal, in one place: every form route hands `submit` its form, the domain call
and the page that shows the form, and goes on with the success only.

    user = refusals.submit(form, lambda: people.invite(db.session, ...), lambda: _people_page(form))

Input the form's own validators refuse, or a refusal of the domain (webapp.refusals.Refused), comes back
as the page with the form and its reasons (422); a refusal's reason goes beside its field when the form
has that field, else at the top of the form. What the call wrote is rolled back on a refusal and
committed on success.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from itertools import chain
from typing import NoReturn, TypeVar

from flask import abort, make_response
from flask.typing import ResponseReturnValue
from wtforms import Form

from webapp.extensions import db
from webapp.refusals import Refused

T = TypeVar("T")


def put(form: Form, message: str, field: str | None) -> None:
    """The reason beside its field when the form has that field, else at the top of the form. A form
    whose fields are not named as the domain names them says where each refusal goes (refusal_field)."""
    if hasattr(form, "refusal_field"):
        target = form.refusal_field(field)
    else:
        target = getattr(form, field, None) if field else None
    if target is not None and hasattr(target, "errors"):
        target.errors = [*target.errors, message]
    else:
        form.form_errors.append(message)


def submit(
    form: Form,
    call: Callable[[], T],
    page: Callable[[], ResponseReturnValue],
    status: int | Callable[[Refused], int] = 422,
    said_by_page: Collection[str] = (),
) -> T:
    """Validate the form, make the call and commit what it wrote: the call's result.

    Invalid input is answered with `page()` and 422. A refusal rolls back what the call wrote, is put
    on the form and answered with `page()` and `status` (422 unless the route says otherwise, or says
    it for each refusal). A refusal about a field in `said_by_page` is not put on the form: the page
    says it in a notice of its own (an invitation's "no free slots"), so it is said once. The answer is
    raised (flask.abort with the response), so the route's next line is about the success.
    """
    if not form.validate():
        _answer(page, 422)
    try:
        result = call()
        db.session.commit()
    except Refused as refusal:
        db.session.rollback()
        for one in refusal.each():
            if one.field is None or one.field not in said_by_page:
                put(form, one.message, one.field)
        _answer(page, status(refusal) if callable(status) else status)
    return result


def first_error(form: Form) -> str | None:
    """The form's first reason, for a page that says one reason above a form of buttons."""
    return next(chain(form.form_errors, *(field.errors for field in form)), None)


def _answer(page: Callable[[], ResponseReturnValue], status: int) -> NoReturn:
    response = make_response(page())
    response.status_code = status
    abort(response)
