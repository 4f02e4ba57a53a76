"""couchdb-replicator: keep a relational copy of a CouchDB database, fed from ``_changes``.

The command line (``couchdb-replicator run | status``) is the main interface; see
``docs/replicator.md``. From Python, :func:`replicate` catches a copy up once — what
``couchdb-replicator run --once`` does::

    from couchdb_replicator import replicate
    summary = replicate("couchdb://admin:pw@localhost:5984/shop", "sqlite:///shop-copy.db")
    print(summary.applied)

and :class:`Replicator` runs the daemon loop inside an existing asyncio program.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from sqlalchemy_couchdb.dbapi import ConnectionSettings
from sqlalchemy_couchdb.dbapi.exceptions import InvalidConfiguration

from .errors import ConfigurationError, ReplicatorError, SourceError, TargetUnavailable
from .runner import Replicator, RunOptions, RunSummary, tune_garbage_collector
from .schema import InferredSchema, MetadataSchema, Schema
from .targets import DEFAULT_TARGET, create_target_engine

__all__ = [
    "DEFAULT_TARGET",
    "ConfigurationError",
    "InferredSchema",
    "MetadataSchema",
    "Replicator",
    "ReplicatorError",
    "RunOptions",
    "RunSummary",
    "SourceError",
    "TargetUnavailable",
    "replicate",
    "replicate_async",
    "tune_garbage_collector",
]


async def replicate_async(
    source: str,
    target: str = DEFAULT_TARGET,
    *,
    metadata: sa.MetaData | None = None,
    batch_size: int = 1000,
) -> RunSummary:
    """Catch ``target`` up with ``source`` once (``run --once``) and return the summary.

    ``source`` is a ``couchdb://user:pass@host:port/db`` URL, ``target`` any SQLAlchemy URL
    (sync forms are mapped to asyncio drivers). With ``metadata`` the copy's tables are
    that MetaData's; without it they are inferred from the documents.
    """
    try:
        settings = ConnectionSettings.from_url(source)
    except InvalidConfiguration as exc:
        raise ConfigurationError(f"bad source URL: {exc}") from None
    schema: Schema = MetadataSchema(metadata) if metadata is not None else InferredSchema()
    copy = create_target_engine(target, replicating=True)
    try:
        return await Replicator(
            settings, copy, schema, RunOptions(once=True, batch_size=batch_size)
        ).run()
    finally:
        await copy.dispose()


def replicate(
    source: str,
    target: str = DEFAULT_TARGET,
    *,
    metadata: sa.MetaData | None = None,
    batch_size: int = 1000,
) -> RunSummary:
    """Blocking form of :func:`replicate_async` (runs its own event loop)."""
    return asyncio.run(replicate_async(source, target, metadata=metadata, batch_size=batch_size))
