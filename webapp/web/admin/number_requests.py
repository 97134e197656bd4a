"""Requesting a sending number, on the admin's Sending numbers page (its routes are in compliance.py,
beside the page): the form and the organisation's requests with their states
(webapp.numbers.number_requests)."""

from __future__ import annotations

from typing import Any

import phonenumbers
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from webapp import phones
from webapp.extensions import db
from webapp.numbers import number_requests
from webapp.web.admin.forms import NumberRequestForm


def request_form(posted: bool = False) -> NumberRequestForm:
    form = NumberRequestForm() if posted else NumberRequestForm(formdata=None)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS, key=phones.region_name)
    form.country.choices = [SelectChoice("", "— choose —")] + [
        SelectChoice(r, f"{phones.region_name(r)} ({r})") for r in regions
    ]
    return form


def context(form: NumberRequestForm | None = None) -> dict[str, Any]:
    """What the Sending numbers page shows of requests: the form and the organisation's requests."""
    return {
        "request_form": form or request_form(),
        "number_requests": number_requests.of_organization(db.session, current_user.organization_id),
    }


def create(form: NumberRequestForm) -> object:
    """The request the form asks for (webapp.numbers.number_requests says what is wrong with it)."""
    return number_requests.create(
        db.session,
        current_user,
        current_user.organization,
        country=form.country.data or "",
        sms=form.sms.data,
        whatsapp=form.whatsapp.data,
        reason=form.reason.data or "",
        area_code=form.area_code.data or "",
        locality=form.locality.data or "",
        prefix=form.prefix.data or "",
        note=form.note.data or "",
    )
