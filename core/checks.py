"""Range checks for user-supplied numbers: finite, the right type, inside the documented range."""

from __future__ import annotations

import math

__all__ = ["check_number"]


def check_number(
    name: str,
    value: object,
    *,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    meaning: str = "",
) -> float:
    """``value`` as a float when it is a finite real number inside the range, else a ValueError
    that names ``name``, the range (``[low, high]``, ``(`` / ``)`` for open ends) and what came."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    span = f"{left}{low:g}, {high:g}{right}"
    what = f" ({meaning})" if meaning else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in {span}{what}, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise ValueError(f"{name} must be a finite number in {span}{what}, got a number too large for one") from None
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if not math.isfinite(number) or below or above:
        shown = repr(value) if type(value) in (int, float) else repr(number)  # every digit the user gave
        raise ValueError(f"{name} must be a finite number in {span}{what}, got {shown}")
    return number
