"""Notifications (issue 21): what waits for a person in the top bar (waiting), and the emails that tell
them a reply waits (emails). The browser's desktop notification is the top bar's count going up
(static/js/app.js); nothing here knows a request."""
