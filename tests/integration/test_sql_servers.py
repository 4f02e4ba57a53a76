"""The relational fixtures reach real servers: later issues replicate into them."""

from __future__ import annotations

import sqlalchemy


def _server_version(url: str) -> str:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            version = connection.execute(sqlalchemy.text("SELECT version()")).scalar_one()
    finally:
        engine.dispose()
    return str(version)


def test_postgresql_url_connects_to_postgresql(postgresql_url: str) -> None:
    assert "PostgreSQL" in _server_version(postgresql_url)


def test_mariadb_url_connects_to_mariadb(mariadb_url: str) -> None:
    assert "MariaDB" in _server_version(mariadb_url)
