"""Errors that the user can fix.

``SepkitError`` is raised for bad input audio, a malformed recipe, an unknown
plugin, an unusable checkpoint or a bad command line. The CLI prints its message
on one line and exits with code 2; every other exception is a bug.
"""


class SepkitError(Exception):
    """A user-facing error: bad input, recipe, checkpoint or usage. The CLI prints it on one line and exits 2."""
