"""The one exception type for bad user input.

Library code raises :class:`InputError` (a :class:`ValueError`) when a file, table or parameter
given by the user cannot be used. The message is one line that names the file or value and says
what was expected. The command line turns it into ``error: <message>`` and exit status 2.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """A user-supplied file, table or value is unusable; the message says which and why."""
