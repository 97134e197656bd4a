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
from webapp.web import refusals
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


def _people_page(form: InviteForm | None = None, new_link: link_email.Handed | None = None) -> str:
    return render_template(
        "admin/people.html",
        org=current_user.organization,
        members=people.members(db.session, _org_id()),
        form=form or _invite_form(),
        new_link=new_link,
        is_invited=people.is_invited,
        catalogue=permissions.CATALOGUE,
    )


@bp.get("/people", endpoint="people")
@users_right
def people_index() -> str:
    return _people_page()


def _hand_over(user: User, token: str, invited: bool) -> link_email.Handed:
    """Email the committed link to the user; the page shows it too, once (only its hash is stored)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return link_email.hand_over(app, db.session, user, current_user, token, invited)


@bp.post("/people/invite")
@users_right
def invite() -> str:
    form = _invite_form(request.form)
    user, token = refusals.submit(form, lambda: _invite(form), lambda: _people_page(form))
    return _people_page(new_link=_hand_over(user, token, invited=True))


def _invite(form: InviteForm) -> tuple[User, str]:
    name, email = form.name.data or "", form.email.data or ""
    return people.invite(db.session, current_user, name, email, form.roles.data or [])


def _member(user_id: int) -> User:
    return people.get_member(db.session, _org_id(), user_id) or abort(404)


def _to_person(user: User, message: str) -> Response:
    flash(message, "success")
    return redirect(url_for("admin.person", user_id=user.id), 303)


def _person_page(
    user: User,
    roles_form: RolesForm | None = None,
    teams_form: TeamsForm | None = None,
    error: str | None = None,
    new_link: link_email.Handed | None = None,
) -> str:
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
    )


@bp.get("/people/<id:user_id>")
@users_right
def person(user_id: int) -> str:
    return _person_page(_member(user_id))


@bp.post("/people/<id:user_id>/roles")
@users_right
def person_roles(user_id: int) -> Response:
    user, form = _member(user_id), RolesForm()
    refusals.submit(
        form,
        lambda: people.set_roles(db.session, current_user, user, form.roles.data or []),
        lambda: _person_page(_member(user_id), roles_form=form),
    )
    return _to_person(user, f"{user.name}'s roles saved.")


@bp.post("/people/<id:user_id>/teams")
@users_right
def person_teams(user_id: int) -> Response:
    user, form = _member(user_id), TeamsForm()
    refusals.submit(
        form,
        lambda: people.set_teams(db.session, user, form.jobs.data or [], form.communities.data or []),
        lambda: _person_page(_member(user_id), teams_form=form),
    )
    return _to_person(user, f"{user.name}'s teams saved.")


@bp.post("/people/<id:user_id>/deactivate")
@users_right
def person_deactivate(user_id: int) -> Response:
    user, form = _member(user_id), SubmitForm()
    ended = refusals.submit(
        form,
        lambda: people.deactivate(db.session, current_user, user),
        lambda: _person_page(_member(user_id), error=refusals.first_error(form)),
    )
    signed_out = f" and signed out of {ended} session{'s' if ended != 1 else ''}" if ended else ""
    return _to_person(user, f"{user.name} is deactivated{signed_out}.")


@bp.post("/people/<id:user_id>/reactivate")
@users_right
def person_reactivate(user_id: int) -> Response:
    user = _member(user_id)
    if not SubmitForm().validate():
        abort(400)
    people.reactivate(db.session, user)
    db.session.commit()
    return _to_person(user, f"{user.name} can sign in again.")


@bp.post("/people/<id:user_id>/link")
@users_right
def person_link(user_id: int) -> str:
    user, form = _member(user_id), SubmitForm()
    token = refusals.submit(
        form,
        lambda: people.new_link(db.session, current_user, user),
        lambda: _person_page(user, error=refusals.first_error(form)),
    )
    return _person_page(user, new_link=_hand_over(user, token, invited=people.is_invited(user)))


# --- Roles and rights ------------------------------------------------------------------------------


def _categories() -> list[tuple[str, list[permissions.PermissionSpec]]]:
    grouped: dict[str, list[permissions.PermissionSpec]] = {}
    for spec in permissions.CATALOGUE:
        grouped.setdefault(spec.category, []).append(spec)
    return list(grouped.items())


def _roles_page(
    error: str | None = None,
    new_role: NewRoleForm | None = None,
    grants: dict[int, set[str]] | None = None,
) -> str:
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
    )


@bp.get("/roles")
@users_right
def roles() -> str:
    return _roles_page()


@bp.post("/roles")
@users_right
def save_roles() -> Response:
    form, grants = SubmitForm(), _grants(request.form.getlist("grant"))
    refusals.submit(
        form,
        lambda: people.save_matrix(db.session, current_user.organization, grants),
        lambda: _roles_page(error=refusals.first_error(form), grants=grants),
    )
    return _to_roles("Roles and rights saved.")


def _grants(values: list[str]) -> dict[int, set[str]]:
    """The matrix's ticked checkboxes, named "grant" with values "<role id>:<permission code>"."""
    grants: dict[int, set[str]] = {}
    for value in values:
        role_part, _, code = value.partition(":")
        role_id = role_part.isdigit() and int(role_part)
        if role_id:
            grants.setdefault(role_id, set()).add(code)
    return grants


def _to_roles(message: str, anchor: str = "") -> Response:
    flash(message, "success")
    return redirect(url_for("admin.roles") + anchor, 303)


@bp.post("/roles/new")
@users_right
def new_role() -> Response:
    form = NewRoleForm()
    role = refusals.submit(
        form,
        lambda: people.create_role(db.session, current_user.organization, form.name.data or ""),
        lambda: _roles_page(new_role=form),
    )
    return _to_roles(f"Role “{role.name}” added: tick its rights below.", f"#role-{role.id}")


@bp.post("/roles/<id:role_id>/delete")
@users_right
def delete_role(role_id: int) -> Response:
    org, form = current_user.organization, SubmitForm()
    role = next((r for r in people.roles_of(db.session, org.id) if r.id == role_id), None) or abort(404)
    name = role.name
    refusals.submit(
        form,
        lambda: people.delete_role(db.session, org, role),
        lambda: _roles_page(error=refusals.first_error(form)),
    )
    return _to_roles(f"Role “{name}” deleted.")
