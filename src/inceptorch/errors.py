"""Errors a user can fix: the CLI prints them as one line and exits non-zero, never with a traceback."""


class UserError(Exception):
    """Bad input from the user: a missing path, an unknown name, a mismatched checkpoint, a bad flag value."""


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The first non-blank line of an exception's message, cut to `limit` characters, for a one-line error.

    An exception with an empty or blank message (`OSError()`, `zipfile.BadZipFile()`) gives its type's name.
    """
    line = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return line[:limit]
