"""Interviews for the hiring team: a job's slots, inviting candidates (one, or several from the job's
list) and the invitation's state on the application page. The candidate's booking page is
webapp.booking; the rules are in this package's plain modules (slots, invitations, booking)."""
