"""The replicator's own errors: each carries a one-line message fit for a terminal.

The CLI prints ``str(error)`` and exits non-zero without a traceback, so every message
names the problem and, where there is one, the fix; none contains a password.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ReplicatorError",
    "SourceError",
    "TargetUnavailable",
]


class ReplicatorError(Exception):
    """Base of the errors the CLI reports as one line and a non-zero exit status."""

    exit_code = 1


class ConfigurationError(ReplicatorError):
    """Bad input: a malformed URL, an unknown ``--metadata`` module, a bad option."""

    exit_code = 2


class SourceError(ReplicatorError):
    """CouchDB refused in a way retrying cannot fix: 401, 403, missing database, 400."""


class TargetUnavailable(ReplicatorError):
    """The relational target did not answer; the batch was not committed and is retried."""
