"""SQL text -> plan -> Mango: the one translator, plus exact SQL evaluation on the client.

Pure code, no HTTP, no SQLAlchemy. :func:`compile_sql` parses a statement once (an LRU
cache keyed on the SQL string) into an immutable plan; ``bind`` turns one execution's
parameters (a mapping for ``:name``, a sequence for ``?``) into requests. A cached plan
never holds a value. The API the cursor uses::

    plan = compile_sql(sql)          # SelectPlan | InsertPlan | UpdatePlan | DeletePlan
                                     # | CreateTablePlan | DropTablePlan | CreateIndexPlan
                                     # | DropIndexPlan; each names its ``table``
    # SELECT
    bound = plan.bind(params, indexes, integer_id=False)
                                     # indexes: MangoIndex(fields, ddoc, name) that exist
    bound.requests                   # FindRequest(selector, fields, sort, use_index,
                                     #   skip, limit): page through each, in order
    run = bound.start()              # per-execution state
    run.columns                      # output names (None for SELECT * until finish())
    for i, request in enumerate(bound.requests):
        for docs in pages(request):  # skip on the first page; limit = request.limit or
            rows += run.feed(i, docs)  #   a page size (run.wanted() is a lower bound)
            if run.done: break       # LIMIT met: stop reading
        if run.done: break
    rows += run.finish()             # rows that had to wait (sort, aggregate, SELECT *)

    # INSERT
    plan.documents(params) / plan.documents_many(param_sets)
                                     # [{"_id", "type": table, column: value, …}]; an
                                     # absent id is a uuid4 hex, so results match by id
    plan.returning_columns; plan.returning_row(doc_with_its_new__rev)

    # UPDATE / DELETE
    bound = plan.bind(params, indexes)
    bound.requests                   # candidate documents (whole ones for UPDATE)
    bound.matches(doc)               # the exact WHERE, again after a 409 re-read
    bound.apply(doc) -> new doc      # UPDATE: every SET sees the old row
    bound.returning_row(doc)

Rows come from documents by :mod:`..mapping` (``id`` = ``_id``, ``rev`` = ``_rev``).
``SELECT *`` yields ``id``, ``rev`` and then the union of the matching documents' fields
in the order they first appear; because that set is only known after reading, the rows
of ``SELECT *`` are held until ``finish()`` (name the columns to stream).

Semantics are SQL's (ARCHITECTURE principle 3), with SQLite's rules where databases
differ: see :mod:`.collation` (order, equality, conversions), :mod:`.evaluate` (operators,
functions, aggregates), :mod:`.selector` (what is sent to ``_find`` and why it is always a
superset of the answer) and :mod:`.select` (ORDER BY with and without an index). What
cannot be answered exactly is refused by :mod:`.parse` with ``NotSupportedError``.
"""

from __future__ import annotations

from .ddl import ColumnSpec, CreateIndexPlan, CreateTablePlan, DropIndexPlan, DropTablePlan
from .find import FindRequest, MangoIndex
from .parse import Plan, compile_sql
from .select import BoundSelect, SelectPlan, SelectRun
from .write import BoundDelete, BoundUpdate, DeletePlan, InsertPlan, UpdatePlan

__all__ = [
    "BoundDelete",
    "BoundSelect",
    "BoundUpdate",
    "ColumnSpec",
    "CreateIndexPlan",
    "CreateTablePlan",
    "DeletePlan",
    "DropIndexPlan",
    "DropTablePlan",
    "FindRequest",
    "InsertPlan",
    "MangoIndex",
    "Plan",
    "SelectPlan",
    "SelectRun",
    "UpdatePlan",
    "compile_sql",
]
