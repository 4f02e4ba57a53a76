"""Full-jitter backoff: bounded, growing, capped, reset after success."""

from __future__ import annotations

import random

import pytest

from couchdb_replicator.backoff import Backoff


def test_delays_stay_under_the_doubling_bound_and_the_cap() -> None:
    backoff = Backoff(0.5, 8.0, rng=random.Random(7))
    for attempt in range(40):
        delay = backoff.next_delay()
        assert 0.0 <= delay <= min(8.0, 0.5 * 2**attempt)
    assert backoff.attempt == 40


def test_full_jitter_spreads_the_delays() -> None:
    rng = random.Random(1)
    delays = []
    for _ in range(200):
        b = Backoff(1.0, 30.0, rng=rng)
        for _ in range(5):
            delay = b.next_delay()
        delays.append(delay)
    # uniform(0, 16): both small and large waits occur, the mean near 8.
    assert min(delays) < 2 and max(delays) > 14
    assert 6 < sum(delays) / len(delays) < 10


def test_reset_starts_over() -> None:
    b = Backoff(1.0, 30.0, rng=random.Random(3))
    for _ in range(10):
        b.next_delay()
    b.reset()
    assert b.attempt == 0
    assert b.next_delay() <= 1.0


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)
