"""The replicator's own tables in the target, beside the copy.

* ``couchdb_replicator_checkpoints``: per source, the opaque seq reached and running
  counts, written in the same transaction as each batch (principle 4).
* ``couchdb_replicator_dead_letters``: documents the copy cannot hold, with the reason.
* ``couchdb_replicator_tables``: which tables an inferred schema created for a source, so
  a deletion looks only in those (and never in the user's other tables).

Every row is keyed by the source (``host:port/database``), so several sources may share a
target as long as their document types differ.
"""

from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncEngine

from sqlalchemy_couchdb.dbapi import ConnectionSettings

__all__ = [
    "CHECKPOINTS",
    "DEAD_LETTERS",
    "ID_LENGTH",
    "REV_LENGTH",
    "STATE_METADATA",
    "STATE_PREFIX",
    "TABLES",
    "create_state_tables",
    "id_type",
    "source_key",
]

log = logging.getLogger(__name__)

STATE_PREFIX = "couchdb_replicator_"
#: CouchDB ids have no length limit; 512 characters fit MySQL's 3072-byte key limit in
#: utf8mb4 beside a 255-character source. A longer id is a dead letter.
ID_LENGTH = 512
REV_LENGTH = 100
_SOURCE_LENGTH = 255


def id_type() -> sa.types.TypeEngine[str]:
    """The type of a column holding CouchDB ids: case-sensitive everywhere.

    MySQL's default collations ignore case, so ``Doc`` and ``doc`` would be one primary key
    there; ``utf8mb4_bin`` (on MySQL and MariaDB alike) compares them as CouchDB does.
    """
    return sa.String(ID_LENGTH).with_variant(
        mysql.VARCHAR(ID_LENGTH, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


STATE_METADATA = sa.MetaData()

CHECKPOINTS = sa.Table(
    f"{STATE_PREFIX}checkpoints",
    STATE_METADATA,
    sa.Column("source", sa.String(_SOURCE_LENGTH), primary_key=True),
    # JSON text of the seq exactly as the server sent it: stored and sent back, never parsed.
    sa.Column("seq", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=True),
    # When a committed batch last left nothing pending: the copy equalled CouchDB then.
    sa.Column("caught_up_at", sa.DateTime, nullable=True),
    sa.Column("upserted", sa.BigInteger, nullable=False, default=0),
    sa.Column("deleted", sa.BigInteger, nullable=False, default=0),
    sa.Column("skipped_untyped", sa.BigInteger, nullable=False, default=0),
    sa.Column("skipped_unmapped", sa.BigInteger, nullable=False, default=0),
    sa.Column("fields_dropped", sa.BigInteger, nullable=False, default=0),
    sa.Column("dead_lettered", sa.BigInteger, nullable=False, default=0),
)

DEAD_LETTERS = sa.Table(
    f"{STATE_PREFIX}dead_letters",
    STATE_METADATA,
    sa.Column("source", sa.String(_SOURCE_LENGTH), primary_key=True),
    sa.Column("id", id_type(), primary_key=True),
    sa.Column("rev", sa.String(REV_LENGTH), nullable=True),
    sa.Column("seq", sa.Text, nullable=True),
    sa.Column("table_name", sa.String(255), nullable=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

TABLES = sa.Table(
    f"{STATE_PREFIX}tables",
    STATE_METADATA,
    sa.Column("source", sa.String(_SOURCE_LENGTH), primary_key=True),
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)


def source_key(settings: ConnectionSettings) -> str:
    """Identifies a source in the state tables: ``host:port/database``, no credentials."""
    key = f"{settings.host}:{settings.port}/{settings.database}"
    if len(key) > _SOURCE_LENGTH:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        key = f"{key[: _SOURCE_LENGTH - 17]}#{digest}"
    return key


async def create_state_tables(engine: AsyncEngine) -> None:
    """Create the state tables when missing; safe when another process races us."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(STATE_METADATA.create_all, checkfirst=True)
    except sa.exc.SQLAlchemyError:
        # Two replicators starting together on PostgreSQL can both pass the existence check;
        # the loser's CREATE fails. That is fine when the tables are there now.
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        if not {t.name for t in STATE_METADATA.sorted_tables} <= names:
            raise
        log.debug("state tables were created concurrently")
