from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional
from wtforms.widgets import DateInput, TimeInput

from webapp import ids
from webapp.interviews.slots import INTERVALS, LENGTHS, WEEKDAYS
from webapp.web.composer import Composition
from webapp.web.forms import FlaskForm


def _weekday(value: object) -> int | None:
    """0 (Monday) … 6, as the form's checkboxes send them; anything else is dropped."""
    text = str(value).strip()
    return int(text) if text in {"0", "1", "2", "3", "4", "5", "6"} else None


def _lengths() -> list[SelectChoice]:
    return [SelectChoice(str(n), f"{n} min") for n in LENGTHS]


class SlotForm(FlaskForm):
    """A new slot. Day and time come as the browser's date and time inputs send them; what they mean
    (the chosen zone, not in the past, the interviewer free then) is webapp.interviews.slots' to say."""

    # The browser's date and time inputs (their widgets), which take no maxlength: Length still bounds
    # what a request sends.
    day = StringField("Day", widget=DateInput(), validators=[Optional(), Length(max=20)])
    at = StringField("Starts at", widget=TimeInput(), validators=[Optional(), Length(max=20)])
    minutes = SelectField("Length", choices=_lengths(), coerce=ids.parse, validate_choice=False, default=30)
    time_zone = StringField("Time zone", validators=[Optional(), Length(max=64)])
    place = StringField("Place or video link", validators=[Optional(), Length(max=2000)])
    interviewer_id = SelectField(
        "Interviewer", coerce=ids.parse, validate_choice=False, validators=[Optional()]
    )


class SeriesForm(FlaskForm):
    """Several slots in one step: every N minutes between two times, on the ticked weekdays of a span
    of days. Used with prefix "series", so that its fields and the single slot's differ on the page."""

    first_day = StringField("First day", widget=DateInput(), validators=[Optional(), Length(max=20)])
    last_day = StringField("Last day", widget=DateInput(), validators=[Optional(), Length(max=20)])
    weekdays = SelectMultipleField(
        "On",
        choices=[SelectChoice(str(n), name) for n, name in enumerate(WEEKDAYS)],
        coerce=_weekday,
        validate_choice=False,
        validators=[Optional()],
        default=[0, 1, 2, 3, 4],
    )
    start = StringField("From", widget=TimeInput(), validators=[Optional(), Length(max=20)])
    end = StringField("Until", widget=TimeInput(), validators=[Optional(), Length(max=20)])
    every = SelectField(
        "A slot every",
        choices=[SelectChoice(str(n), f"{n} min") for n in INTERVALS],
        coerce=ids.parse,
        validate_choice=False,
        default=30,
    )
    minutes = SelectField(
        "Each lasting", choices=_lengths(), coerce=ids.parse, validate_choice=False, default=30
    )
    time_zone = StringField("Time zone", validators=[Optional(), Length(max=64)])
    place = StringField("Place or video link", validators=[Optional(), Length(max=2000)])
    interviewer_id = SelectField(
        "Interviewer", coerce=ids.parse, validate_choice=False, validators=[Optional()]
    )


class InviteForm(Composition):
    """The invitation's composer (webapp.web.composer), for one application or several at once."""

    # The applications invited at once (the job's list); ids the user may not see are dropped.
    application = SelectMultipleField(coerce=ids.parse, validate_choice=False, validators=[Optional()])
