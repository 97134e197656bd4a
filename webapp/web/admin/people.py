"""Admin → People, and Roles and rights: invitations, deactivation, a person's roles and teams, the
permission matrix. The rules are webapp.accounts.people's; these routes parse, call and render."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from webapp.accounts import link_email, people, permissions
from webapp.extensions import db
from webapp.models import User
from webapp.web.admin.forms import InviteForm, NewRoleForm, RolesForm, SubmitForm, TeamsForm
from webapp.web.admin.routes import bp
from webapp.web.guards import permission_required

users_right = permission_required(permissions.ADMIN_USERS)


def _org_id() -> int:
    return current_user.organization_id


def _invite_form(formdata: Any = None) -> InviteForm:
    form = InviteForm(formdata=formdata) if formdata is not None else InviteForm(formdata=None)
    form.roles.choices = [SelectChoice(str(r.id), r.name) for r in people.roles_of(db.session, _org_id())]
    return form


def _people_page(
    form: InviteForm | None = None, status: int = 200, new_link: link_email.Handed | None = None
) -> tuple[str, int]:
    return render_template(
        "admin/people.html",
        org=current_user.organization,
        members=people.members(db.session, _org_id()),
        form=form or _invite_form(),
        new_link=new_link,
        is_invited=people.is_invited,
        catalogue=permissions.CATALOGUE,
    ), status


@bp.get("/people", endpoint="people")
@users_right
def people_index() -> tuple[str, int]:
    return _people_page()


def _hand_over(user: User, token: str, invited: bool) -> link_email.Handed:
    """Email the committed link to the user; the page shows it too, once (only its hash is stored)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return link_email.hand_over(app, db.session, user, current_user, token, invited)


@bp.post("/people/invite")
@users_right
def invite() -> tuple[str, int]:
    form = _invite_form(request.form)
    if not form.validate():
        return _people_page(form, 422)
    try:
        user, token = people.invite(
            db.session, current_user, form.name.data or "", form.email.data or "", form.roles.data or []
        )
        db.session.commit()
    except people.PeopleRefused as refusal:
        db.session.rollback()
        field = getattr(form, refusal.field, form.email)
        field.errors = [*field.errors, str(refusal)]
        return _people_page(form, 422)
    return _people_page(new_link=_hand_over(user, token, invited=True))


def _member(user_id: int) -> User:
    return people.get_member(db.session, _org_id(), user_id) or abort(404)


def _person_page(
    user: User,
    status: int = 200,
    roles_form: RolesForm | None = None,
    teams_form: TeamsForm | None = None,
    error: str | None = None,
    new_link: link_email.Handed | None = None,
) -> tuple[str, int]:
    org_id = _org_id()
    roles = people.roles_of(db.session, org_id)
    jobs = people.jobs_of(db.session, org_id)
    communities = people.communities_of(db.session, current_user.organization)
    job_ids, community_ids = people.team_ids(db.session, user)
    if roles_form is None:
        roles_form = RolesForm(formdata=None, roles=[r.id for r in user.roles])
    roles_form.roles.choices = [SelectChoice(str(r.id), r.name) for r in roles]
    if teams_form is None:
        teams_form = TeamsForm(formdata=None, jobs=sorted(job_ids), communities=sorted(community_ids))
    return render_template(
        "admin/person.html",
        org=current_user.organization,
        person=user,
        roles=roles,
        jobs=jobs,
        communities=communities,
        roles_form=roles_form,
        teams_form=teams_form,
        action_form=SubmitForm(),
        invited=people.is_invited(user),
        error=error,
        new_link=new_link,
        catalogue=permissions.CATALOGUE,
    ), status


@bp.get("/people/<id:user_id>")
@users_right
def person(user_id: int) -> tuple[str, int]:
    return _person_page(_member(user_id))


@bp.post("/people/<id:user_id>/roles")
@users_right
def person_roles(user_id: int) -> Response | tuple[str, int]:
    user = _member(user_id)
    form = RolesForm()
    if not form.validate():
        return _person_page(user, 422, roles_form=form)
    try:
        people.set_roles(db.session, current_user, user, form.roles.data or [])
    except people.PeopleRefused as refusal:
        db.session.rollback()
        form.roles.errors = [*form.roles.errors, str(refusal)]
        return _person_page(_member(user_id), 422, roles_form=form)
    db.session.commit()
    flash(f"{user.name}'s roles saved.", "success")
    return redirect(url_for("admin.person", user_id=user.id), 303)


@bp.post("/people/<id:user_id>/teams")
@users_right
def person_teams(user_id: int) -> Response | tuple[str, int]:
    user = _member(user_id)
    form = TeamsForm()
    if not form.validate():
        return _person_page(user, 422, teams_form=form)
    try:
        people.set_teams(db.session, user, form.jobs.data or [], form.communities.data or [])
    except people.PeopleRefused as refusal:
        db.session.rollback()
        form.jobs.errors = [*form.jobs.errors, str(refusal)]
        return _person_page(_member(user_id), 422, teams_form=form)
    db.session.commit()
    flash(f"{user.name}'s teams saved.", "success")
    return redirect(url_for("admin.person", user_id=user.id), 303)


@bp.post("/people/<id:user_id>/deactivate")
@users_right
def person_deactivate(user_id: int) -> Response | tuple[str, int]:
    user = _member(user_id)
    if not SubmitForm().validate():
        abort(400)
    try:
        ended = people.deactivate(db.session, current_user, user)
    except people.PeopleRefused as refusal:
        db.session.rollback()
        return _person_page(_member(user_id), 422, error=str(refusal))
    db.session.commit()
    signed_out = f" and signed out of {ended} session{'s' if ended != 1 else ''}" if ended else ""
    flash(f"{user.name} is deactivated{signed_out}.", "success")
    return redirect(url_for("admin.person", user_id=user.id), 303)


@bp.post("/people/<id:user_id>/reactivate")
@users_right
def person_reactivate(user_id: int) -> Response:
    user = _member(user_id)
    if not SubmitForm().validate():
        abort(400)
    people.reactivate(db.session, user)
    db.session.commit()
    flash(f"{user.name} can sign in again.", "success")
    return redirect(url_for("admin.person", user_id=user.id), 303)


@bp.post("/people/<id:user_id>/link")
@users_right
def person_link(user_id: int) -> tuple[str, int]:
    user = _member(user_id)
    if not SubmitForm().validate():
        abort(400)
    try:
        token = people.new_link(db.session, current_user, user)
    except people.PeopleRefused as refusal:
        db.session.rollback()
        return _person_page(user, 422, error=str(refusal))
    db.session.commit()
    return _person_page(user, new_link=_hand_over(user, token, invited=people.is_invited(user)))


# --- Roles and rights ------------------------------------------------------------------------------


def _categories() -> list[tuple[str, list[permissions.PermissionSpec]]]:
    grouped: dict[str, list[permissions.PermissionSpec]] = {}
    for spec in permissions.CATALOGUE:
        grouped.setdefault(spec.category, []).append(spec)
    return list(grouped.items())


def _roles_page(
    status: int = 200,
    error: str | None = None,
    new_role: NewRoleForm | None = None,
    grants: dict[int, set[str]] | None = None,
) -> tuple[str, int]:
    roles = people.roles_of(db.session, _org_id())
    if grants is None:
        grants = {r.id: {p.code for p in r.permissions} for r in roles}
    counts: dict[int, int] = {}
    for member in people.members(db.session, _org_id()):
        for role in member.roles:
            counts[role.id] = counts.get(role.id, 0) + (1 if member.active else 0)
    return render_template(
        "admin/roles.html",
        org=current_user.organization,
        roles=roles,
        grants=grants,
        counts=counts,
        categories=_categories(),
        form=SubmitForm(),
        new_role=new_role or NewRoleForm(formdata=None),
        error=error,
    ), status


@bp.get("/roles")
@users_right
def roles() -> tuple[str, int]:
    return _roles_page()


@bp.post("/roles")
@users_right
def save_roles() -> Response | tuple[str, int]:
    if not SubmitForm().validate():
        abort(400)
    # Checkboxes named "grant" with values "<role id>:<permission code>".
    grants: dict[int, set[str]] = {}
    for value in request.form.getlist("grant"):
        role_part, _, code = value.partition(":")
        role_id = role_part.isdigit() and int(role_part)
        if role_id:
            grants.setdefault(role_id, set()).add(code)
    org = current_user.organization
    try:
        people.save_matrix(db.session, org, grants)
    except people.PeopleRefused as refusal:
        db.session.rollback()
        return _roles_page(422, error=str(refusal), grants=grants)
    db.session.commit()
    flash("Roles and rights saved.", "success")
    return redirect(url_for("admin.roles"), 303)


@bp.post("/roles/new")
@users_right
def new_role() -> Response | tuple[str, int]:
    form = NewRoleForm()
    if not form.validate():
        return _roles_page(422, new_role=form)
    try:
        role = people.create_role(db.session, current_user.organization, form.name.data or "")
    except people.PeopleRefused as refusal:
        db.session.rollback()
        form.name.errors = [*form.name.errors, str(refusal)]
        return _roles_page(422, new_role=form)
    db.session.commit()
    flash(f"Role “{role.name}” added: tick its rights below.", "success")
    return redirect(url_for("admin.roles") + f"#role-{role.id}", 303)


@bp.post("/roles/<id:role_id>/delete")
@users_right
def delete_role(role_id: int) -> Response | tuple[str, int]:
    if not SubmitForm().validate():
        abort(400)
    org = current_user.organization
    role = next((r for r in people.roles_of(db.session, org.id) if r.id == role_id), None) or abort(404)
    name = role.name
    try:
        people.delete_role(db.session, org, role)
    except people.PeopleRefused as refusal:
        db.session.rollback()
        return _roles_page(422, error=str(refusal))
    db.session.commit()
    flash(f"Role “{name}” deleted.", "success")
    return redirect(url_for("admin.roles"), 303)
