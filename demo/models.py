"""The demo's schema: one SQLAlchemy model set for both stores (CouchDB and the copy)."""

from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"

    id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    rev: Mapped[str | None] = mapped_column(sa.String)
    name: Mapped[str] = mapped_column(sa.String(80))
    country: Mapped[str | None] = mapped_column(sa.String(40), index=True)


class Book(Base):
    __tablename__ = "book"

    # CouchDB generates the id: FetchedValue() + RETURNING gives it back to the ORM.
    id: Mapped[str] = mapped_column(sa.String, primary_key=True, server_default=sa.FetchedValue())
    rev: Mapped[str | None] = mapped_column(sa.String)
    title: Mapped[str] = mapped_column(sa.String(120))
    author_id: Mapped[str] = mapped_column(sa.String, index=True)
    year: Mapped[int] = mapped_column(sa.Integer, index=True)
    price: Mapped[decimal.Decimal | None] = mapped_column(sa.Numeric(8, 2))
    added: Mapped[dt.date | None] = mapped_column(sa.Date)


metadata = Base.metadata
