"""Sans-IO plumbing: statement execution is written once, as generators of requests.

An execution step is a generator that yields :class:`~.operations.Call` objects and
receives their results (or has the client's exception thrown into it), and may yield
:class:`Rows` to hand result rows to the cursor as soon as a page arrives. The sync
cursor drives it with :meth:`CouchDBClient.run`, the async one with ``await``; so the
two DB-APIs cannot drift apart, and no greenlet is needed outside SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from .async_client import AsyncCouchDBClient
from .client import CouchDBClient
from .operations import Call

__all__ = ["Header", "Io", "Rows", "drive", "drive_async"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows ready for the caller (a page of a streamed result)."""

    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Header:
    """The result's column names, yielded once before the first :class:`Rows`."""

    columns: tuple[str, ...]


Io = Generator[Call[Any] | Rows | Header, Any, T]


def drive(gen: Io[T], client: CouchDBClient) -> T:
    """Run a generator to completion with the sync client; rows yielded are ignored."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = gen.throw(error) if error is not None else gen.send(value)
        except StopIteration as stop:
            return stop.value
        value = error = None
        if isinstance(step, Call):
            try:
                value = client.run(step)
            except Exception as exc:
                error = exc


async def drive_async(gen: Io[T], client: AsyncCouchDBClient) -> T:
    """Run a generator to completion with the async client; rows yielded are ignored."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = gen.throw(error) if error is not None else gen.send(value)
        except StopIteration as stop:
            return stop.value
        value = error = None
        if isinstance(step, Call):
            try:
                value = await client.run(step)
            except Exception as exc:
                error = exc
