"""End-to-end run against a CouchDB-compatible server: ``python -m demo``.

Uses ``COUCHDB_URL`` (``http://admin:pw@host:5984``) when set, else starts the local PouchDB
test server. It creates a scratch database, bulk-inserts a few documents, queries them with
``_find`` through an index, prints the rows and deletes the database again. Plain httpx for
now; it moves to the project's client and dialect as those land.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import testserver
from rich.console import Console
from rich.table import Table

BOOKS: list[dict[str, Any]] = [
    {"title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin", "year": 1969},
    {"title": "Dune", "author": "Frank Herbert", "year": 1965},
    {"title": "Foundation", "author": "Isaac Asimov", "year": 1951},
    {"title": "Neuromancer", "author": "William Gibson", "year": 1984},
    {"title": "Frankenstein", "author": "Mary Shelley", "year": 1818},
    {"title": "The Dispossessed", "author": "Ursula K. Le Guin", "year": 1974},
    {"title": "The Time Machine", "author": "H. G. Wells", "year": 1895},
    {"title": "Hyperion", "author": "Dan Simmons", "year": 1989},
]


@contextlib.contextmanager
def couchdb_server(console: Console) -> Iterator[str]:
    """Yield a server URL with credentials: ``COUCHDB_URL``, or a local server for the run."""
    if url := os.environ.get("COUCHDB_URL"):
        console.print("Using the CouchDB server from COUCHDB_URL")
        yield url.rstrip("/")
        return
    started = time.monotonic()
    with testserver.start_server() as server:
        elapsed = time.monotonic() - started
        console.print(
            f"Started the local PouchDB test server on {server.base_url} ({elapsed:.1f} s)"
        )
        yield server.url


def http_client(server_url: str) -> httpx.Client:
    """A client with the URL's credentials moved into Basic auth, so that error messages,
    which quote the request URL, never show the password."""
    parts = urllib.parse.urlsplit(server_url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    auth = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        auth = httpx.BasicAuth(user, urllib.parse.unquote(parts.password or ""))
    return httpx.Client(base_url=parts._replace(netloc=netloc).geturl(), auth=auth, timeout=30)


def run(console: Console) -> None:
    with couchdb_server(console) as server_url, http_client(server_url) as http:
        welcome = http.get("/").raise_for_status().json()
        vendor = "CouchDB" if "couchdb" in welcome else "PouchDB Server"
        database = f"demo_{secrets.token_hex(4)}"
        http.put(f"/{database}").raise_for_status()
        try:
            docs = [{"type": "book", **book} for book in BOOKS]
            results = http.post(f"/{database}/_bulk_docs", json={"docs": docs})
            stored = [row for row in results.raise_for_status().json() if row.get("ok")]
            console.print(f"{vendor} {welcome.get('version')}: stored {len(stored)} books")

            index = {"index": {"fields": ["type", "year"]}, "name": "type-year"}
            http.post(f"/{database}/_index", json=index).raise_for_status()
            query = {
                "selector": {"type": "book", "year": {"$gte": 1950}},
                "sort": [{"type": "asc"}, {"year": "asc"}],
                "fields": ["title", "author", "year"],
                "limit": len(BOOKS),  # CouchDB would stop at 25 rows otherwise
            }
            found = http.post(f"/{database}/_find", json=query).raise_for_status().json()

            table = Table(title="Books since 1950 (_find, sorted by year)")
            table.add_column("year", justify="right")
            table.add_column("title")
            table.add_column("author")
            for book in found["docs"]:
                table.add_row(str(book["year"]), book["title"], book["author"])
            console.print(table)
        finally:
            http.delete(f"/{database}").raise_for_status()
            console.print(f"Deleted scratch database {database}")


def main() -> int:
    console = Console()
    try:
        run(console)
    except (httpx.HTTPError, testserver.TestServerError) as err:
        console.print(f"[red]demo failed:[/red] {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
