"""Route decorators: the thin Flask layer over the access rules (webapp.accounts.access). Each answers a
request that may not see the page with 403 (naming the missing right) or, for a product the organisation
does not have, 404."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required

from webapp.accounts import permissions
from webapp.accounts.access import entitled, has_permission, manages_numbers, sees_admin, texts

F = TypeVar("F", bound=Callable[..., Any])


def permission_required(code: str) -> Callable[[F], F]:
    """Signed in and holding the permission, else 403 (the 403 page names the missing right)."""
    spec = next((p for p in permissions.CATALOGUE if p.code == code), None)
    if spec is None:
        raise ValueError(f"unknown permission {code!r}")

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not has_permission(current_user, code):
                abort(403, description=f"This needs the permission “{spec.name}” ({spec.category}).")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def admin_required(view: F) -> F:
    """Any administration right opens the admin area; each page checks its own right on top."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not sees_admin(current_user):
            abort(403, description="The admin area is for organisation administrators.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def staff_required(view: F) -> F:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_staff:
            abort(403, description="This page is for Relay customer-success staff.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def numbers_admin_required(view: F) -> F:
    """The admin pages of sending numbers and compliance documents (see manages_numbers); they do not
    exist (404) for an organisation that cannot text, like the CRM's pages without the CRM."""
    spec = next(p for p in permissions.CATALOGUE if p.code == permissions.ADMIN_NUMBERS)

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not manages_numbers(current_user):
            abort(403, description=f"This needs the permission “{spec.name}” ({spec.category}).")
        if not texts(current_user):
            abort(404)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def product_required(product: str) -> Callable[[F], F]:
    """Signed in and the organisation has the product, else 404: without the CRM, its pages do not
    exist for the customer (the navigation does not show them either)."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not entitled(current_user, product):
                abort(404)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
