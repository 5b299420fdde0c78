"""The one exception type for bad input.

Every problem a user can fix (a missing file, a wrong option, targets out of range) is raised as
:class:`InputError` with a one-line message that names the file and the fix. The CLI prints the
message and exits with status 2; the Python API lets it propagate.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a one-line message naming the file and the fix."""
