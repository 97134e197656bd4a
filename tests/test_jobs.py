"""The ATS pages: the job list, a job's applications with search and stage filter, the application page."""

from __future__ import annotations

import pytest

from tests import factories as f
from webapp.extensions import db


@pytest.fixture
def job_world(app, auth):
    acme = f.messaging_org("Acme")
    recruiter = f.user(acme, "recruiter@acme.test")
    job = f.job(acme, team=[recruiter], title="Backend Engineer", location="Berlin")
    closed = f.job(acme, team=[recruiter], title="Office Manager", is_open=False)
    people = [
        ("Lena", "Müller", "+4915123456789", "new"),
        ("Jonas", "Schmidt", "+4915123456788", "interview"),
        ("Emma", "Johnson", "+12015550123", "interview"),
        ("Chloé", "Tremblay", "+16475550123", "hired"),
        ("Per%cent", "Under_score", "+46701234567", "new"),
    ]
    apps = {}
    for first, last, mobile, stage in people:
        apps[first] = f.application(job, f.candidate(acme, first, last, mobile=mobile), stage=stage)
    f.application(closed, apps["Lena"].candidate, stage="rejected")
    db.session.commit()
    auth.login("recruiter@acme.test")
    return {"job": job, "closed": closed, "apps": apps}


def names(html: str, world) -> set[str]:
    return {first for first, a in world["apps"].items() if f'id="application-{a.id}"' in html}


def test_job_list_counts_applications(client, job_world) -> None:
    html = client.get("/jobs").get_data(as_text=True)
    assert "Backend Engineer" in html and "Office Manager" in html
    row = html.split(f'id="job-{job_world["job"].id}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">4</td>' in row  # active (hired is not active)
    assert '<td class="num">5</td>' in row
    assert html.index("Backend Engineer") < html.index("Office Manager")  # open jobs first


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"Lena", "Jonas", "Emma", "Chloé", "Per%cent"}),
        ({"q": "lena"}, {"Lena"}),
        ({"q": "MÜLLER"}, {"Lena"}),
        ({"q": "muller"}, {"Lena"}),
        ({"q": "Muller Lena"}, {"Lena"}),
        ({"q": "chloe"}, {"Chloé"}),
        ({"q": "CHLOÉ tremblay"}, {"Chloé"}),
        ({"q": "jonas schmidt"}, {"Jonas"}),
        ({"q": "schmidt jonas"}, {"Jonas"}),
        ({"q": "  emma "}, {"Emma"}),
        ({"q": "%"}, {"Per%cent"}),
        ({"q": "_"}, {"Per%cent"}),
        ({"stage": "interview"}, {"Jonas", "Emma"}),
        ({"q": "o", "stage": "interview"}, {"Jonas", "Emma"}),
        ({"q": "zzz"}, set()),
    ],
)
def test_search_and_stage_filter(client, job_world, query, expected) -> None:
    response = client.get(f"/jobs/{job_world['job'].id}", query_string=query)
    assert response.status_code == 200
    assert names(response.get_data(as_text=True), job_world) == expected


def test_a_renamed_candidate_is_found_by_the_new_name(client, job_world) -> None:
    emma = job_world["apps"]["Emma"].candidate
    emma.last_name = "Sørensen"
    db.session.commit()
    url = f"/jobs/{job_world['job'].id}"
    assert names(client.get(url, query_string={"q": "emma sorensen"}).get_data(as_text=True), job_world) == {
        "Emma"
    }
    assert names(client.get(url, query_string={"q": "johnson"}).get_data(as_text=True), job_world) == set()


def test_filter_values_stay_in_the_form(client, job_world) -> None:
    html = client.get(f"/jobs/{job_world['job'].id}?q=emma&stage=interview").get_data(as_text=True)
    assert 'value="emma"' in html
    assert '<option selected value="interview">' in html
    assert 'hx-push-url="true"' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [({"stage": "bogus"}, "Not a valid choice"), ({"q": "x" * 101}, "at most 100 characters")],
)
def test_malformed_filters_are_a_400_with_a_message(client, job_world, query, message) -> None:
    response = client.get(f"/jobs/{job_world['job'].id}", query_string=query)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_htmx_search_returns_only_the_list(client, job_world) -> None:
    url = f"/jobs/{job_world['job'].id}?q=emma"
    fragment = client.get(url, headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="applications"')
    assert "<html" not in html and names(html, job_world) == {"Emma"}
    assert "HX-Request" in fragment.headers["Vary"]
    # A boosted link or a history restore wants the whole page.
    for header in ("HX-Boosted", "HX-History-Restore-Request"):
        page = client.get(url, headers={"HX-Request": "true", header: "true"}).get_data(as_text=True)
        assert "<html" in page


def test_application_page_shows_the_candidate(client, job_world) -> None:
    lena = job_world["apps"]["Lena"]
    html = client.get(f"/applications/{lena.id}").get_data(as_text=True)
    assert "Lena Müller" in html
    assert "+49 1512 3456789" in html
    assert "Germany (DE)" in html
    assert f'id="messaging-panel-{lena.id}"' in html
    assert "Office Manager" in html  # her other application


def test_canadian_number_is_canada(client, job_world) -> None:
    html = client.get(f"/applications/{job_world['apps']['Chloé'].id}").get_data(as_text=True)
    assert "Canada (CA)" in html


def test_unknown_ids_are_404(client, job_world) -> None:
    assert client.get("/jobs/999999").status_code == 404
    assert client.get("/applications/999999").status_code == 404
    assert client.get("/applications/abc").status_code == 404


def test_inbox_answers(client, job_world) -> None:
    assert client.get("/inbox").status_code == 200
