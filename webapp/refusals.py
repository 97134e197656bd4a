"""A refusal: a rule of the domain saying no, in words for the person who asked.

Every domain package raises its own kind (people.PeopleRefused, slots.SlotRefused, …), each a Refused:
the web answers any of them on the form in one place (webapp.web.refusals), a command prints it.
"""

from __future__ import annotations

from collections.abc import Sequence


class Refused(ValueError):
    """Why the domain will not do what was asked. `message` is for the person who asked; `field` names
    the input it is about, as the form that asks for it names its field (None: the request as a whole).
    A ValueError, so that a command reports it as it reports a bad value. `also`: the refusals of other
    fields found in the same check, said with it (a form checked whole says every wrong field at once)."""

    def __init__(self, message: str, field: str | None = None, also: Sequence[Refused] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.also = tuple(also)

    def each(self) -> tuple[Refused, ...]:
        """This refusal and those said with it."""
        return (self, *self.also)
