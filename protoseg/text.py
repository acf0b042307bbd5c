"""Small text helpers every stage shares: how a shape is written, and "did you mean"."""
from __future__ import annotations

import difflib
import re


def fmt_shape(shape) -> str:
    """(1, 3, 8, 8) -> '(1, 3, 8, 8)': the form messages use."""
    return "(" + ", ".join(str(d) for d in shape) + ")"


def dims(shape) -> str:
    """(1, 3, 8, 8) -> '1x3x8x8', () -> 'scalar': the form tables and code comments use."""
    return "x".join(str(d) for d in shape) if len(shape) else "scalar"


def did_you_mean(word: str, choices, n: int = 2, cutoff: float = 0.6) -> str | None:
    """A hint naming the choices closest to `word` ("did you mean 'a' or 'b'?"), or None."""
    if len(str(word)) > 100:        # no name is this long, and difflib would take its time
        return None
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=cutoff)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def plural(n: int, word: str) -> str:
    """plural(1, 'blob') -> '1 blob', plural(2, 'blob') -> '2 blobs'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def si(n: int) -> str:
    """A count with an SI prefix: 86704128 -> '86.70 M', 15470264320 -> '15.47 G', 512 -> '512'."""
    for unit, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def parse_bytes(text: str) -> int:
    """'64G', '512M', '1.5GiB', '1000000' -> bytes (K, M, G, T: powers of 1024). ValueError."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.I)
    if not m:
        raise ValueError(f"{text!r} is not a size: give bytes, or a number with K, M, G or T")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


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
