"""User-facing error families.

Every failure a user can cause (a bad file, a bad checkpoint, no network) raises one of
these. The CLI catches :class:`EsrganLabError` and prints ``error: <message>`` on one
line with a non-zero exit, never a traceback.
"""

from __future__ import annotations


class EsrganLabError(Exception):
    """Base class of every error meant for a user rather than a developer."""


class ImageReadError(EsrganLabError):
    """A file that is missing, unreadable, corrupt or not an image."""


class CheckpointError(EsrganLabError):
    """A checkpoint with an unknown key layout, a shape mismatch or a bad format."""


class DownloadError(EsrganLabError):
    """A download that failed: offline, HTTP error, truncated or wrong hash."""


class ConfigError(EsrganLabError):
    """A bad option, configuration file or parameter combination."""


class DataError(EsrganLabError):
    """A dataset that is missing, empty or inconsistent (unpaired files, size mismatch)."""
