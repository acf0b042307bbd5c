"""Small text helpers every stage shares: how a shape is written, and "did you mean"."""
from __future__ import annotations

import difflib


def fmt_shape(shape) -> str:
    """(1, 3, 8, 8) -> '(1, 3, 8, 8)': the form messages use."""
    return "(" + ", ".join(str(d) for d in shape) + ")"


def dims(shape) -> str:
    """(1, 3, 8, 8) -> '1x3x8x8', () -> 'scalar': the form tables and code comments use."""
    return "x".join(str(d) for d in shape) if len(shape) else "scalar"


def did_you_mean(word: str, choices, n: int = 2, cutoff: float = 0.6) -> str | None:
    """A hint naming the choices closest to `word` ("did you mean 'a' or 'b'?"), or None."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=cutoff)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def plural(n: int, word: str) -> str:
    """plural(1, 'blob') -> '1 blob', plural(2, 'blob') -> '2 blobs'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def fmt_number(x) -> str:
    """An exact fraction as text: 5, 2.5, 0.71875, or 1/3 where no short decimal is exact."""
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    text = f"{float(x):.12g}"
    return text if d == 1 and len(text) <= 10 else f"{x.numerator}/{x.denominator}"
