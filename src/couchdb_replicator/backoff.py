"""Capped full-jitter backoff for reconnecting to CouchDB and retrying the target.

Full jitter (``uniform(0, min(cap, base * 2**n))``) keeps many replicators that lost the
same server from reconnecting in lockstep; the delay math is the driver's
:class:`~sqlalchemy_couchdb.dbapi.retry.RetryPolicy`, so there is one definition of it.
"""

from __future__ import annotations

import random

from sqlalchemy_couchdb.dbapi.retry import RetryPolicy

__all__ = ["RETRY_CAP", "Backoff"]

#: The longest wait between attempts to reach CouchDB or the target: short enough that
#: the daemon notices a recovered server within seconds, long enough not to hammer it.
RETRY_CAP = 10.0


class Backoff:
    """Successive delays for one failing operation; :meth:`reset` after a success."""

    def __init__(
        self, base: float = 0.5, cap: float = 30.0, *, rng: random.Random | None = None
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self._policy = RetryPolicy(retries=0, base=base, cap=cap)
        self._rng = rng
        self.attempt = 0

    @property
    def cap(self) -> float:
        return self._policy.cap

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        # Past ~30 doublings the bound is the cap anyway; keep 2**n from growing huge.
        delay = self._policy.delay(min(self.attempt, 30), self._rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
