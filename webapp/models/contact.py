"""What candidates and prospects share: a name, an email, a mobile in E.164 and its country."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, validates

from webapp import phones
from webapp.search import fold


class ContactMixin:
    first_name: Mapped[str] = mapped_column(sa.String(100))
    last_name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    # E.164 with the +; the country is derived from it and kept for filtering and routing.
    mobile: Mapped[str | None] = mapped_column(sa.String(16))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    # "first last" through webapp.search.fold, for searches by name ("muller" finds Müller). Kept by
    # _fold_name whenever a name is set through the ORM; a bulk UPDATE of names must set it too.
    search_name: Mapped[str] = mapped_column(sa.Text, default="", server_default="")

    @validates("first_name", "last_name")
    def _fold_name(self, key: str, value: str) -> str:
        first = value if key == "first_name" else self.first_name
        last = value if key == "last_name" else self.last_name
        self.search_name = fold(f"{first or ''} {last or ''}")
        return value

    @validates("mobile")
    def _normalise_mobile(self, key: str, value: str | None) -> str | None:
        if value is None or not value.strip():
            self.country = None
            return None
        e164 = phones.normalise(value)
        self.country = phones.country_of(e164)
        return e164

    @validates("email")
    def _normalise_email(self, key: str, value: str | None) -> str | None:
        return value.strip().lower() or None if value is not None else None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def mobile_display(self) -> str:
        return phones.display(self.mobile) if self.mobile else ""

    @property
    def country_name(self) -> str:
        return phones.country_name(self.mobile) if self.mobile else ""
