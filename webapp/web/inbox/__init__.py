"""The inbox: every conversation the user may see, in one list, newest first, live."""
