"""Uploaded proof-of-business files: what we accept (by content, not by name), and how they are kept.

Identity documents are personal data. Each file is encrypted with Fernet (AES-128-CBC + HMAC-SHA256)
before it touches the disk, stored under UPLOAD_DIR/compliance/ with a random name (never under
static/, never the uploader's name), and read back only through `FileStore.read`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask

from webapp import config as settings
from webapp import refusals

log = logging.getLogger("relay.compliance")

MAX_BYTES = 10 * 1024 * 1024
MAX_LABEL = "10 MB"
EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
DEV_KEY_FILE = "relay-file.key"
_STORED_NAME = re.compile(r"[0-9a-f]{32}\.fernet")


class Refused(refusals.Refused):
    """The upload cannot be accepted; the message is for the user, next to the file."""

    def __init__(self, message: str, field: str | None = "file") -> None:
        super().__init__(message, field)


@dataclass(frozen=True)
class Upload:
    """A file that passed the checks, still in memory and in clear."""

    filename: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


def accept(filename: str | None, stream: IO[bytes]) -> Upload:
    """Check one uploaded file: its name, its size and its content. Raises Refused with the reason."""
    name = clean_filename(filename)
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise Refused(f"The file is larger than {MAX_LABEL}. Scan it at a lower resolution or as a PDF.")
    return Upload(filename=name, content_type=sniff(data), data=data)


def clean_filename(filename: str | None) -> str:
    """The name to show and to offer on download. Browsers send a bare name; a path, `..` or a control
    character means a forged or broken request, refused rather than quietly changed."""
    name = unicodedata.normalize("NFC", (filename or "").strip())
    if not name:
        raise Refused("Choose a file.")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise Refused("The file name contains control characters. Rename the file and try again.")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise Refused("The file name must not contain a path (/, \\ or ..). Rename the file and try again.")
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = (stem[:190] + dot + extension[:9]) if dot else name[:200]
    return name


def sniff(data: bytes) -> str:
    """The content type the bytes really are: PDF, PNG or JPEG, else Refused."""
    if not data:
        raise Refused("The file is empty.")
    if data.startswith(b"%PDF-"):
        # A PDF ends with %%EOF (possibly followed by a newline or a little padding).
        if b"%%EOF" not in data[-1024:]:
            raise Refused("The PDF is incomplete (it does not end like a PDF). Save it again and retry.")
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    raise Refused(
        "Only PDF, PNG or JPEG files are accepted, and this file is none of them (whatever its name says)."
    )


def download_name(filename: str, content_type: str) -> str:
    """The stored name with the extension its content deserves (a PNG called .pdf downloads as .png)."""
    extension = EXTENSIONS[content_type]
    stem, dot, current = filename.rpartition(".")
    if dot and ("." + current.lower()) in (extension, ".jpeg" if extension == ".jpg" else extension):
        return filename
    return (stem if dot else filename) + extension


class FileStore:
    """Encrypted files in one folder, named at random."""

    def __init__(self, directory: str | Path, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("a FileStore needs at least one key")
        self.directory = Path(directory)
        # The first key encrypts; every key decrypts, so an old key can be kept while files move on.
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def path(self, stored_name: str) -> Path:
        if not _STORED_NAME.fullmatch(stored_name):
            raise ValueError(f"{stored_name!r} is not a stored name")
        return self.directory / stored_name

    def write(self, data: bytes) -> str:
        """Encrypt and write; returns the new random name. The file appears whole or not at all."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stored_name = secrets.token_hex(16) + ".fernet"
        target = self.path(stored_name)
        temporary = target.with_name(target.name + ".part")
        token = self._fernet.encrypt(data)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(token)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return stored_name

    def read(self, stored_name: str) -> bytes:
        try:
            return self._fernet.decrypt(self.path(stored_name).read_bytes())
        except InvalidToken:
            # Not a file of ours, or RELAY_FILE_KEY lost the key it was written with.
            log.error("Cannot decrypt %s: wrong RELAY_FILE_KEY, or the file was changed", stored_name)
            raise

    def remove(self, stored_name: str) -> None:
        """Forget a file whose row was never committed (so nothing is left half-saved)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(stored_name).unlink()


def store_for(app: Flask) -> FileStore:
    """The app's store, from UPLOAD_DIR and RELAY_FILE_KEY (built once)."""
    store = app.extensions.get("relay.files")
    if store is None:
        keys = settings.file_keys(app.config.get("RELAY_FILE_KEY")) or [_development_key(app.instance_path)]
        store = FileStore(Path(app.config["UPLOAD_DIR"]) / "compliance", keys)
        app.extensions["relay.files"] = store
    return store


def _development_key(instance_path: str) -> bytes:
    """Outside production without RELAY_FILE_KEY: a random key kept in instance/ (config.check refuses
    production without the setting). Made once, readable by its owner only; a second process that
    loses the race to create it reads the winner's."""
    path = Path(instance_path) / DEV_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the winner may not have written it yet
            key = path.read_bytes().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it, or set RELAY_FILE_KEY") from None
    with os.fdopen(descriptor, "wb") as out:
        out.write(Fernet.generate_key())
    return path.read_bytes().strip()
