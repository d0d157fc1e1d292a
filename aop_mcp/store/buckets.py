"""The time buckets of `Store.task_throughput`, shared so that every store counts alike.

Bucket i holds the times in [since + i * bucket_seconds, since + (i + 1) * bucket_seconds),
and the last bucket is cut short at `until`. A time's bucket is the truncated quotient
`int((t - since) / bucket_seconds)`, which is exactly what SQLite's CAST(... AS INTEGER)
computes from the same doubles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from aop_mcp.errors import InvalidQuery

#: More buckets than a chart has pixels is a caller's mistake (or a bucket of 0.001 s).
MAX_BUCKETS = 10_000


def bucket_count(since: float, until: float, bucket_seconds: float) -> int:
    """How many buckets cover [since, until) (0 when it is empty); raises InvalidQuery."""
    if not (math.isfinite(bucket_seconds) and bucket_seconds > 0):
        raise InvalidQuery("bucket_seconds", bucket_seconds, "must be a positive number")
    for field, value in (("since", since), ("until", until)):
        if not math.isfinite(value):
            raise InvalidQuery(field, value, "must be a time in seconds since the epoch")
    if until <= since:
        return 0
    quotient = (until - since) / bucket_seconds
    # time.time() + 600 minus time.time() is not exactly 600: 10 s buckets must still be 60.
    nearest = round(quotient)
    count = nearest if math.isclose(quotient, nearest, rel_tol=1e-9) else math.ceil(quotient)
    if count > MAX_BUCKETS:
        raise InvalidQuery(
            "bucket_seconds",
            bucket_seconds,
            f"makes {count} buckets of [since, until), more than {MAX_BUCKETS}; "
            "ask for wider buckets or a shorter window",
        )
    return count


def bucket_of(at: float, since: float, bucket_seconds: float) -> int:
    """The bucket index of a time at or after `since` (before the clamp of `dense`)."""
    return int((at - since) / bucket_seconds)


def dense(counted: Iterable[tuple[int, int]], count: int) -> list[int]:
    """Per-bucket totals, zeros included, from (bucket index, how many) pairs.

    A time just under `until` can round into bucket `count`; it belongs to the last one.
    """
    totals = [0] * count
    for bucket, how_many in counted:
        totals[min(bucket, count - 1)] += how_many
    return totals
