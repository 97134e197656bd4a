"""Notifications (issue 21): what waits for a person in the top bar (waiting), and the emails that tell
them a reply waits (emails). The browser's desktop notification follows the newest waiting reply and
mention the top bar's poll carries (waiting.Waiting, static/js/app.js); nothing here knows a request."""
