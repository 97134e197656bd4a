from wtforms import Form, SearchField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from webapp.models import STAGES


class ApplicationFilterForm(Form):
    """The filters of a job's application list; read from the query string, so no CSRF token."""

    q = SearchField(
        "Search by name",
        validators=[Optional(), Length(max=100, message="Search for at most 100 characters.")],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )
    stage = SelectField(
        "Stage",
        choices=[SelectChoice("", "All stages"), *(SelectChoice(k, v) for k, v in STAGES.items())],
        validate_choice=True,
        default="",
    )
