"""The one exception type for bad input.

Every problem a user can fix (a missing file, a wrong option, targets out of range) is raised as
:class:`InputError` with a one-line message that names the file and the fix. The CLI prints the
message and exits with status 2; the Python API lets it propagate.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a one-line message naming the file and the fix."""


class Interrupted(KeyboardInterrupt):
    """Work stopped by Ctrl-C (or SIGTERM, when the caller turns it into a KeyboardInterrupt)
    after keeping what could be kept; the message says what (e.g. the best model so far).

    Attributes
    ----------
    cause : the KeyboardInterrupt (subclass) that stopped the work.
    partial : what was finished before it (e.g. the FittedModel of the best epoch), or None.
    """

    def __init__(self, message: str, cause: BaseException | None = None, partial: object = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.partial = partial
