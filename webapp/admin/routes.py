from __future__ import annotations

import sqlalchemy as sa
from flask import render_template
from flask_login import current_user
from sqlalchemy.orm import selectinload

from webapp import permissions
from webapp.access import admin_required
from webapp.admin import bp
from webapp.extensions import db
from webapp.models import Role, SendingNumber, User


@bp.get("/")
@admin_required
def index() -> str:
    org = current_user.organization
    users = db.session.scalars(
        sa.select(User)
        .where(User.organization_id == org.id)
        .options(selectinload(User.roles).selectinload(Role.permissions))
        .order_by(User.name)
    ).all()
    numbers = db.session.scalars(
        sa.select(SendingNumber)
        .where(SendingNumber.organization_id == org.id)
        .order_by(SendingNumber.country, SendingNumber.e164)
    ).all()
    return render_template(
        "admin/index.html", org=org, users=users, numbers=numbers, catalogue=permissions.CATALOGUE
    )
