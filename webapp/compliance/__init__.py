"""Proof-of-business documents for sending numbers (what carriers ask per country: requirements.json),
as plain functions over a database session: the catalogue (data), the encrypted files, the submission's
workflow and its audit trail. No request, no templates; the admin and staff pages call these."""
