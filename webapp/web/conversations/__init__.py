"""A conversation's messaging panel, for any conversation: the thread per channel, the composer and its
live counter, sending, and Simulate a reply. The application page, the prospect page and the Inbox
include the same partials (templates/conversations/); their ids carry the conversation's id."""
