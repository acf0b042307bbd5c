"""How the commands print data: aligned tables, Markdown tables and JSON, in one place."""
from __future__ import annotations

import json
import unicodedata


def width(text: str) -> int:
    """The columns `text` takes in a terminal: East Asian wide and full-width characters take
    two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _pad(text: str, n: int, right: bool = False) -> str:
    fill = " " * max(0, n - width(text))
    return fill + text if right else text + fill


def table(head, rows, *, right=()) -> str:
    """An aligned text table: a header, a rule of dashes, the rows. `right`: the indices of the
    columns aligned to the right (numbers)."""
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(_pad(c, w, i in right) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def markdown_table(head, rows, *, title: str | None = None) -> str:
    """A Markdown table (| in cells escaped), under a `# title` when given."""
    out = [f"# {title}", ""] if title else []
    out += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def to_json(data, pretty: bool = False) -> str:
    return json.dumps(data, indent=1 if pretty else None, ensure_ascii=False)


def json_number(x):
    """An exact fraction for JSON: an int when it is one, else a float."""
    return x.numerator if x.denominator == 1 else float(x)
