"""The CRM's pages: talent communities, their members (prospects), and the prospect-community page."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp.accounts import access
from webapp.crm import prospects
from webapp.extensions import db
from webapp.messaging import subjects
from webapp.models import Community, CommunityMembership
from webapp.web import guards, refusals
from webapp.web.composer import ComposeForm
from webapp.web.conversation_panel import page_of, subject_panel
from webapp.web.crm.forms import AddMemberForm
from webapp.web.list_filters import MemberFilterForm
from webapp.web.pages import render, wants_fragment

bp = Blueprint("crm", __name__, template_folder="templates")


crm_required = guards.product_required("crm")
# The member list refreshes itself on this event (HX-Trigger) after a prospect is added.
MEMBERS_CHANGED = "members-changed"


@bp.get("/communities")
@crm_required
def index() -> Response:
    rows = prospects.communities_for(db.session, current_user)
    return render("crm/index.html", "crm/index.html", rows=rows)


def _community(community_id: int) -> Community:
    return prospects.get_community(db.session, current_user, community_id) or abort(404)


def _members_context(community: Community) -> tuple[dict, int]:
    form = MemberFilterForm(request.args)
    rows, total, status = [], 0, 400
    if form.validate():
        q = form.q.data or ""
        rows = prospects.members(db.session, current_user, community, q)
        # Under the cap, the rows are the count; over it, the true number (for "Message all N").
        total, status = len(rows), 200
        if total >= prospects.MAX_ROWS:
            total = prospects.count_matching(db.session, current_user, community.id, q)
    return {
        "community": community,
        "filter_form": form,
        "members": rows,
        "total": total,
    }, status


@bp.get("/communities/<id:community_id>")
@crm_required
def community(community_id: int) -> Response:
    found = _community(community_id)
    context, status = _members_context(found)
    return render(
        "crm/community.html",
        "crm/_members.html",
        status=status,
        add_form=AddMemberForm(formdata=None),
        team=prospects.sourcing_team(db.session, found),
        **context,
    )


@bp.post("/communities/<id:community_id>/members")
@crm_required
def add_member(community_id: int) -> Response:
    found, form = _community(community_id), AddMemberForm()
    membership, existed = refusals.submit(form, lambda: _add(found, form), lambda: _add_form(found, form))
    return _added(found, membership, existed)


def _add(found: Community, form: AddMemberForm) -> tuple[CommunityMembership, bool]:
    first, last = form.first_name.data or "", form.last_name.data or ""
    return prospects.add_member(db.session, found, first, last, form.mobile.data or "", form.email.data or "")


def _add_form(found: Community, form: AddMemberForm) -> str:
    """The form with what was typed and the reasons beside their fields; without htmx, in its page."""
    if wants_fragment():
        return render_template("crm/_add_member.html", community=found, add_form=form, added=None)
    context, _ = _members_context(found)
    team = prospects.sourcing_team(db.session, found)
    return render_template("crm/community.html", add_form=form, team=team, **context)


def _added(found: Community, membership: CommunityMembership, existed: bool) -> Response:
    """Without htmx, back to the community's page; with it, an empty form saying who was added, and the
    member list told to refresh itself."""
    if not wants_fragment():
        note = " (already a prospect of your organisation)" if existed else ""
        flash(f"{membership.prospect.full_name} added to {found.name}{note}.", "success")
        return redirect(url_for("crm.community", community_id=found.id), 303)
    form = AddMemberForm(formdata=None)
    response = make_response(
        render_template("crm/_add_member.html", community=found, add_form=form, added=membership)
    )
    response.headers["HX-Trigger-After-Settle"] = MEMBERS_CHANGED
    return response


def _membership(membership_id: int) -> CommunityMembership:
    return access.get_membership(db.session, current_user, membership_id) or abort(404)


@bp.post("/memberships/<id:membership_id>/remove")
@crm_required
def remove_member(membership_id: int) -> Response:
    membership = _membership(membership_id)
    name, community_id = membership.prospect.full_name, membership.community_id
    prospects.remove_member(membership)
    db.session.commit()
    if wants_fragment():
        # The row goes; its conversation stays (the prospect's page still shows it).
        return make_response(render_template("crm/_removed.html", membership=membership, name=name))
    flash(f"{name} removed from the community. Their conversation is kept.", "success")
    return redirect(url_for("crm.community", community_id=community_id), 303)


@bp.post("/memberships/<id:membership_id>/restore")
@crm_required
def restore_member(membership_id: int) -> Response:
    membership = _membership(membership_id)
    prospects.restore_member(membership)
    db.session.commit()
    flash(f"{membership.prospect.full_name} is a member of {membership.community.name} again.", "success")
    return redirect(url_for("crm.membership", membership_id=membership.id), 303)


@bp.get("/memberships/<id:membership_id>")
@crm_required
def membership(membership_id: int) -> Response:
    return membership_page(_membership(membership_id), request.args.get("tab"))


@page_of("membership")
def membership_page(
    membership: CommunityMembership, tab: str | None, form: ComposeForm | None = None, status: int = 200
) -> Response:
    """The prospect-community page: the prospect, and the conversation's panel (as for a candidate)."""
    about = subjects.of_membership(membership)
    others = prospects.other_memberships(db.session, current_user, membership)
    context = subject_panel(about, tab, form)
    page = "crm/membership.html"
    response = render(page, page, status=status, membership=membership, others=others, **context)
    db.session.commit()  # the read marker of the tab on screen, after rendering (a commit expires all)
    return response
