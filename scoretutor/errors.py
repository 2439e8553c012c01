"""The errors a user can fix: the command line prints any of them as one line ``error: …`` (exit 2).

Every class also derives from the built-in type it refines (``ValueError``, ``OSError``,
``RuntimeError``), so code that catches the built-in type keeps working. Anything else that goes
wrong is a bug or a torch error and keeps its traceback.
"""

from __future__ import annotations


class ScoretutorError(Exception):
    """Base class: a problem with the user's input, files, device or network, not with the code."""


class UsageError(ScoretutorError, ValueError):
    """A value the user gave is not allowed (the message says which values are)."""


class DeviceError(ScoretutorError, RuntimeError):
    """The requested device (or precision) is not available on this machine."""


class CheckpointError(ScoretutorError, ValueError):
    """A checkpoint folder is missing, truncated, or does not describe the expected model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint folder or one of its files does not exist."""


class DataError(ScoretutorError, ValueError):
    """A data file is malformed (bad IDX header, truncated gzip, wrong md5, bad shapes)."""


class DownloadError(ScoretutorError, OSError):
    """A file could not be downloaded from any mirror (offline, or every mirror failed)."""
