"""A compliance document as an HTTP download: always an attachment, never sniffed, never cached."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response

from webapp.compliance.files import FileStore, download_name
from webapp.models import ComplianceDocument


def attachment(store: FileStore, document: ComplianceDocument) -> Response:
    data = store.read(document.stored_name)
    name = download_name(document.filename, document.content_type)
    # RFC 6266: an ASCII fallback, and the real name in UTF-8 for browsers that read filename*.
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    response = Response(data, mimetype=document.content_type)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store, private"
    # Opened anyway (some viewers ignore "attachment"): it runs nothing and talks to nobody.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
