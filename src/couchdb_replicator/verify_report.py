"""What ``verify`` found, per table and kind, and how it is shown (text or ``--json``).

The kinds of drift, each counted in the table the row is in (or belongs in):

* ``missing``: CouchDB has the document, its table has no row for it;
* ``extra``: a row CouchDB no longer has there — the document was deleted, lost its
  ``type``, moved to another type, or never existed;
* ``stale``: the row holds another revision than CouchDB's current one;
* ``drifted``: same revision, different values (someone wrote to the copy).

Dead letters (documents the copy cannot hold, see ``couchdb-replicator status``) are listed
apart: they are known and recorded, not drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DRIFT_KINDS", "EXIT_DRIFT", "TableReport", "VerifyReport"]

DRIFT_KINDS = ("missing", "extra", "stale", "drifted")
#: Exit status of ``verify`` when drift was found and not (all) repaired.
EXIT_DRIFT = 3


@dataclass
class TableReport:
    """One table's findings: counts per kind and the first ids of each."""

    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DRIFT_KINDS, 0))
    ids: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in DRIFT_KINDS})
    repaired: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DRIFT_KINDS, 0))
    dead_letters: int = 0
    dead_letter_ids: list[str] = field(default_factory=list)

    @property
    def drift(self) -> int:
        return sum(self.found.values())


@dataclass
class VerifyReport:
    """The outcome of one check; ``show`` ids of each kind are kept per table."""

    source: str
    target: str
    deep: bool = False
    repair: bool = False
    show: int = 10
    #: Live documents CouchDB listed (design documents excluded) and rows the copy holds.
    documents: int = 0
    rows: int = 0
    #: Documents that belong in no table: without ``type``, or of a type not copied.
    not_copied: int = 0
    tables: dict[str, TableReport] = field(default_factory=dict)
    #: Rows left as they are because the copy holds a later revision than CouchDB's.
    unrepaired: int = 0
    unrepaired_ids: list[str] = field(default_factory=list)
    #: Repairs dropped because CouchDB changed the document meanwhile (the replicator
    #: applies the change) or the copy now equals it.
    superseded: int = 0
    #: Ids seen out of id order (a server or collation that orders differently).
    disorder: int = 0
    seconds: float = 0.0

    def table(self, name: str) -> TableReport:
        found = self.tables.get(name)
        if found is None:
            found = self.tables[name] = TableReport()
        return found

    def add(self, table: str, kind: str, doc_id: str) -> None:
        report = self.table(table)
        report.found[kind] += 1
        if len(report.ids[kind]) < self.show:
            report.ids[kind].append(doc_id)

    def add_dead_letter(self, table: str, doc_id: str) -> None:
        report = self.table(table)
        report.dead_letters += 1
        if len(report.dead_letter_ids) < self.show:
            report.dead_letter_ids.append(doc_id)

    def add_repaired(self, table: str, kind: str) -> None:
        self.table(table).repaired[kind] += 1

    def add_unrepaired(self, doc_id: str) -> None:
        self.unrepaired += 1
        if len(self.unrepaired_ids) < self.show:
            self.unrepaired_ids.append(doc_id)

    # -- verdict ----------------------------------------------------------------------------

    @property
    def drift(self) -> int:
        """Rows found to differ from CouchDB (before any repair)."""
        return sum(t.drift for t in self.tables.values())

    @property
    def dead_letters(self) -> int:
        return sum(t.dead_letters for t in self.tables.values())

    def counts(self) -> dict[str, int]:
        return {k: sum(t.found[k] for t in self.tables.values()) for k in DRIFT_KINDS}

    def repaired_counts(self) -> dict[str, int]:
        return {k: sum(t.repaired[k] for t in self.tables.values()) for k in DRIFT_KINDS}

    @property
    def equal(self) -> bool:
        """No drift was found."""
        return self.drift == 0

    @property
    def ok(self) -> bool:
        """The copy equals CouchDB now: nothing found, or everything found repaired (or
        superseded by a newer change the replicator applies)."""
        if self.equal:
            return True
        return self.repair and self.unrepaired == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else EXIT_DRIFT

    # -- output -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "equal": self.equal,
            "ok": self.ok,
            "deep": self.deep,
            "repair": self.repair,
            "documents": self.documents,
            "rows": self.rows,
            "not_copied": self.not_copied,
            "drift": self.counts(),
            "dead_letters": self.dead_letters,
            "repaired": self.repaired_counts() if self.repair else None,
            "unrepaired": self.unrepaired,
            "unrepaired_ids": self.unrepaired_ids,
            "superseded": self.superseded,
            "disorder": self.disorder,
            "seconds": round(self.seconds, 3),
            "tables": {
                name: {
                    "drift": dict(t.found),
                    "ids": {k: list(v) for k, v in t.ids.items() if v},
                    "dead_letters": t.dead_letters,
                    "dead_letter_ids": list(t.dead_letter_ids),
                    **({"repaired": dict(t.repaired)} if self.repair else {}),
                }
                for name, t in sorted(self.tables.items())
            },
        }

    def lines(self) -> list[str]:
        """The text report, one line per item."""
        what = "ids, revisions and every row's values" if self.deep else "ids and revisions"
        out = [
            f"verify: {self.target} against {self.source}",
            f"checked {self.documents} documents and {self.rows} rows ({what}) "
            f"in {self.seconds:.1f} s",
        ]
        shown = {n: t for n, t in sorted(self.tables.items()) if t.drift or t.dead_letters}
        if shown:
            width = max(5, *(len(n) for n in shown))
            header = f"{'table':<{width}}  " + "  ".join(f"{k:>7}" for k in DRIFT_KINDS)
            out.append(header + "  dead letters")
            for name, t in shown.items():
                cells = "  ".join(f"{t.found[k]:>7}" for k in DRIFT_KINDS)
                out.append(f"{name:<{width}}  {cells}  {t.dead_letters:>12}")
            for name, t in shown.items():
                for kind in DRIFT_KINDS:
                    if t.ids[kind]:
                        more = t.found[kind] - len(t.ids[kind])
                        tail = f" (and {more} more)" if more > 0 else ""
                        out.append(f"  {name} {kind}: {', '.join(t.ids[kind])}{tail}")
                if t.dead_letter_ids:
                    out.append(f"  {name} dead letters: {', '.join(t.dead_letter_ids)}")
        if self.disorder:
            out.append(
                f"note: {self.disorder} ids came out of id order (the server or a collation "
                "orders ids differently); they were looked up one by one"
            )
        out.append(self._verdict())
        return out

    def _verdict(self) -> str:
        drift = self.drift
        if drift == 0:
            letters = f" ({self.dead_letters} dead letters)" if self.dead_letters else ""
            return f"equal: the copy matches CouchDB{letters}"
        tables = sum(1 for t in self.tables.values() if t.drift)
        found = ", ".join(f"{v} {k}" for k, v in self.counts().items() if v)
        summary = f"{drift} rows in {tables} table{'s' if tables != 1 else ''} ({found})"
        if not self.repair:
            return f"drift: {summary} differ from CouchDB; --repair makes the copy equal to CouchDB"
        repaired = sum(self.repaired_counts().values())
        text = f"repaired: {repaired} of {summary}"
        if self.superseded:
            text += f"; {self.superseded} changed in CouchDB meanwhile (left to the replicator)"
        if self.unrepaired:
            text += (
                f"; {self.unrepaired} left as they are: the copy holds a later revision "
                f"than CouchDB ({', '.join(self.unrepaired_ids)})"
            )
        return text
