"""The ATS side read for one user: jobs and their applications (queries)."""
