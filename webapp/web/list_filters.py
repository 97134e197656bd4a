"""The filters of the lists people are chosen from: a job's applications and a community's members.

One source for the list pages (jobs, crm) and for a bulk message to "all matching" (bulk): the filter
carried into the composer is checked by the same form as on the list, and described in the same words.
Read from the query string (or carried in the composer's form), so no CSRF token of their own.
"""

from __future__ import annotations

from markupsafe import Markup
from wtforms import Form, SearchField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from webapp.models import STAGES


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _matching(q: str | None) -> Markup:
    return Markup(" matching “{}”").format(q) if q else Markup("")


class MemberFilterForm(Form):
    """The search of a community's members."""

    q = SearchField(
        "Search by name or number",
        validators=[Optional(), Length(max=100, message="Search for at most 100 characters.")],
        filters=[_strip],
    )

    def described(self) -> Markup:
        """The filter in words after a count: ' matching “ada”', or nothing without one."""
        return _matching(self.q.data)


class ApplicationFilterForm(Form):
    """The filters of a job's application list."""

    q = SearchField(
        "Search by name",
        validators=[Optional(), Length(max=100, message="Search for at most 100 characters.")],
        filters=[_strip],
    )
    stage = SelectField(
        "Stage",
        choices=[SelectChoice("", "All stages"), *(SelectChoice(k, v) for k, v in STAGES.items())],
        validate_choice=True,
        default="",
    )

    def described(self) -> Markup:
        """The filter in words after a count: ' matching “ada” in Interview', or nothing without one."""
        stage = self.stage.data
        return _matching(self.q.data) + (Markup(" in {}").format(STAGES[stage]) if stage in STAGES else "")
