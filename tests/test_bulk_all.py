"""Bulk messages to "all N matching" a list's filter (issue 22 §1): the job's application list and a
community's member list offer *Message all N matching* beside *Message selected*; the composer gets the
filter, not the ids, and resolves it with the list's own query, uncapped and scoped to the user. Exactly
the filter's people, never another job's, team's or organisation's; a bad filter is a 400 with the reason."""

from __future__ import annotations

import html

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import csrf_from
from webapp.accounts import permissions
from webapp.crm import prospects
from webapp.extensions import db
from webapp.jobs import queries
from webapp.models import Application, BatchRecipient, Candidate
from webapp.search import fold


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        **fake.app_settings(),
        "QUIET_HOURS": False,
        "VONAGE_RATE_PER_SECOND": 0.0,
        "SEND_RATE_PER_NUMBER": 0.0,
    }


@pytest.fixture
def world(app):
    acme = f.messaging_org("Acme", sender_name="Acme")
    recruiter = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    outsider = f.user(acme, "outsider@acme.test", codes=[permissions.RECRUITMENT_SMS])
    f.number(acme, "+4915123456700")
    job = f.job(acme, team=[recruiter], title="Backend Engineer")
    mobile = iter(f"+4915123456{i:03d}" for i in range(1, 999))

    def apply(j, first, stage):
        return f.application(j, f.candidate(j.organization, first, "Test", mobile=next(mobile)), stage).id

    matching = [apply(job, f"Ada{i}", "interview") for i in range(5)]
    others = [apply(job, "Ada", "new"), apply(job, "Bob", "interview")]  # another stage, another name
    elsewhere = apply(f.job(acme, team=[recruiter]), "Ada", "interview")  # the recruiter's other job
    not_theirs = apply(f.job(acme, team=[outsider]), "Ada", "interview")  # another team's job
    globex = f.messaging_org("Globex")
    foreign = apply(f.job(globex), "Ada", "interview")
    f.credits(acme, 100)
    db.session.commit()
    return {
        "org": acme,
        "job": job.id,
        "matching": matching,
        "others": others,
        "strangers": [elsewhere, not_theirs, foreign],
    }


FILTER = {"all": "1", "filter_q": "ada", "filter_stage": "interview"}


def message(client, **extra):
    return {
        "csrf_token": csrf_from(client, "/jobs"),
        "channel": "sms",
        "body": "Hi %FIRSTNAME%, news about %JOBTITLE%.",
        **extra,
    }


def sent_to(fake) -> set[int]:
    return set(db.session.scalars(sa.select(BatchRecipient.subject_id)))


def test_all_matching_chooses_exactly_the_filters_people_past_the_lists_cap(
    client, auth, world, fake, monkeypatch
) -> None:
    monkeypatch.setattr(queries, "MAX_ROWS", 3)  # the list shows 3 of the 5 the filter matches
    auth.login("recruiter@acme.test")
    job = world["job"]
    listing = client.get(f"/jobs/{job}", query_string={"q": "ada", "stage": "interview"})
    text = listing.get_data(as_text=True)
    assert text.count('<tr id="application-') == 3
    assert "5 applications matching “ada” in Interview · the newest 3 shown" in text
    assert 'id="message-selected"' in text and ">Message all 5 matching</a>" in text
    link = html.unescape(text.split('id="message-all" href="')[1].split('"')[0])
    assert link == f"/jobs/{job}/message?all=1&filter_q=ada&filter_stage=interview"

    page = client.get(link).get_data(as_text=True)
    assert "<h1>Message 5 people matching “ada” in Interview</h1>" in page
    assert 'name="filter_q" value="ada"' in page and 'name="filter_stage" value="interview"' in page
    assert 'name="application"' not in page  # the filter, not one input per person
    counter = client.post(f"/jobs/{job}/message/counter", data=message(client, **FILTER))
    assert counter.status_code == 200 and "segment" in counter.get_data(as_text=True)

    # Ticks beside "all" (another job's, another team's, another organisation's) change nothing.
    data = message(client, **FILTER, application=[str(i) for i in world["strangers"] + world["others"]])
    drafted = client.post(f"/jobs/{job}/message/preview", data=data)
    preview = client.get(drafted.headers["Location"]).get_data(as_text=True)
    assert "Preview: 5 messages" in preview and "Hi Ada0, news about Backend Engineer." in preview
    # Send sends the preview's people: those the filter matched then, stored with the draft.
    sent = client.post(drafted.headers["Location"] + "/send", data={"csrf_token": data["csrf_token"]})
    assert sent.status_code == 303
    assert sent_to(fake) == set(world["matching"])
    assert len({r.body.get("client_ref") for r in fake.requests if r.body}) == 5


def test_no_filter_is_everyone_and_the_cap_refuses_on_the_preview_not_on_the_button(
    client, auth, world, fake
) -> None:
    world["org"].bulk_cap = 6
    db.session.commit()
    auth.login("recruiter@acme.test")
    job = world["job"]
    text = client.get(f"/jobs/{job}").get_data(as_text=True)
    assert ">Message all 7</a>" in text  # over the cap: N is still said
    link = html.unescape(text.split('id="message-all" href="')[1].split('"')[0])
    assert link == f"/jobs/{job}/message?all=1"
    page = client.get(link).get_data(as_text=True)
    assert "<h1>Message all 7 people</h1>" in page and 'id="bulk-over-cap"' in page
    preview = client.post(f"/jobs/{job}/message/preview", data=message(client, all="1"))
    assert preview.status_code == 422  # refused on the count, beside the text, nothing stored
    assert "at most 6 people; you chose 7" in preview.get_data(as_text=True)
    assert not fake.requests


def test_more_than_the_lists_rows_are_counted_and_chosen(client, auth, world) -> None:
    n = queries.MAX_ROWS + 7
    acme_id, job = world["org"].id, world["job"]
    db.session.execute(
        sa.insert(Candidate),
        [
            {
                "organization_id": acme_id,
                "first_name": "Ada",
                "last_name": f"Many{i}",
                "search_name": fold(f"ada many{i}"),
                "mobile": f"+4915200{i:06d}",
            }
            for i in range(n)
        ],
    )
    made = db.session.scalars(sa.select(Candidate.id).where(Candidate.last_name.like("Many%"))).all()
    db.session.execute(
        sa.insert(Application), [{"job_id": job, "candidate_id": c, "stage": "interview"} for c in made]
    )
    db.session.commit()
    auth.login("recruiter@acme.test")
    total = n + len(world["matching"])
    text = client.get(f"/jobs/{job}", query_string={"q": "ada", "stage": "interview"}).get_data(as_text=True)
    assert f"{total:,} applications matching “ada” in Interview · the newest {queries.MAX_ROWS} shown" in text
    assert f">Message all {total:,} matching</a>" in text
    page = client.get(f"/jobs/{job}/message", query_string=FILTER).get_data(as_text=True)
    assert f"<h1>Message {total:,} people matching “ada” in Interview</h1>" in page
    assert f"Preview {total:,} messages" in page and 'id="bulk-over-cap"' in page  # the default cap is 500


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"filter_stage": "hired-ish"}, "Stage: Not a valid choice."),
        ({"filter_q": "a" * 101}, "Search by name: Search for at most 100 characters."),
    ],
)
def test_a_bad_filter_is_a_400_with_the_reason(client, auth, world, fake, query, reason) -> None:
    auth.login("recruiter@acme.test")
    job = world["job"]
    page = client.get(f"/jobs/{job}/message", query_string={"all": "1", **query})
    assert page.status_code == 400 and reason in html.unescape(page.get_data(as_text=True))
    posted = client.post(f"/jobs/{job}/message/preview", data=message(client, all="1", **query))
    assert posted.status_code == 400
    assert not fake.requests


def test_a_filter_matching_nobody_goes_back_to_the_list_saying_so(client, auth, world) -> None:
    auth.login("recruiter@acme.test")
    job = world["job"]
    page = client.get(f"/jobs/{job}/message", query_string={"all": "1", "filter_q": "zelda"})
    assert page.status_code == 303 and page.headers["Location"].endswith(f"/jobs/{job}")
    assert "Nobody matches this filter." in client.get(f"/jobs/{job}").get_data(as_text=True)


def test_another_teams_or_organisations_job_is_a_404_filter_or_not(client, auth, world) -> None:
    job = world["job"]
    auth.login("outsider@acme.test")  # same organisation, not on the job's hiring team
    assert client.get(f"/jobs/{job}/message", query_string=FILTER).status_code == 404
    assert client.post(f"/jobs/{job}/message/preview", data=message(client, **FILTER)).status_code == 404
    auth.logout()
    globex_admin = f.user(f.org("Initech"), "admin@initech.test", admin=True)
    db.session.commit()
    auth.login(globex_admin.email)
    assert client.get(f"/jobs/{job}/message", query_string={"all": "1"}).status_code == 404


def test_all_members_matching_a_search_of_a_community(client, auth, world, fake, monkeypatch) -> None:
    monkeypatch.setattr(prospects, "MAX_ROWS", 2)
    acme = world["org"]
    acme.has_crm = True
    sourcer = f.user(acme, "sourcer@acme.test", codes=[permissions.SOURCING_MESSAGING])
    community = f.community(acme, "Rust people", team=[sourcer])
    mobile = iter(f"+4915123458{i:03d}" for i in range(1, 999))

    def member(c, first, removed=False):
        m = f.membership(c, f.prospect(acme, first, "Spect", mobile=next(mobile)))
        if removed:
            prospects.remove_member(m)
        return m.id

    matching = [member(community, f"Pro{i}") for i in range(4)]
    other_name = member(community, "Grace")
    removed = member(community, "Pro9", removed=True)
    elsewhere = member(f.community(acme, "Not theirs"), "Pro8")
    db.session.commit()
    auth.login("sourcer@acme.test")
    path = f"/communities/{community.id}"
    text = client.get(path, query_string={"q": "pro"}).get_data(as_text=True)
    assert "4 members matching “pro” · the newest 2 shown" in text and ">Message all 4 matching</a>" in text
    assert ">Message all 5</a>" in client.get(path).get_data(as_text=True)  # the removed one is not a member
    link = html.unescape(text.split('id="message-all-members" href="')[1].split('"')[0])
    assert link == f"{path}/message?all=1&filter_q=pro"
    page = client.get(link).get_data(as_text=True)
    assert "<h1>Message 4 people matching “pro”</h1>" in page and 'name="membership"' not in page

    data = message(
        client, all="1", filter_q="pro", membership=[str(elsewhere), str(other_name), str(removed)]
    )
    drafted = client.post(f"{path}/message/preview", data=data)
    assert drafted.status_code == 303
    sent = client.post(drafted.headers["Location"] + "/send", data={"csrf_token": data["csrf_token"]})
    assert sent.status_code == 303
    assert sent_to(fake) == set(matching)
    assert client.get(f"{path}/message", query_string={"all": "1", "filter_stage": "new"}).status_code == 400
    assert client.get(f"{path}/message", query_string={"all": "1", "filter_q": "x" * 101}).status_code == 400
