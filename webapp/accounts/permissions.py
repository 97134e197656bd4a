"""The catalogue of permissions: the one list of rights the product knows, grouped as admins see them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class PermissionSpec:
    code: str
    name: str
    category: str


RECRUITMENT_SMS = "recruitment.sms"
SOURCING_MESSAGING = "sourcing.messaging"
ADMIN_ORGANIZATION = "admin.organization"
ADMIN_USERS = "admin.users"
ADMIN_TEMPLATES = "admin.templates"
ADMIN_CREDITS = "admin.credits"
ADMIN_NUMBERS = "admin.numbers"
ADMIN_UNMATCHED = "admin.unmatched"

CATALOGUE: tuple[PermissionSpec, ...] = (
    PermissionSpec(RECRUITMENT_SMS, "Recruitment – SMS", "Candidate management"),
    PermissionSpec(SOURCING_MESSAGING, "Sourcing – messaging", "CRM"),
    PermissionSpec(ADMIN_ORGANIZATION, "Organisation administration", "Administration"),
    PermissionSpec(ADMIN_USERS, "Users and roles", "Administration"),
    PermissionSpec(ADMIN_TEMPLATES, "Communication templates", "Administration"),
    PermissionSpec(ADMIN_CREDITS, "Credits", "Administration"),
    PermissionSpec(ADMIN_NUMBERS, "Sending numbers and compliance documents", "Administration"),
    PermissionSpec(ADMIN_UNMATCHED, "Unmatched messages", "Administration"),
)

CODES = frozenset(p.code for p in CATALOGUE)
ADMIN_CODES = frozenset(p.code for p in CATALOGUE if p.category == "Administration")


def sync(session: Session) -> None:
    """Make the permission table hold exactly the catalogue (names and categories included)."""
    from webapp.models.upsert import insert_ignore
    from webapp.models.user import Permission

    existing = {p.code: p for p in session.scalars(select(Permission))}
    for spec in CATALOGUE:
        row = existing.get(spec.code)
        if row is None:
            # Two first roles saved at once (in two organisations) both find a new permission missing.
            insert_ignore(
                session,
                Permission,
                {"code": spec.code, "name": spec.name, "category": spec.category},
                ["code"],
            )
        else:
            row.name, row.category = spec.name, spec.category
    for code, row in existing.items():
        if code not in CODES:
            session.delete(row)
    session.flush()
