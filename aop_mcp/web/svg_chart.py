"""Tasks finished per second over the last minutes, as a small server-rendered SVG bar chart.

Bars are placed by their bucket's time, not their index, so a store that leaves empty buckets
out still draws them as gaps. Colours come from the stylesheet (`chart`, `bar`, `axis`,
`label`); the only paint here is neutral presentation attributes, which any CSS overrides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

_SVG_NS = "http://www.w3.org/2000/svg"
_LEFT, _RIGHT, _TOP, _BOTTOM = 44.0, 6.0, 8.0, 18.0  # room for the y and x labels
_SUBJECT = "tasks finished per second"


@dataclass(frozen=True)
class ThroughputBucket:
    """`count` tasks finished in the bucket that begins at `start` (epoch seconds)."""

    start: float
    count: int


@dataclass(frozen=True)
class _Frame:
    """The plot area in pixels and the time window it shows."""

    left: float
    right: float
    top: float
    baseline: float
    since: float
    now: float

    def x(self, when: float) -> float:
        return self.left + (when - self.since) / (self.now - self.since) * (self.right - self.left)


def throughput_svg(
    buckets: Sequence[ThroughputBucket] | Sequence[tuple[float, int]],
    *,
    bucket_seconds: float,
    now: float | None = None,
    window_seconds: float | None = None,
    width: int = 480,
    height: int = 120,
) -> str:
    """An `<svg class="chart">` of tasks finished per second, oldest bucket on the left.

    `buckets` are `(start, count)`: `count` tasks finished in `[start, start +
    bucket_seconds)`, start in epoch seconds, in any order; missing buckets count as zero and
    buckets sharing a start are added up. The chart shows `[now - window_seconds, now)`;
    `now` defaults to the end of the newest bucket and `window_seconds` to reach back to the
    oldest one. A bar's height is `count / bucket_seconds`, scaled so the peak fills the plot.
    """
    if bucket_seconds <= 0:
        raise ValueError(f"bucket_seconds must be more than 0, got {bucket_seconds!r}")
    counts = _counts(buckets)
    end = now if now is not None else max(counts, default=0.0) + bucket_seconds
    span = window_seconds if window_seconds is not None else end - min(counts, default=end)
    span = max(span, bucket_seconds)
    frame = _Frame(_LEFT, width - _RIGHT, _TOP, height - _BOTTOM, end - span, end)
    shown = {start: n for start, n in counts.items() if frame.since <= start < end}
    peak = max(shown.values(), default=0) / bucket_seconds
    parts = [_svg_open(width, height, _aria_label(span, peak))]
    parts += _axes(frame, span, peak)
    parts += (_bar(frame, start, n, bucket_seconds, peak) for start, n in sorted(shown.items()))
    parts.append("</svg>")
    return "\n".join(parts)


def _counts(buckets: Sequence[ThroughputBucket] | Sequence[tuple[float, int]]) -> dict[float, int]:
    counts: dict[float, int] = {}
    for bucket in buckets:
        start, count = (
            (bucket.start, bucket.count) if isinstance(bucket, ThroughputBucket) else bucket
        )
        counts[float(start)] = counts.get(float(start), 0) + count
    return counts


def _aria_label(span: float, peak: float) -> str:
    subject = f"{_SUBJECT} over the last {_duration_words(span)}"
    if peak <= 0:
        return f"{subject}: no tasks finished"
    return f"{subject}, peak {rate_label(peak)}"


def _svg_open(width: int, height: int, aria: str) -> str:
    return (
        f'<svg xmlns="{_SVG_NS}" class="chart" role="img" aria-label="{escape(aria)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'font-family="system-ui, sans-serif">'
    )


def _axes(frame: _Frame, span: float, peak: float) -> list[str]:
    low = frame.baseline + _BOTTOM - 5  # the x labels sit under the baseline
    parts = [
        f'<line class="axis" x1="{_num(frame.left)}" y1="{_num(frame.baseline)}" '
        f'x2="{_num(frame.right)}" y2="{_num(frame.baseline)}" stroke="currentColor"/>',
        _label("x-start", frame.left, low, "start", _ago(span)),
        _label("x-end", frame.right, low, "end", "now"),
    ]
    if peak <= 0:
        middle = (frame.left + frame.right) / 2
        parts.append(
            _label("empty", middle, (frame.top + frame.baseline) / 2, "middle", "no tasks finished")
        )
        return parts
    parts += [
        _label("y-max", frame.left - 4, frame.top + 8, "end", rate_label(peak)),
        _label("y-min", frame.left - 4, frame.baseline, "end", "0"),
    ]
    return parts


def _label(kind: str, x: float, y: float, anchor: str, text: str) -> str:
    return (
        f'<text class="label {kind}" x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" '
        f'font-size="10" fill="currentColor">{escape(text)}</text>'
    )


def _bar(frame: _Frame, start: float, count: int, bucket_seconds: float, peak: float) -> str:
    rate = count / bucket_seconds
    left, right = frame.x(start), min(frame.x(start + bucket_seconds), frame.right)
    gap = min(1.0, (right - left) / 5)  # bars stay apart, however thin
    bar_height = rate / peak * (frame.baseline - frame.top) if peak > 0 else 0.0
    title = (
        f"{_exact(rate)}/s: {count} finished from {_clock(start)} to "
        f"{_clock(start + bucket_seconds)} UTC ({_ago(frame.now - start)})"
    )
    return (
        f'<rect class="bar" x="{_num(left + gap / 2)}" y="{_num(frame.baseline - bar_height)}" '
        f'width="{_num(max(right - left - gap, 0.5))}" height="{_num(bar_height)}" '
        f'data-count="{count}" data-rate="{_exact(rate)}" fill="currentColor">'
        f"<title>{escape(title)}</title></rect>"
    )


def rate_label(rate: float) -> str:
    """A rate in a few characters: `12.5/s`, `0.33/s`, `240/s`."""
    if rate >= 100:
        text = f"{rate:.0f}"
    elif rate >= 10:
        text = f"{rate:.1f}"
    else:
        text = f"{rate:.2f}"
    return _trim(text) + "/s"


def _exact(rate: float) -> str:
    return _trim(f"{rate:.3f}")


def _clock(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%H:%M:%S")


def _ago(seconds: float) -> str:
    """`-10m`, `-1h30m`, `-45s`; `now` for no time at all."""
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "-" + "".join(parts) if parts else "now"


def _duration_words(seconds: float) -> str:
    """`10 minutes`, `2 hours`, `90 seconds`, or just `minute` for one (`the last minute`)."""
    whole = round(seconds)
    for size, unit in ((3600, "hour"), (60, "minute")):
        if whole >= size and whole % size == 0:
            return _plural(whole // size, unit)
    return _plural(whole, "second")


def _plural(number: int, unit: str) -> str:
    return unit if number == 1 else f"{number} {unit}s"


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _num(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    return _trim(f"{value:.2f}")
