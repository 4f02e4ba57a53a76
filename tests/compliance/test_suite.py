"""SQLAlchemy's dialect compliance suite for couchdb:// (run it as conftest.py says).

What the dialect cannot do is closed in ``sqlalchemy_couchdb.requirements`` with the
reason. Below: whole classes that no requirement gates but that test only what CouchDB
cannot do (they are deleted), and single tests skipped with the reason, in subclasses
of the same name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.testing import config, skip
from sqlalchemy.testing.suite import *  # noqa: F403
from sqlalchemy.testing.suite import ComponentReflectionTest as _ComponentReflectionTest
from sqlalchemy.testing.suite import DifficultParametersTest as _DifficultParametersTest
from sqlalchemy.testing.suite import FetchLimitOffsetTest as _FetchLimitOffsetTest
from sqlalchemy.testing.suite import FutureTableDDLTest as _FutureTableDDLTest
from sqlalchemy.testing.suite import HasTableTest as _HasTableTest
from sqlalchemy.testing.suite import InsertBehaviorTest as _InsertBehaviorTest
from sqlalchemy.testing.suite import RowFetchTest as _RowFetchTest
from sqlalchemy.testing.suite import ServerSideCursorsTest as _ServerSideCursorsTest
from sqlalchemy.testing.suite import TableDDLTest as _TableDDLTest

# A Mango query reads one table: JOIN, UNION/INTERSECT/EXCEPT and EXISTS (a subquery)
# are refused with NotSupportedError, and these classes test nothing else.
del JoinTest  # noqa: F821
del CompoundSelectTest  # noqa: F821
del ExistsTest  # noqa: F821
globals().pop("DeprecatedCompoundSelectTest", None)  # SQLAlchemy 2.0's legacy UNION tests
# DISTINCT ON is PostgreSQL's; COLLATE names server collations CouchDB does not have.
del DistinctOnTest  # noqa: F821
del CollateTest  # noqa: F821

_AUTOINCREMENT = "needs an autoincrement INTEGER id: CouchDB cannot number rows"
_SUBQUERY = "uses a subquery: a Mango query reads one table"
_UNDERSCORE = "CouchDB reserves top-level fields (and ids) that start with '_'"
_UNIQUE = (
    "expects a UNIQUE index reflected as unique: CouchDB does not enforce uniqueness, so "
    "the index is created for queries only and reflected as unique=False"
)


class HasTableTest(_HasTableTest):
    @classmethod
    def define_views(cls, metadata: Any) -> None:
        # SQLAlchemy 2.1 defines the views when ``testing.requires.view_reflection`` is
        # true as an object, which it always is; the view tests themselves are gated by
        # the (closed) requirement. CouchDB has no views (CREATE VIEW is refused).
        pass


class InsertBehaviorTest(_InsertBehaviorTest):
    @skip("couchdb", _AUTOINCREMENT)
    def test_no_results_for_non_returning_insert(self) -> None:
        pass

    @skip("couchdb", _AUTOINCREMENT)
    def test_autoclose_on_insert_implicit_returning(self) -> None:
        pass

    @skip("couchdb", _AUTOINCREMENT + " (INSERT DEFAULT VALUES itself works)")
    def test_empty_insert(self) -> None:
        pass

    @skip("couchdb", _AUTOINCREMENT + " (INSERT DEFAULT VALUES itself works)")
    def test_empty_insert_multiple(self) -> None:
        pass


class ServerSideCursorsTest(_ServerSideCursorsTest):
    def _is_server_side(self, cursor: Any) -> bool:
        # The suite knows server-side cursors of named drivers only. The async adapter's
        # cursors say what they are; the sync driver's cursors all read page by page, so
        # there is no separate kind to tell apart.
        if not hasattr(cursor, "server_side"):
            config.skip_test("the sync driver's cursors all stream; none is 'server side'")
        return bool(cursor.server_side)

    def stringify(self, str_: str) -> str:
        if "FOR UPDATE" in str_.upper():
            config.skip_test("SELECT … FOR UPDATE is refused: CouchDB has no row locks")
        return str(super().stringify(str_))

    @skip("couchdb", _SUBQUERY)
    def test_aliases_and_ss(self) -> None:
        pass

    @skip("couchdb", _AUTOINCREMENT)
    def test_roundtrip_fetchall(self) -> None:
        pass

    @skip("couchdb", _AUTOINCREMENT)
    def test_roundtrip_fetchmany(self) -> None:
        pass


class DifficultParametersTest(_DifficultParametersTest):
    @_DifficultParametersTest.tough_parameters
    @config.requirements.unusual_column_name_characters
    def test_round_trip_same_named_column(
        self, paramname: str, connection: Any, metadata: Any
    ) -> None:
        if paramname.startswith("_"):
            config.skip_test(_UNDERSCORE)
        super().test_round_trip_same_named_column(paramname, connection, metadata)


class RowFetchTest(_RowFetchTest):
    @skip("couchdb", _SUBQUERY)
    def test_row_w_scalar_select(self) -> None:
        pass


class FetchLimitOffsetTest(_FetchLimitOffsetTest):
    @skip("couchdb", "uses UNION and scalar subqueries")
    def test_limit_render_multiple_times(self) -> None:
        pass


class TableDDLTest(_TableDDLTest):
    @skip("couchdb", _UNDERSCORE)
    def test_underscore_names(self) -> None:
        pass


class FutureTableDDLTest(_FutureTableDDLTest):
    @skip("couchdb", _UNDERSCORE)
    def test_underscore_names(self) -> None:
        pass


try:
    from sqlalchemy.testing.suite import TableViaSelectTest as _TableViaSelectTest
except ImportError:  # SQLAlchemy 2.0: no CREATE TABLE … AS tests
    pass
else:

    class TableViaSelectTest(_TableViaSelectTest):  # type: ignore[no-redef]
        # Its "plain" CREATE TABLE AS cases are not gated by the create_table_as requirement.
        @skip("couchdb", "CREATE TABLE … AS SELECT reads other rows: refused")
        def test_without_metadata(self) -> None:
            pass


class ComponentReflectionTest(_ComponentReflectionTest):
    @skip("couchdb", "not gated by the views requirement in SQLAlchemy 2.1: CouchDB has no views")
    def test_get_view_names(self) -> None:
        pass

    @skip("couchdb", _UNIQUE)
    def test_get_indexes(self) -> None:
        pass

    @skip("couchdb", _UNIQUE)
    def test_get_multi_indexes(self) -> None:
        pass
