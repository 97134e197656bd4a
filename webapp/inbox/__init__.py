"""The Inbox read for one user (queries: the list, filters, search, pages, what changed) and the change
marker every write keeps (changes)."""
