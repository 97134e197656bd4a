"""Interviews: a job's slots and interviewers' time (slots), invitations to book one (invitations) and the
candidate's side of booking (booking)."""
