"""``python -m couchdb_replicator`` is the ``couchdb-replicator`` command."""

from __future__ import annotations

from .cli import main

main(prog_name="couchdb-replicator")
