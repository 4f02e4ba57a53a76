"""SQL text -> plan -> Mango: the one translator, plus exact SQL evaluation on the client.

Pure code, no HTTP. :func:`compile_sql` parses a statement once (cached per SQL string)
into an immutable plan; the cursor binds parameters per execution and sends the
requests the bound plan names.

The API the cursor uses::

    plan = compile_sql(sql)                      # SelectPlan | InsertPlan | UpdatePlan
                                                 # | DeletePlan | CreateTablePlan | …
    plan.table                                   # the document ``type`` it reads/writes
    plan.parameters                              # names (``:name``) or ``?`` count

    # SELECT
    bound = plan.bind(params, indexes)           # params: mapping (named) or sequence (?)
                                                 # indexes: MangoIndex(fields, ddoc, name)
    bound.requests                               # FindRequest(selector, fields, sort,
                                                 #   use_index, skip, limit), run in order
    run = bound.start()
    run.columns                                  # output names; None for SELECT * until
                                                 #   finish() (union of document fields)
    for i, request in enumerate(bound.requests):
        for page in pages(request, run.wanted()):  # request.body(limit=…, bookmark=…)
            rows += run.feed(i, page)              # rows ready now (streaming)
            if run.done: break                     # LIMIT met: stop reading
        if run.done: break
    rows += run.finish()                         # rows that waited (sort, aggregate, *)

    # INSERT
    plan.documents(params) / plan.documents_many(param_sets)  # {"_id", "type", fields…}
    plan.returning_columns; plan.returning_row(doc_with_new_rev)

    # UPDATE / DELETE
    bound = plan.bind(params, indexes)
    bound.requests                               # candidate documents (a superset)
    bound.matches(doc)                           # the exact WHERE (again after a 409)
    bound.apply(doc) -> new_doc                  # UPDATE: SET over the old row
    bound.returning_row(doc)

    # DDL: CreateTablePlan, DropTablePlan, CreateIndexPlan, DropIndexPlan (data only)

Semantics are SQL's (ARCHITECTURE principle 3), with SQLite's rules where databases
differ; see :mod:`.collation` for the order and conversions and :mod:`.selector` for
what is sent to the server and why it is always a superset of the answer.
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
