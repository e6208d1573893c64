"""Durations written as Go's ``time.Duration.String`` writes them (``1h2m3.5s``, ``1.5ms``).

Kube's messages and its protobuf Duration fields carry this text, so the API server and the
kubelet both produce it.
"""

from __future__ import annotations


def go_duration(nanos: int) -> str:
    """Go's ``time.Duration.String``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if nanos == 0:
        return "0s"
    sign, value = ("-" if nanos < 0 else ""), abs(nanos)
    if value < 1_000_000_000:
        unit, digits = ("ns", 0) if value < 1_000 else ("µs", 3) if value < 1_000_000 else ("ms", 6)
        return f"{sign}{_fraction(value, digits)}{unit}"
    whole, rest = divmod(value, 1_000_000_000)
    text = f"{_fraction(whole % 60 * 1_000_000_000 + rest, 9)}s"
    minutes = whole // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _fraction(value: int, digits: int) -> str:
    """``value / 10**digits`` without trailing zeros (and without a point for whole numbers)."""
    whole, rest = divmod(value, 10**digits)
    decimals = f"{rest:0{digits}d}".rstrip("0") if digits else ""
    return f"{whole}.{decimals}" if decimals else str(whole)
