"""The ATS pages: jobs, their applications, and the candidate-application page."""
