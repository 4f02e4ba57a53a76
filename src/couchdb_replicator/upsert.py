"""Insert-or-update by primary key, in each backend's own syntax, for executemany.

SQLite and PostgreSQL: ``INSERT … ON CONFLICT (key) DO UPDATE SET c = excluded.c``;
MySQL/MariaDB: ``INSERT … ON DUPLICATE KEY UPDATE c = VALUES(c)``. Every non-key column is
overwritten, so a field missing from the new revision becomes NULL, and applying the
same revision twice leaves the row as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect

__all__ = ["upsert_statement"]


def upsert_statement(dialect: Dialect, table: sa.Table, keys: Sequence[str]) -> Any:
    """The upsert of whole rows of ``table`` keyed by the ``keys`` columns."""
    others = [c for c in table.columns if c.name not in keys]
    name = dialect.name
    if name in ("mysql", "mariadb"):
        my = mysql.insert(table)
        if not others:
            # Nothing to update: re-set the key to itself, MySQL's "do nothing".
            first = table.c[keys[0]]
            return my.on_duplicate_key_update({first.name: my.inserted[first.key]})
        return my.on_duplicate_key_update({c.name: my.inserted[c.key] for c in others})
    if name == "postgresql":
        pg = postgresql.insert(table)
        if not others:
            return pg.on_conflict_do_nothing(index_elements=list(keys))
        return pg.on_conflict_do_update(
            index_elements=list(keys), set_={c.key: pg.excluded[c.key] for c in others}
        )
    if name == "sqlite":
        lite = sqlite.insert(table)
        if not others:
            return lite.on_conflict_do_nothing(index_elements=list(keys))
        return lite.on_conflict_do_update(
            index_elements=list(keys), set_={c.key: lite.excluded[c.key] for c in others}
        )
    raise NotImplementedError(f"no upsert for the {name} dialect")
