"""Where a refusal's reason goes on a form: beside its field when the form has that field, else at the
top of the form. One rule for every form that calls a domain function which can refuse."""

from __future__ import annotations

from wtforms import Form


def put(form: Form, message: str, field: str | None) -> None:
    target = getattr(form, field, None) if field else None
    if target is not None and hasattr(target, "errors"):
        target.errors = [*target.errors, message]
    else:
        form.form_errors.append(message)
