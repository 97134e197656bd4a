from wtforms import HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from webapp import ids
from webapp.models import CHANNEL_LABELS
from webapp.web.forms import FlaskForm


class ComposeForm(FlaskForm):
    # The choices are the user's channels, set per request; which channel may be used is decided by
    # webapp.messaging.checks (so the refusal names the missing right), not by WTForms.
    channel = RadioField(
        "Send as", choices=[SelectChoice(k, v) for k, v in CHANNEL_LABELS.items()], validate_choice=False
    )
    # Only shown again (the page compares it with str(id)); anything but an id is as if none was chosen.
    template_id = SelectField(
        "Template",
        coerce=str,
        validate_choice=False,
        validators=[Optional()],
        filters=[lambda v: v if ids.parse(v) is not None else None],
    )
    # The id, or None when none (or something that is not an id) was chosen.
    whatsapp_template_id = SelectField(
        "Approved WhatsApp template", coerce=ids.parse, validate_choice=False, validators=[Optional()]
    )
    subject = StringField("Subject", validators=[Optional(), Length(max=300)])
    body = TextAreaField("Message", validators=[Length(max=60_000)])
    # "all" when the composer sits under every channel's messages interleaved (the Inbox): a send then
    # keeps that view instead of opening the channel's tab.
    view = HiddenField(filters=[lambda v: v if v == "all" else None])
