"""The one exception type users see.

Every error caused by the user's input (a bad file, a wrong shape, an unknown name) is raised
as a :class:`CnnlabError` (or a subclass) whose message is one line naming the problem. The
CLI prints it as ``cnnlab: error: <message>`` and exits with status 2; library callers can
catch it like any ``ValueError``.
"""

from __future__ import annotations


class CnnlabError(ValueError):
    """A user-facing error: one line, names the offending input."""


class DataError(CnnlabError):
    """A dataset or data file is missing, corrupt or inconsistent."""


class ImageError(CnnlabError):
    """An image could not be read or is unusable (empty, too large, not an image)."""


class CheckpointError(CnnlabError):
    """A checkpoint or run folder is missing, corrupt, untrusted or of another model."""


class ConfigError(CnnlabError):
    """A config file or option has an unknown key or a wrong type."""
