from wtforms import EmailField, StringField
from wtforms.validators import Email, Length, Optional

from webapp.web.forms import FlaskForm


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class AddMemberForm(FlaskForm):
    """A prospect to add: the rules (number format, duplicates) are webapp.crm.prospects', not the form's."""

    first_name = StringField("First name", validators=[Length(max=100)], filters=[_strip])
    last_name = StringField("Last name", validators=[Length(max=100)], filters=[_strip])
    mobile = StringField("Mobile", validators=[Length(max=40)], filters=[_strip])
    email = EmailField(
        "Email",
        validators=[
            Optional(),
            Length(max=254),
            Email(message="Enter an email address like name@example.com."),
        ],
        filters=[_strip],
    )
