"""``python -m bench``: see :mod:`bench.harness`."""

from __future__ import annotations

from .harness import main

raise SystemExit(main())
