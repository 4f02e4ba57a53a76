"""When to retry a CouchDB request, and how long to wait: capped full-jitter backoff.

Only idempotent requests are retried (GET, HEAD, PUT with a body that names its revision,
DELETE with a rev, and POSTs that only read such as ``_find``, ``_all_docs`` and
``_explain``), and only on failures that say nothing reached the database: connect
errors, 429 and 502/503/504. A POST that creates a document is never retried: CouchDB
might have stored it before the connection dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RETRYABLE_STATUS", "RetryPolicy"]

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` attempts after the first, waiting ``uniform(0, min(cap, base * 2**n))``."""

    retries: int = 3
    base: float = 0.1
    cap: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based); full jitter."""
        # 2.0**1024 raises OverflowError; a product that overflows is inf, and min() caps it.
        bound = min(self.cap, self.base * 2.0 ** min(attempt, 1023))
        return (rng or random).uniform(0.0, bound)

    def should_retry_status(self, status: int, attempt: int, idempotent: bool) -> bool:
        return idempotent and attempt < self.retries and status in RETRYABLE_STATUS

    def should_retry_connect(self, attempt: int, idempotent: bool) -> bool:
        return idempotent and attempt < self.retries
