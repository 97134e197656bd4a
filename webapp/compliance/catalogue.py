"""The requirements catalogue: rows loaded from requirements.json, so that a country is data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from webapp.models import AcceptableDocument, ComplianceDocument, ComplianceRequirement

SOURCE = Path(__file__).with_name("requirements.json")


class CatalogueError(ValueError):
    """The catalogue file cannot be applied as it is; the message says why."""


def load(source: Path = SOURCE) -> dict[str, list[dict[str, Any]]]:
    data = json.loads(source.read_text(encoding="utf-8"))
    return {country: entries for country, entries in data.items() if not country.startswith("_")}


def sync(session: Session, data: dict[str, list[dict[str, Any]]] | None = None) -> int:
    """Make the catalogue tables hold exactly `data` (the file by default); returns the requirements.

    Rows are matched by their codes, so names can change without touching submitted documents. A
    requirement or document kind that documents already point at cannot be dropped: it is history.
    """
    data = load() if data is None else data
    existing = {
        (r.country, r.code): r
        for r in session.scalars(
            sa.select(ComplianceRequirement).options(selectinload(ComplianceRequirement.documents))
        )
    }
    wanted: set[tuple[str, str]] = set()
    for country, entries in data.items():
        for position, entry in enumerate(entries):
            key = (country, entry["code"])
            wanted.add(key)
            requirement = existing.get(key)
            if requirement is None:
                requirement = ComplianceRequirement(country=country, code=entry["code"])
                session.add(requirement)
            requirement.name = entry["name"]
            requirement.value_label = entry.get("value")
            requirement.position = position
            kinds = {k.code: k for k in requirement.documents}
            for kind_position, kind in enumerate(entry["documents"]):
                row = kinds.pop(kind["code"], None)
                if row is None:
                    row = AcceptableDocument(code=kind["code"])
                    requirement.documents.append(row)
                row.name, row.position = kind["name"], kind_position
            for stale in kinds.values():
                _drop(session, stale, f"{country} {entry['code']}: document kind {stale.code}")
    for key, requirement in existing.items():
        if key not in wanted:
            for kind in list(requirement.documents):
                _drop(session, kind, f"{key[0]} {key[1]}: document kind {kind.code}")
            _drop(session, requirement, f"{key[0]} requirement {key[1]}")
    session.flush()
    return len(wanted)


def _drop(session: Session, row: ComplianceRequirement | AcceptableDocument, what: str) -> None:
    column = (
        ComplianceDocument.requirement_id
        if isinstance(row, ComplianceRequirement)
        else ComplianceDocument.kind_id
    )
    if row.id is not None and session.scalar(sa.select(sa.exists().where(column == row.id))):
        raise CatalogueError(f"{what} has documents uploaded against it and cannot be removed")
    session.delete(row)


def countries(session: Session) -> list[str]:
    """The countries whose numbers need approved documents before they send."""
    return list(
        session.scalars(
            sa.select(ComplianceRequirement.country).distinct().order_by(ComplianceRequirement.country)
        )
    )


def requires_documents(session: Session, country: str) -> bool:
    return bool(session.scalar(sa.select(sa.exists().where(ComplianceRequirement.country == country))))


def requirements(session: Session, country: str) -> list[ComplianceRequirement]:
    return list(
        session.scalars(
            sa.select(ComplianceRequirement)
            .where(ComplianceRequirement.country == country)
            .options(selectinload(ComplianceRequirement.documents))
            .order_by(ComplianceRequirement.position, ComplianceRequirement.id)
        )
    )
