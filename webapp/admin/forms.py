from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional

from webapp import ids


class DocumentForm(FlaskForm):
    """One requirement's document: which accepted kind it is, the value it proves, the file. The checks
    (kind belongs to the requirement, value present, file by content and size) are
    webapp.compliance's, so their messages are the same wherever a document comes from."""

    kind = SelectField("Document", coerce=ids.parse, validate_choice=False, validators=[Optional()])
    value = StringField("Value", validators=[Optional(), Length(max=500)])
    file = FileField("File (PDF, PNG or JPEG, at most 10 MB)")


class SubmitForm(FlaskForm):
    pass
