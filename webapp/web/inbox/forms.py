from wtforms import BooleanField, Form, SearchField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from webapp.models import CHANNEL_LABELS


class InboxFilterForm(Form):
    """The inbox's filters; read from the query string (so no CSRF token), kept in the address."""

    q = SearchField(
        "Search",
        validators=[Optional(), Length(max=100, message="Search for at most 100 characters.")],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )
    channel = SelectField("Channel", validate_choice=True, default="")
    job = SelectField("Job", validate_choice=True, default="")
    # Candidates (applications) or prospects (community memberships): with the CRM product only.
    who = SelectField(
        "People",
        choices=[
            SelectChoice("", "Everyone"),  # short: the select shares a row with two others
            SelectChoice("candidates", "Candidates"),
            SelectChoice("prospects", "Prospects"),
        ],
        validate_choice=True,
        default="",
    )
    unread = BooleanField("Unread")
    reply = BooleanField("Needs a reply")
    mine = BooleanField("Mine")  # assigned to me
    unassigned = BooleanField("Unassigned")

    def set_choices(self, channels: list[str], jobs: list[tuple[int, str]]) -> None:
        self.channel.choices = [SelectChoice("", "All channels")] + [
            SelectChoice(c, CHANNEL_LABELS[c]) for c in channels
        ]
        self.job.choices = [SelectChoice("", "All jobs")] + [SelectChoice(str(i), t) for i, t in jobs]
