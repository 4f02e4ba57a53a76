"""The main job, end to end: ``python -m demo`` (``make demo``).

1. Uses ``COUCHDB_URL`` (``http://admin:pw@host:5984``) when set, else starts the local
   PouchDB test server, and creates a scratch database.
2. Writes through the dialect: ``create_all`` (database + Mango indexes), ORM inserts with
   CouchDB-generated ids, a Core ``executemany`` (one ``_bulk_docs``), an UPDATE.
3. Queries through the dialect: filters, ORDER BY on an index, LIMIT, aggregates.
4. Runs the replicator (``couchdb-replicator run --once``) into a SQLite copy, and answers a
   JOIN + GROUP BY there: the SQL CouchDB cannot run, on the same model.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
import testserver
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from demo.models import Author, Book, metadata
from sqlalchemy_couchdb.dbapi import CouchDBClient, Error

AUTHORS = [
    ("le-guin", "Ursula K. Le Guin", "US"),
    ("herbert", "Frank Herbert", "US"),
    ("asimov", "Isaac Asimov", "US"),
    ("gibson", "William Gibson", "CA"),
    ("shelley", "Mary Shelley", "GB"),
    ("wells", "H. G. Wells", "GB"),
    ("lem", "Stanisław Lem", "PL"),
]
BOOKS = [
    ("The Left Hand of Darkness", "le-guin", 1969, "9.99"),
    ("The Dispossessed", "le-guin", 1974, "11.50"),
    ("Dune", "herbert", 1965, "12.00"),
    ("Foundation", "asimov", 1951, "8.25"),
    ("I, Robot", "asimov", 1950, "7.75"),
    ("Neuromancer", "gibson", 1984, "10.40"),
    ("Frankenstein", "shelley", 1818, "5.00"),
    ("The Time Machine", "wells", 1895, "4.50"),
    ("The War of the Worlds", "wells", 1898, "4.75"),
    ("Solaris", "lem", 1961, None),
]


@contextlib.contextmanager
def couchdb_server(console: Console) -> Iterator[str]:
    """A server URL with credentials: ``COUCHDB_URL``, or a local server for the run."""
    if url := os.environ.get("COUCHDB_URL"):
        console.print("Using the CouchDB server from COUCHDB_URL")
        yield url.rstrip("/")
        return
    started = time.monotonic()
    with testserver.start_server() as server:
        console.print(
            f"Started the local PouchDB test server on {server.base_url} "
            f"({time.monotonic() - started:.1f} s)"
        )
        yield server.url


def dialect_url(server_url: str, database: str) -> str:
    parts = urllib.parse.urlsplit(server_url)
    query = "?use_ssl=true" if parts.scheme == "https" else ""
    return f"couchdb://{parts.netloc}/{database}{query}"


def show(console: Console, title: str, result: sa.Result[tuple[object, ...]]) -> None:
    table = Table(title=title)
    names = result.keys()  # a Result's column names, not a dict
    for name in names:
        table.add_column(str(name))
    for row in result:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def write(engine: sa.Engine, console: Console) -> None:
    metadata.create_all(engine)  # creates the database and one Mango index per Index
    with Session(engine) as session:
        session.add_all(Author(id=a, name=n, country=c) for a, n, c in AUTHORS[:3])
        session.commit()
        book = Book(title="Dune Messiah", author_id="herbert", year=1969, price=None)
        session.add(book)
        session.commit()
        console.print(f"ORM insert: CouchDB gave the new book the id {book.id}")
    with engine.begin() as conn:
        conn.execute(  # executemany: one _bulk_docs request
            sa.insert(Author), [{"id": a, "name": n, "country": c} for a, n, c in AUTHORS[3:]]
        )
        conn.execute(
            sa.insert(Book),
            [
                {
                    "title": t,
                    "author_id": a,
                    "year": y,
                    "price": decimal.Decimal(p) if p else None,
                    "added": dt.date(2026, 1, 1) + dt.timedelta(days=i),
                }
                for i, (t, a, y, p) in enumerate(BOOKS)
            ],
        )
        raised = conn.execute(
            sa.update(Book).where(Book.year < 1900).values(price=Book.price + 1)
        ).rowcount
        console.print(f"UPDATE: raised the price of {raised} pre-1900 books by 1.00")


def query(engine: sa.Engine, console: Console) -> None:
    with engine.connect() as conn:
        show(
            console,
            "couchdb://: books since 1950, by year (Mango index on year)",
            conn.execute(
                sa.select(Book.year, Book.title, Book.price)
                .where(Book.year >= 1950)
                .order_by(Book.year)
                .limit(6)
            ),
        )
        show(
            console,
            "couchdb://: aggregates (COUNT, MIN, MAX, AVG; price NULL for one book)",
            conn.execute(
                sa.select(
                    sa.func.count().label("books"),
                    sa.func.count(Book.price).label("priced"),
                    sa.func.min(Book.year).label("oldest"),
                    sa.func.max(Book.year).label("newest"),
                    sa.func.avg(Book.price).label("avg_price"),
                )
            ),
        )
        try:
            conn.execute(
                sa.select(Author.name, sa.func.count(Book.id))
                .join(Book, Book.author_id == Author.id)
                .group_by(Author.name)
            )
        except sa.exc.NotSupportedError as err:
            console.print(f"couchdb:// refuses a JOIN, as it should: {err.orig}")


def replicate(source_url: str, target_url: str, console: Console) -> None:
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "couchdb_replicator",
        "run",
        "--once",
        "--source",
        source_url,
        "--target",
        target_url,
        "--metadata",
        "demo.models:metadata",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"couchdb-replicator failed ({done.returncode}): {done.stderr[-2000:]}")
    console.print(f"Replicator caught up into {target_url} in {time.monotonic() - started:.1f} s")


def report(target_url: str, console: Console) -> None:
    copy = sa.create_engine(target_url)
    with copy.connect() as conn:
        show(
            console,
            "SQLite copy: books and average price per author (JOIN + GROUP BY)",
            conn.execute(
                sa.select(
                    Author.name,
                    Author.country,
                    sa.func.count(Book.id).label("books"),
                    sa.func.round(sa.func.avg(Book.price), 2).label("avg_price"),
                )
                .join(Book, Book.author_id == Author.id)
                .group_by(Author.name, Author.country)
                .order_by(sa.desc("books"), Author.name)
            ),
        )
    copy.dispose()


def run(console: Console) -> None:
    with couchdb_server(console) as server_url, tempfile.TemporaryDirectory() as scratch:
        url = dialect_url(server_url, f"demo_{secrets.token_hex(4)}")
        engine = sa.create_engine(url)
        try:
            write(engine, console)
            query(engine, console)
            target = f"sqlite:///{Path(scratch) / 'copy.db'}"
            replicate(url, target, console)
            report(target, console)
        finally:
            engine.dispose()
            with CouchDBClient.from_url(url) as client:
                client.delete_database(missing_ok=True)
            console.print("Deleted the scratch database")


def main() -> int:
    console = Console()
    try:
        run(console)
    except (Error, sa.exc.SQLAlchemyError, testserver.TestServerError, RuntimeError) as err:
        console.print(f"[red]demo failed:[/red] {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
