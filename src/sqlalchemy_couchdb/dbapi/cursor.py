"""PEP 249 cursors, sync and async, over one shared statement stream.

A statement runs as a sans-IO generator (:mod:`.io`); :class:`Stream` steps through it,
and each cursor only sends the requests it asks for. Results are fetched page by page
as the caller reads, so a large SELECT keeps memory flat.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import InterfaceError, ProgrammingError
from .io import Header, Io
from .operations import Call

if TYPE_CHECKING:
    from .connection import AsyncConnection, Connection

__all__ = ["AsyncCursor", "Cursor", "Outcome"]

Description = tuple[tuple[str, Any, None, None, None, None, None], ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a finished statement reports: rows affected and the last written id."""

    rowcount: int = -1
    lastrowid: str | None = None
    wrote: bool = False


class Stream:
    """The running statement of a cursor: its generator, buffered rows, and result."""

    def __init__(self, gen: Io[Outcome]) -> None:
        self._gen = gen
        self.rows: deque[tuple[Any, ...]] = deque()
        self.columns: tuple[str, ...] | None = None
        self.outcome: Outcome | None = None
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def next_call(self) -> Call[Any] | None:
        """Advance to the next request to send; None once rows arrived or it finished."""
        value, error = self._value, self._error
        self._value = self._error = None
        while True:
            try:
                step = self._gen.throw(error) if error is not None else self._gen.send(value)
            except StopIteration as stop:
                self.outcome = stop.value or Outcome()
                return None
            value = error = None
            if isinstance(step, Call):
                return step
            if isinstance(step, Header):
                self.columns = step.columns
                continue
            self.rows.extend(step.rows)
            return None

    def resolve(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value, self._error = value, error

    def close(self) -> None:
        self._gen.close()


class _CursorState:
    """State and PEP 249 attributes shared by the sync and async cursors."""

    arraysize: int = 1

    def __init__(self) -> None:
        self._stream: Stream | None = None
        self._closed = False
        self.rowcount = -1
        self.lastrowid: str | None = None

    @property
    def description(self) -> Description | None:
        stream = self._stream
        if stream is None or stream.columns is None:
            return None
        return tuple((name, None, None, None, None, None, None) for name in stream.columns)

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("the cursor is closed")

    def _begin(self, gen: Io[Outcome]) -> Stream:
        self._check_open()
        self._end()
        self.rowcount = -1
        self.lastrowid = None
        self._stream = Stream(gen)
        return self._stream

    def _finished(self, stream: Stream) -> None:
        outcome = stream.outcome
        if outcome is not None:
            self.rowcount = outcome.rowcount
            self.lastrowid = outcome.lastrowid

    def _end(self) -> None:
        if self._stream is not None and not self._stream.done:
            self._stream.close()

    def _result_stream(self) -> Stream:
        self._check_open()
        if self._stream is None or (self._stream.columns is None and self._stream.done):
            raise ProgrammingError("no result set: the last statement returned no rows")
        return self._stream

    def _take(self, stream: Stream, size: int | None) -> list[tuple[Any, ...]]:
        rows = stream.rows
        if size is None or size >= len(rows):
            taken = list(rows)
            rows.clear()
            return taken
        return [rows.popleft() for _ in range(size)]


class Cursor(_CursorState):
    """A PEP 249 cursor. Writes are durable when ``execute`` returns (autocommit)."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection

    def _pump(self, stream: Stream) -> None:
        """Send requests until rows arrive or the statement finishes."""
        client = self.connection.client
        while (call := stream.next_call()) is not None:
            try:
                stream.resolve(client.run(call))
            except Exception as exc:
                stream.resolve(error=exc)
        self._finished(stream)

    def _run(self, gen: Io[Outcome]) -> Cursor:
        stream = self._begin(gen)
        try:
            self._pump(stream)
        except BaseException:
            self._stream = None  # a failed statement leaves no result to fetch
            raise
        if stream.outcome is not None and stream.outcome.wrote:
            self.connection._wrote()
        return self

    def execute(
        self, operation: str, parameters: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> Cursor:
        return self._run(self.connection._statement(operation, [parameters]))

    def executemany(
        self, operation: str, seq_of_parameters: Sequence[Mapping[str, Any] | Sequence[Any]]
    ) -> Cursor:
        return self._run(self.connection._statement(operation, list(seq_of_parameters)))

    def _fill(self, stream: Stream, size: int | None) -> None:
        while not stream.done and (size is None or len(stream.rows) < size):
            self._pump(stream)

    def fetchone(self) -> tuple[Any, ...] | None:
        stream = self._result_stream()
        self._fill(stream, 1)
        return stream.rows.popleft() if stream.rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        stream = self._result_stream()
        wanted = self.arraysize if size is None else size
        self._fill(stream, wanted)
        return self._take(stream, wanted)

    def fetchall(self) -> list[tuple[Any, ...]]:
        stream = self._result_stream()
        self._fill(stream, None)
        return self._take(stream, None)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        self._end()
        self._closed = True

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCursor(_CursorState):
    """The asyncio cursor: the same statements, sent with ``httpx.AsyncClient``."""

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__()
        self.connection = connection

    async def _pump(self, stream: Stream) -> None:
        client = self.connection.client
        while (call := stream.next_call()) is not None:
            try:
                stream.resolve(await client.run(call))
            except Exception as exc:
                stream.resolve(error=exc)
        self._finished(stream)

    async def _run(self, gen: Io[Outcome]) -> AsyncCursor:
        stream = self._begin(gen)
        try:
            await self._pump(stream)
        except BaseException:
            self._stream = None  # a failed statement leaves no result to fetch
            raise
        if stream.outcome is not None and stream.outcome.wrote:
            self.connection._wrote()
        return self

    async def execute(
        self, operation: str, parameters: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> AsyncCursor:
        return await self._run(self.connection._statement(operation, [parameters]))

    async def executemany(
        self, operation: str, seq_of_parameters: Sequence[Mapping[str, Any] | Sequence[Any]]
    ) -> AsyncCursor:
        return await self._run(self.connection._statement(operation, list(seq_of_parameters)))

    async def _fill(self, stream: Stream, size: int | None) -> None:
        while not stream.done and (size is None or len(stream.rows) < size):
            await self._pump(stream)

    async def fetchone(self) -> tuple[Any, ...] | None:
        stream = self._result_stream()
        await self._fill(stream, 1)
        return stream.rows.popleft() if stream.rows else None

    async def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        stream = self._result_stream()
        wanted = self.arraysize if size is None else size
        await self._fill(stream, wanted)
        return self._take(stream, wanted)

    async def fetchall(self) -> list[tuple[Any, ...]]:
        stream = self._result_stream()
        await self._fill(stream, None)
        return self._take(stream, None)

    async def close(self) -> None:
        self._end()
        self._closed = True

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
