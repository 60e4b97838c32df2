"""Byte counts as people write them (``500M``, ``2G``) and read them (``1.5 GB``); units are powers of 1024."""

from __future__ import annotations


def human_bytes(count: int) -> str:
    """Bytes in the largest unit that keeps the number at least 1 (units of 1024)."""
    if count < 1024:
        return f"{count} bytes"
    value = float(count)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TB"


def parse_bytes(text: str) -> int:
    """``500M``, ``2G``, ``1.5GB``, ``750k`` or a plain number of bytes (units are powers of 1024)."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    for unit, power in (("K", 1), ("M", 2), ("G", 3), ("T", 4)):
        if value.endswith(unit):
            value, factor = value[:-1], 1024**power
            break
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a size in bytes; write e.g. 500M, 2G or 1048576") from None
    if number < 0:
        raise ValueError(f"{text!r} is negative")
    return int(number * factor)
