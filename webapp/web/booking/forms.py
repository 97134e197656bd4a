"""The booking page's form: the time picked (the time zone travels beside it, read by the page)."""

from __future__ import annotations

from wtforms import Field, StringField, ValidationError

from webapp import ids
from webapp.web.forms import FlaskForm


class BookForm(FlaskForm):
    slot = StringField()

    def validate_slot(self, field: Field) -> None:
        if ids.parse(field.data) is None:
            raise ValidationError("Pick a time first.")

    @property
    def slot_id(self) -> int:
        """The slot's id, once the form is valid."""
        slot_id = ids.parse(self.slot.data)
        assert slot_id is not None
        return slot_id
