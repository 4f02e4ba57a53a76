"""Target URL handling: sync forms map to asyncio drivers; passwords never shown."""

from __future__ import annotations

import pytest

from couchdb_replicator.errors import ConfigurationError
from couchdb_replicator.targets import async_url, create_target_engine, display_url


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///copy.db", "sqlite+aiosqlite"),
        ("sqlite+pysqlite:///copy.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///copy.db", "sqlite+aiosqlite"),
        ("postgresql://u:p@h/db", "postgresql+asyncpg"),
        ("postgres://u:p@h/db", "postgresql+asyncpg"),
        ("postgresql+psycopg2://u:p@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u:p@h/db", "postgresql+asyncpg"),
        ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg"),
        ("mysql://u:p@h/db", "mysql+aiomysql"),
        ("mysql+pymysql://u:p@h/db", "mysql+aiomysql"),
        ("mariadb://u:p@h/db", "mysql+aiomysql"),
        ("mysql+aiomysql://u:p@h/db", "mysql+aiomysql"),
    ],
)
def test_sync_forms_map_to_async_drivers(given: str, driver: str) -> None:
    assert async_url(given).drivername == driver


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("oracle://u:secret@h/x", "unsupported target 'oracle'"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("not a url", "bad target URL"),
        ("postgresql+weird://u:secret@h/db", "unsupported target"),
    ],
)
def test_unsupported_targets(given: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words) as info:
        async_url(given)
    assert "secret" not in str(info.value)


def test_display_hides_the_password() -> None:
    shown = display_url("postgresql://user:s3cret@host:5432/db")
    assert "s3cret" not in shown
    assert "user:***@host" in shown


async def test_engine_is_built_without_connecting(tmp_path: object) -> None:
    target = create_target_engine("postgresql://u:s3cret@127.0.0.1:1/db")
    try:
        assert target.backend == "postgresql"
        assert target.identifier_limit == 63
        assert "s3cret" not in target.display
        assert "s3cret" not in repr(target.engine)
    finally:
        await target.dispose()


async def test_no_password_in_reprs() -> None:
    from couchdb_replicator import InferredSchema, Replicator
    from sqlalchemy_couchdb.dbapi import ConnectionSettings

    target = create_target_engine("mysql://root:s3cret@127.0.0.1:1/db")
    source = ConnectionSettings.from_url("couchdb://admin:pa55@127.0.0.1:1/db")
    try:
        replicator = Replicator(source, target, InferredSchema())
        for thing in (target, target.url, source, replicator):
            assert "s3cret" not in repr(thing) and "pa55" not in repr(thing)
    finally:
        await target.dispose()
