"""Proof-of-business documents (issue #11): content checks, encryption at rest, the workflow end to end
(upload → submit → reject → fix → approve → number active → routing uses it → rejection stops it), the
bad-input list, downloads, the 413 page, expiry and the catalogue as data."""

from __future__ import annotations

import io
import re
import socket
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import InvalidToken
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests import factories as f
from tests.browser_support import serve
from tests.conftest import Auth, csrf_from
from webapp.accounts import permissions
from webapp.compliance import catalogue, files, submissions
from webapp.demo import _demo_pdf
from webapp.extensions import db
from webapp.messaging import compose
from webapp.messaging.subjects import of_application
from webapp.models import (
    ComplianceDocument,
    ComplianceEvent,
    ComplianceRequirement,
    ComplianceSubmission,
    SendingNumber,
    utcnow,
)
from webapp.numbers import pool

PDF = _demo_pdf("Acme SAS")


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixel = zlib.compress(b"\x00\xff\xff\xff")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", pixel)
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
HTML = b"<!doctype html><script>alert(document.cookie)</script>"


@pytest.fixture
def world(app):
    catalogue.sync(db.session)
    acme = f.messaging_org("Acme")
    globex = f.messaging_org("Globex")
    staff = f.user(None, "csm@relay.test", is_staff=True, name="Casey Moore")
    admin = f.user(acme, "admin@acme.test", admin=True, name="Ada Admin")
    recruiter = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS])
    globex_admin = f.user(globex, "admin@globex.test", admin=True)
    job = f.job(acme, team=[recruiter])
    manon = f.application(job, f.candidate(acme, "Manon", "Petit", mobile="+33612345678"))
    f.credits(acme, 20)
    us = pool.add(db.session, staff, acme, "+12015550100", sms=True, whatsapp=False)
    fr = pool.add(db.session, staff, acme, "+33612345600", sms=True, whatsapp=False)
    db.session.commit()
    return {
        "acme": acme,
        "globex": globex,
        "staff": staff,
        "admin": admin,
        "recruiter": recruiter,
        "globex_admin": globex_admin,
        "manon": manon,
        "us": us,
        "fr": fr,
    }


def requirements(country: str = "FR") -> dict[str, ComplianceRequirement]:
    return {r.code: r for r in catalogue.requirements(db.session, country)}


def upload(
    client, code: str, data: bytes = PDF, filename: str = "kbis.pdf", value: str = "Acme SAS", kind=None
):
    requirement = requirements()[code]
    prefix = f"r{requirement.id}-"
    form = {
        "csrf_token": csrf_from(client, "/admin/compliance/FR"),
        prefix + "value": value,
        prefix + "kind": str(kind if kind is not None else requirement.documents[0].id),
    }
    if filename is not None:
        form[prefix + "file"] = FileStorage(io.BytesIO(data), filename=filename)
    # Encoded here, in memory: the test client would spool a large body to a temporary file it never closes.
    boundary, body = encode_multipart(form)
    return client.post(
        f"/admin/compliance/FR/requirements/{requirement.id}",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def upload_all(client) -> None:
    for code in ("business_name", "business_address", "registration_number", "representative"):
        response = upload(client, code, value="Acme SAS" if code != "registration_number" else "552 100 554")
        assert response.status_code == 303, response.get_data(as_text=True)


def submit(client):
    return client.post(
        "/admin/compliance/FR/submit", data={"csrf_token": csrf_from(client, "/admin/compliance/FR")}
    )


def review(client, document: ComplianceDocument, decision: str, reason: str = ""):
    path = f"/staff/submissions/{document.submission_id}"
    data = {"csrf_token": csrf_from(client, path), f"d{document.id}-reason": reason}
    return client.post(f"{path}/documents/{document.id}/{decision}", data=data)


def current(code: str) -> ComplianceDocument:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(ComplianceDocument).where(
            ComplianceDocument.requirement_id == requirements()[code].id,
            ComplianceDocument.status != "replaced",
        )
    )


def stored_files(app) -> list[Path]:
    folder = Path(app.config["UPLOAD_DIR"]) / "compliance"
    return sorted(folder.iterdir()) if folder.exists() else []


def sender(w) -> str:
    message = compose.compose(db.session, w["recruiter"], of_application(w["manon"]), "sms", "Bonjour")
    db.session.commit()
    return message.from_addr


def test_the_whole_way(app, client, world) -> None:
    auth = Auth(client)
    auth.login("admin@acme.test")
    page = client.get("/admin/compliance/FR").get_data(as_text=True)
    for accepted in (
        "Extrait K-bis",
        "Utility bill",
        "Title deed",
        "Government-issued ID",
        "Residence permit",
    ):
        assert accepted in page
    upload_all(client)
    assert submit(client).status_code == 303
    submission = db.session.scalar(sa.select(ComplianceSubmission))
    assert submission.status == "submitted"
    assert sender(world) == "+12015550100"  # FR still pending documents: the US number
    auth.logout()

    auth.login("csm@relay.test")
    assert "Acme · France" in client.get("/staff/").get_data(as_text=True)
    address = current("business_address")
    assert review(client, address, "reject", "The bill is older than three months.").status_code == 303
    for code in ("business_name", "registration_number", "representative"):
        assert review(client, current(code), "approve").status_code == 303
    db.session.expire_all()
    assert submission.status == "rejected" and world["fr"].status == "pending_documents"
    auth.logout()

    auth.login("admin@acme.test")
    page = client.get("/admin/compliance/FR").get_data(as_text=True)
    assert "The bill is older than three months." in page and "Changes needed" in page
    # Approved documents are locked; the rejected one is replaced, and the old one stays in the history.
    locked = upload(client, "business_name")
    assert locked.status_code == 422 and "only the rejected ones need replacing" in locked.get_data(
        as_text=True
    )
    assert (
        upload(
            client, "business_address", png(), "facture.png", value="1 rue de Rivoli, 75001 Paris"
        ).status_code
        == 303
    )
    assert submit(client).status_code == 303
    old = db.session.get(ComplianceDocument, address.id)
    assert old.status == "replaced" and old.rejection_reason == "The bill is older than three months."
    auth.logout()

    auth.login("csm@relay.test")
    assert review(client, current("business_address"), "approve").status_code == 303
    db.session.expire_all()
    assert submission.status == "approved" and world["fr"].status == "active"
    assert sender(world) == "+12015550100"  # Manon's conversation keeps the number it started with
    other = f.application(
        world["manon"].job, f.candidate(world["acme"], "Léa", "Martin", mobile="+33612345679")
    )
    db.session.commit()
    first = compose.compose(db.session, world["recruiter"], of_application(other), "sms", "Bonjour")
    db.session.commit()
    assert first.from_addr == "+33612345600"  # a new French conversation gets the French number

    # A later rejection withdraws the approval and stops the numbers.
    assert (
        review(client, current("representative"), "reject", "The representative has changed.").status_code
        == 303
    )
    db.session.expire_all()
    assert (submission.status, world["fr"].status, world["fr"].suspension) == (
        "rejected",
        "suspended",
        "compliance",
    )
    later = compose.compose(db.session, world["recruiter"], of_application(other), "sms", "Encore")
    db.session.commit()
    assert later.from_addr == "+12015550100"

    actions = db.session.scalars(
        sa.select(ComplianceEvent.action)
        .where(ComplianceEvent.submission_id == submission.id)
        .order_by(ComplianceEvent.id)
    ).all()
    assert actions[:5] == ["uploaded"] * 4 + ["submitted"]
    assert {"document_rejected", "rejected", "replaced", "document_approved", "approved"} <= set(actions)
    history = client.get(f"/staff/submissions/{submission.id}").get_data(as_text=True)
    assert "Approval withdrawn" in history and "Number suspended" in history and "Ada Admin" in history


def test_files_are_encrypted_at_rest_under_a_random_name(app, client, world) -> None:
    Auth(client).login("admin@acme.test")
    secret = _demo_pdf("Passport of Jeanne Dupont, no. 12AB34567")
    assert upload(client, "representative", secret, "passport.pdf", value="Jeanne Dupont").status_code == 303
    document = current("representative")
    [path] = stored_files(app)
    stored = path.read_bytes()
    assert path.name == document.stored_name and "passport" not in path.name
    assert stored != secret and b"Jeanne Dupont" not in stored and b"%PDF" not in stored
    assert path.stat().st_mode & 0o777 == 0o600
    assert not str(path).startswith(app.static_folder)
    import hashlib

    assert document.sha256 == hashlib.sha256(secret).hexdigest() and document.size == len(secret)
    assert files.store_for(app).read(document.stored_name) == secret
    # A store with another key cannot read it.
    with pytest.raises(InvalidToken):
        files.FileStore(path.parent, [b"wrYm1n5mUk3cJ6HcA9nq1jPnB5u0o9bPZ8zC3bX9y2A="]).read(
            document.stored_name
        )


def test_downloads_are_attachments_for_the_organisations_admins_and_staff_only(app, client, world) -> None:
    auth = Auth(client)
    auth.login("admin@acme.test")
    assert upload(client, "business_name", png(), "carte K-bis, été.png").status_code == 303
    document = current("business_name")
    response = client.get(f"/admin/compliance/documents/{document.id}")
    assert response.status_code == 200 and response.data == png()
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"carte K-bis, _t_.png\"; filename*=UTF-8''carte%20K-bis%2C%20%C3%A9t%C3%A9.png"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store, private"
    auth.logout()
    for who, status in (("admin@globex.test", 404), ("recruiter@acme.test", 403)):
        auth.login(who)
        assert client.get(f"/admin/compliance/documents/{document.id}").status_code == status, who
        assert (
            client.get(f"/staff/submissions/{document.submission_id}/documents/{document.id}").status_code
            == 403
        )
        auth.logout()
    auth.login("csm@relay.test")
    assert client.get(f"/staff/submissions/{document.submission_id}/documents/{document.id}").data == png()
    assert (
        client.get(f"/staff/submissions/{document.submission_id + 1}/documents/{document.id}").status_code
        == 404
    )


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (EXE, "kbis.pdf", "Only PDF, PNG or JPEG files are accepted"),
        (HTML, "photo.png", "Only PDF, PNG or JPEG files are accepted"),
        (b"", "empty.pdf", "The file is empty."),
        (PDF[:-40], "cut.pdf", "The PDF is incomplete"),
        (PDF, "../../etc/passwd.pdf", "must not contain a path"),
        (PDF, "kbis\x00.pdf", "control characters"),
        (b"%PDF-1.4\n" + b"0" * files.MAX_BYTES + b"%%EOF", "big.pdf", "larger than 10 MB"),
        (PDF, None, "Choose a file."),
    ],
)
def test_bad_files_are_refused_next_to_the_field_and_nothing_is_saved(
    app, client, world, data, filename, message
):
    Auth(client).login("admin@acme.test")
    response = upload(client, "business_name", data, filename)
    assert response.status_code == 422
    requirement = requirements()["business_name"]
    match = re.search(rf'id="r{requirement.id}-file-error">([^<]+)<', response.get_data(as_text=True))
    assert match and message in match.group(1).replace("&#39;", "'"), response.get_data(as_text=True)[-3000:]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ComplianceDocument)) == 0
    assert stored_files(app) == []


def test_good_files_of_each_kind_are_accepted_whatever_their_name(app, client, world) -> None:
    Auth(client).login("admin@acme.test")
    for data, name, kind in (
        (PDF, "a.PDF", "application/pdf"),
        (png(), "scan.pdf", "image/png"),
        (JPEG, "b.jpeg", "image/jpeg"),
    ):
        assert upload(client, "business_name", data, name).status_code == 303
        assert current("business_name").content_type == kind
    assert files.download_name("scan.pdf", "image/png") == "scan.png"
    assert len(stored_files(app)) == 3  # the replaced ones are kept, each under its own name


@pytest.mark.parametrize(
    ("change", "message", "field"),
    [
        ({"value": ""}, "Enter the business name as registered.", "value"),
        ({"value": "x" * 501}, "Field cannot be longer than 500 characters.", "value"),
        ({"kind": 999999}, "Choose which of the accepted documents this is.", "kind"),
    ],
)
def test_values_and_kinds_are_checked(app, client, world, change, message, field) -> None:
    Auth(client).login("admin@acme.test")
    response = upload(client, "business_name", **change)
    requirement = requirements()["business_name"]
    assert response.status_code == 422
    assert re.search(
        rf'id="r{requirement.id}-{field}-error">{re.escape(message)}<', response.get_data(as_text=True)
    )
    assert (
        stored_files(app) == []
        and db.session.scalar(sa.select(sa.func.count()).select_from(ComplianceDocument)) == 0
    )


def test_a_kind_of_another_requirement_is_refused(client, world) -> None:
    Auth(client).login("admin@acme.test")
    utility_bill = next(k for k in requirements()["business_address"].documents if k.code == "utility_bill")
    response = upload(client, "business_name", kind=utility_bill.id)
    assert response.status_code == 422 and "Choose which of the accepted documents" in response.get_data(
        as_text=True
    )


def test_submitting_with_a_requirement_missing_says_which(client, world) -> None:
    Auth(client).login("admin@acme.test")
    assert upload(client, "business_name").status_code == 303
    response = submit(client)
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert (
        "Business address: no document yet" in text
        and "Name of authorized representative: no document yet" in text
    )
    assert db.session.scalar(sa.select(ComplianceSubmission.status)) == "draft"
    assert "submitted" not in db.session.scalars(sa.select(ComplianceEvent.action)).all()


def test_documents_cannot_change_while_waiting_for_review(client, world) -> None:
    Auth(client).login("admin@acme.test")
    upload_all(client)
    submit(client)
    response = upload(client, "business_name")
    assert response.status_code == 422 and "waiting for review and cannot be changed" in response.get_data(
        as_text=True
    )


def test_staff_cannot_review_another_submissions_document_through_a_forged_address(client, world) -> None:
    auth = Auth(client)
    auth.login("admin@acme.test")
    upload_all(client)
    submit(client)
    auth.logout()
    theirs = submissions.get_or_create(db.session, world["globex"].id, "FR")
    db.session.commit()
    document = current("business_name")
    auth.login("csm@relay.test")
    forged = client.post(
        f"/staff/submissions/{theirs.id}/documents/{document.id}/approve",
        data={"csrf_token": csrf_from(client, "/staff/")},
    )
    assert forged.status_code == 404
    assert current("business_name").status == "pending"
    assert (
        client.post(
            f"/staff/submissions/{document.submission_id}/documents/{document.id}/maybe",
            data={"csrf_token": csrf_from(client, "/staff/")},
        ).status_code
        == 404
    )


def test_a_rejection_needs_a_reason_and_only_staff_review(client, world) -> None:
    auth = Auth(client)
    auth.login("admin@acme.test")
    upload_all(client)
    submit(client)
    document = current("business_name")
    response = client.post(
        f"/staff/submissions/{document.submission_id}/documents/{document.id}/approve",
        data={"csrf_token": csrf_from(client, "/admin/")},
    )
    assert response.status_code == 403
    auth.logout()
    auth.login("csm@relay.test")
    response = review(client, document, "reject", "   ")
    assert response.status_code == 422
    assert re.search(rf'id="d{document.id}-reason-error">Say why', response.get_data(as_text=True))
    assert current("business_name").status == "pending"


def test_an_approval_expires_and_stops_the_numbers(client, world, runner) -> None:
    submission = submissions.get_or_create(db.session, world["acme"].id, "FR")
    submission.status, submission.expires_at = "approved", utcnow() - timedelta(minutes=1)
    pool.activate_country(db.session, world["staff"], world["acme"].id, "FR", "approved")
    db.session.commit()
    assert db.session.get(SendingNumber, world["fr"].id).status == "active"
    result = runner.invoke(args=["compliance", "expire"])
    assert result.exit_code == 0 and "Expired: Acme FR" in result.output
    db.session.expire_all()
    assert (submission.status, db.session.get(SendingNumber, world["fr"].id).status) == (
        "expired",
        "suspended",
    )
    assert runner.invoke(args=["compliance", "expire"]).output.strip().endswith("0 approval(s) expired.")


def test_the_catalogue_syncs_idempotently_and_keeps_what_documents_point_at(client, world, runner) -> None:
    assert "6 requirements in the catalogue (DE, FR)" in runner.invoke(args=["compliance", "sync"]).output
    Auth(client).login("admin@acme.test")
    assert upload(client, "business_name").status_code == 303
    data = catalogue.load()
    data["FR"] = [r for r in data["FR"] if r["code"] != "business_name"]
    with pytest.raises(catalogue.CatalogueError, match="has documents uploaded against it"):
        catalogue.sync(db.session, data)
    db.session.rollback()
    data = catalogue.load()
    data["FR"][0]["name"] = "Company name"
    catalogue.sync(db.session, data)
    assert requirements()["business_name"].name == "Company name"


# --- 413: a 50 MB upload gets the page, not a reset ----------------------------------------------------


def test_a_50_mb_upload_gets_a_clear_413_page_not_a_connection_reset(app, world) -> None:
    with app.app_context():
        requirement_id = requirements()["business_name"].id
    with serve(app) as url:
        port = int(url.rsplit(":", 1)[1])
        size = 50 * 1024 * 1024
        head = (
            f"POST /admin/compliance/FR/requirements/{requirement_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {size}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head)
            chunk = b"0" * (1024 * 1024)
            # Slowly, like a browser on a real network: a server that answers and closes at once
            # while this is still sending resets the connection.
            for _ in range(50):
                sock.sendall(chunk)
            answer = b""
            while data := sock.recv(65536):
                answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.endswith(b"413 REQUEST ENTITY TOO LARGE"), status_line
    assert b"Too large" in rest and b"a file may be at most 10 MB" in rest


@pytest.mark.parametrize(
    "name", ["../x.pdf", "a/b.pdf", "C:\\Users\\x.pdf", "..", "x\x00.pdf", "x\n.pdf", " "]
)
def test_file_names_with_a_path_or_control_characters_are_refused(name) -> None:
    with pytest.raises(files.Refused):
        files.clean_filename(name)


def test_long_file_names_are_shortened_keeping_the_extension() -> None:
    assert files.clean_filename("a" * 300 + ".pdf") == "a" * 190 + ".pdf"
    assert files.clean_filename(" ..kbis.pdf ") == "..kbis.pdf"  # dots alone are no path


def test_staff_may_approve_until_a_date(client, world) -> None:
    auth = Auth(client)
    auth.login("admin@acme.test")
    upload_all(client)
    submit(client)
    auth.logout()
    auth.login("csm@relay.test")
    document = current("business_name")
    path = f"/staff/submissions/{document.submission_id}"
    past = {"csrf_token": csrf_from(client, path), f"d{document.id}-valid_until": "2020-01-01"}
    refused = client.post(f"{path}/documents/{document.id}/approve", data=past)
    assert refused.status_code == 422 and "Choose a date after today" in refused.get_data(as_text=True)
    assert current("business_name").status != "approved"
    for code in ("business_name", "business_address", "registration_number"):
        assert review(client, current(code), "approve").status_code == 303
    last = current("representative")
    later = (utcnow() + timedelta(days=200)).date().isoformat()
    data = {"csrf_token": csrf_from(client, path), f"d{last.id}-valid_until": later}
    assert client.post(f"{path}/documents/{last.id}/approve", data=data).status_code == 303
    submission = db.session.get(ComplianceSubmission, last.submission_id)
    db.session.refresh(submission)
    assert submission.status == "approved" and submission.expires_at.date().isoformat() == later
