"""The public booking page (/book/<token>): no sign-in, the candidate's side of an invitation. The rules
are webapp.interviews.booking's; this blueprint parses, calls them and renders."""
