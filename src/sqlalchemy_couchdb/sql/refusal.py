"""How the translator says no: by construct, with the way out, quoting the SQL briefly."""

from __future__ import annotations

from . import errors

__all__ = ["quote_sql", "refuse"]

_HYBRID = "Run it on the relational copy (couchdb+hybrid:// or the replicator's target)"


def refuse(construct: str, why: str, *, hybrid: bool = True) -> errors.NotSupportedError:
    """The error for valid SQL that CouchDB cannot answer exactly.

    ``hybrid``: whether the relational copy can answer it (JOIN, GROUP BY …) — not for
    things no store can (``FOR UPDATE`` on CouchDB, changing a document id).
    """
    tail = f". {_HYBRID}." if hybrid else "."
    return errors.NotSupportedError(f"{construct} is not supported by couchdb://: {why}{tail}")


def quote_sql(sql: str, limit: int = 160) -> str:
    """The statement for an error message: whitespace collapsed, shortened."""
    text = " ".join(sql.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
