"""Where a refusal's reason goes on a form: now webapp.web.refusals.put, named here as well until the
conversation and interview pages use webapp.web.refusals."""

from __future__ import annotations

from webapp.web.refusals import put

__all__ = ["put"]
