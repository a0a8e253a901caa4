"""Errors a user can fix: the CLI prints them as one line and exits non-zero, never with a traceback."""


class UserError(Exception):
    """Bad input from the user: a missing path, an unknown name, a mismatched checkpoint, a bad flag value."""
