"""The base of every form that posts: Flask-WTF's, with its CSRF token rendered without an id.

A page often holds two forms (a person's roles and teams, a document's approve and reject), and each
token rendered the id "csrf_token" (or "d3-csrf_token"): one id twice on a page. The token's input
needs a name, never an id. Import FlaskForm from here, not from flask_wtf.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm as _FlaskForm
from wtforms import Field


class FlaskForm(_FlaskForm):
    class Meta:
        def render_field(self, field: Field, render_kw: dict[str, Any]) -> Any:
            if field.type == "CSRFTokenField":
                render_kw = {**render_kw, "id": False}  # False: wtforms leaves the attribute out
            return super().render_field(field, render_kw)
