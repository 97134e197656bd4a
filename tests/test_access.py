"""One place decides who sees what: organisation scoping, hiring teams, rights, entitlements."""

from __future__ import annotations

import pytest

from tests import factories as f
from webapp.accounts import access, permissions
from webapp.extensions import db


@pytest.fixture
def world(app):
    acme, globex = f.messaging_org("Acme"), f.org("Globex")
    admin = f.user(acme, "admin@acme.test", admin=True)
    recruiter = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS])
    manager = f.user(acme, "manager@acme.test")
    outsider = f.user(globex, "recruiter@globex.test")
    staff = f.user(None, "csm@relay.test", is_staff=True)
    team_job = f.job(acme, team=[recruiter, manager], title="Backend Engineer")
    other_job = f.job(acme, team=[recruiter], title="Designer")
    globex_job = f.job(globex, team=[outsider], title="Accountant")
    cand = f.candidate(acme)
    w = {
        "admin": admin,
        "recruiter": recruiter,
        "manager": manager,
        "outsider": outsider,
        "staff": staff,
        "team_job": team_job,
        "other_job": other_job,
        "globex_job": globex_job,
        "team_app": f.application(team_job, cand),
        "other_app": f.application(other_job, cand),
        "globex_app": f.application(globex_job, f.candidate(globex)),
    }
    db.session.commit()
    return w


def visible_titles(user) -> set[str]:
    return {j.title for j in db.session.scalars(access.visible_jobs(user))}


def test_jobs_are_scoped_to_the_organisation_and_the_team(world) -> None:
    assert visible_titles(world["admin"]) == {"Backend Engineer", "Designer"}
    assert visible_titles(world["recruiter"]) == {"Backend Engineer", "Designer"}
    assert visible_titles(world["manager"]) == {"Backend Engineer"}
    assert visible_titles(world["outsider"]) == {"Accountant"}
    assert visible_titles(world["staff"]) == set()


def test_applications_follow_the_same_rule(world) -> None:
    s = db.session
    assert access.get_application(s, world["manager"], world["team_app"].id) is not None
    assert access.get_application(s, world["manager"], world["other_app"].id) is None
    assert access.get_application(s, world["admin"], world["other_app"].id) is not None
    assert access.get_application(s, world["admin"], world["globex_app"].id) is None
    assert access.get_application(s, world["staff"], world["team_app"].id) is None


def test_other_applications_are_only_the_visible_ones(world) -> None:
    s = db.session
    assert [a.id for a in access.other_applications(s, world["recruiter"], world["team_app"])] == [
        world["other_app"].id
    ]
    assert access.other_applications(s, world["manager"], world["team_app"]) == []


def test_permissions(world) -> None:
    assert access.has_permission(world["recruiter"], permissions.RECRUITMENT_SMS)
    assert not access.has_permission(world["manager"], permissions.RECRUITMENT_SMS)
    assert access.is_org_admin(world["admin"]) and not access.is_org_admin(world["recruiter"])
    with pytest.raises(ValueError):
        access.has_permission(world["admin"], "no.such.right")


def test_entitlements_come_from_the_organisation(world) -> None:
    acme, globex = world["recruiter"].organization, world["outsider"].organization
    assert access.entitled(world["recruiter"], "messaging")
    assert not access.entitled(world["outsider"], "messaging")
    assert acme.channels == ["email", "sms", "whatsapp"]
    assert globex.channels == ["email"]
    globex.sms_enabled = True  # a channel switched on without the product is still off
    assert globex.channels == ["email"]
    assert not access.entitled(world["staff"], "ats")


@pytest.mark.parametrize(
    ("who", "path_of", "status"),
    [
        ("recruiter", lambda w: f"/jobs/{w['globex_job'].id}", 404),
        ("recruiter", lambda w: f"/applications/{w['globex_app'].id}", 404),
        ("manager", lambda w: f"/jobs/{w['other_job'].id}", 404),
        ("manager", lambda w: f"/applications/{w['other_app'].id}", 404),
        ("manager", lambda w: f"/applications/{w['team_app'].id}", 200),
        ("admin", lambda w: f"/applications/{w['other_app'].id}", 200),
        ("outsider", lambda w: f"/applications/{w['team_app'].id}", 404),
        ("staff", lambda w: f"/jobs/{w['team_job'].id}", 404),
        ("recruiter", lambda w: "/admin/", 403),
        ("admin", lambda w: "/admin/", 200),
    ],
)
def test_pages_answer_404_for_what_is_not_yours(client, auth, world, who, path_of, status) -> None:
    auth.login(world[who].email)
    response = client.get(path_of(world))
    assert response.status_code == status
    if status == 404:
        text = response.get_data(as_text=True)
        assert "not shared with you" in text
        for leak in ("Lovelace", "Designer", "Accountant", "Backend Engineer"):
            assert leak not in text


def test_admin_link_only_for_admins(client, auth, world) -> None:
    auth.login("recruiter@acme.test")
    assert 'href="/admin/"' not in client.get("/jobs").get_data(as_text=True)
    auth.logout()
    auth.login("admin@acme.test")
    assert 'href="/admin/"' in client.get("/jobs").get_data(as_text=True)


def test_forbidden_page_names_the_reason(client, auth, world) -> None:
    auth.login("recruiter@acme.test")
    assert "organisation administrators" in client.get("/admin/").get_data(as_text=True)
