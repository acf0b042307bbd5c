"""viewer: a net as one self-contained HTML page, a Netscope for today (`protoseg draw -o net.html`).

The page holds everything it shows and fetches nothing: Graphviz's layout of the drawing
(protoseg.draw) inlined as SVG, the net's data as JSON in a `<script type="application/json">`,
and a small script and style sheet of our own (viewer.js, viewer.css beside this file, no
library). The script pans and zooms the SVG (drag, wheel, buttons), finds layers by name (a
folded in-place layer finds the node it is folded into), and shows, for a clicked node, each of
its layers in file order: type, line, parameters, bottom and top shapes, cost (protoseg.analysis
`costs`), the coordinate map of each top (stride, offset, receptive field per input and axis,
`coord_maps`) and the shape arithmetic. A table lists every layer with its cost, sortable, as
Netscope's analyzer did. Imports no torch.

Names reach the page only as JSON text, with `<`, `>` and `&` written as \\u escapes (a layer
named `</script>` cannot close the data block), and as Graphviz's own XML-escaped SVG text; the
script puts them into the page with textContent, never as markup.
"""
from __future__ import annotations

import html
import json
import os
import re

from ..analysis import coord_maps, costs
from ..analysis.coords import axis_name
from ..draw import Drawing, dot_source, drawing, render
from ..schema import msg_text
from ..shapes import Shapes
from ..text import fmt_number, human_bytes, si

__all__ = ["page", "page_data"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def _asset(name: str) -> str:
    with open(os.path.join(_HERE, name), encoding="utf-8") as f:
        return f.read()


def page_data(shapes: Shapes, d: Drawing | None = None) -> dict:
    """What the page shows, as JSON-ready data: the net's totals and, per drawing node id, its
    layers (or the output blob it stands for). `d`: the net's drawing, when already made."""
    if not isinstance(shapes, Shapes):
        raise TypeError(f"page_data takes the Shapes of a net (from infer_shapes), not "
                        f"{type(shapes).__name__}")
    if d is not None and not isinstance(d, Drawing):
        raise TypeError(f"page_data's d is the net's Drawing, not {type(d).__name__}")
    d = drawing(shapes) if d is None else d
    total, maps = costs(shapes), coord_maps(shapes)
    cost_of = {id(ls): c for ls, c in zip(shapes.layers, total.layers)}
    misaligned = {id(m.layer) for m in maps.misaligned}

    def layer(ls) -> dict:
        l, c = ls.layer, cost_of[id(ls)]
        return {
            "name": l.name, "type": l.type, "line": l.span.line if l.span else None,
            "params": [f"{k} {{ {msg_text(m)} }}" for k, m in l.settings.items()],
            "bottoms": [[b, list(s)] for b, s in zip(l.bottoms, ls.bottoms)],
            "tops": [[t, list(s), _maps(maps.of(v), len(s))]
                     for t, v, s in zip(l.tops, l.top_values, ls.tops)],
            "cost": {"params": c.params, "macs": c.macs, "activation_bytes": c.activation_bytes,
                     "text": ["?" if c.params is None else f"{c.params:,}",
                              "?" if c.macs is None else si(c.macs),
                              human_bytes(c.activation_bytes)]},
            "misaligned": id(l) in misaligned,
            "arithmetic": list(ls.notes),
        }

    nodes = {}
    for n in d.nodes:
        if n.blob is not None:
            nodes[n.id] = {"blob": n.blob, "shape": list(n.shape)}
        else:
            nodes[n.id] = {"layers": [layer(ls) for ls in n.layers]}
    return {"name": d.name, "layers": len(shapes.layers), "folded": d.folded, "nodes": nodes,
            "totals": {"params": total.params, "macs": total.macs,
                       "activation_bytes": total.activation_bytes, "unknown": total.unknown,
                       "text": [f"{total.params:,}", si(total.macs),
                                human_bytes(total.activation_bytes)]}}


def _maps(per_input: dict, ndim: int) -> dict:
    """{input: {axis name: [stride, offset, rf]}}, exact numbers as text."""
    return {name: {axis_name(a, ndim): [fmt_number(m.stride), fmt_number(m.offset), fmt_number(m.rf)]
                   for a, m in axes.items()}
            for name, axes in per_input.items()}


def _json_in_html(data) -> str:
    """JSON that an HTML `<script>` element holds as it is: no `<`, `>` or `&` in it (so no
    `</script>` or `<!--`), and U+2028/2029 escaped too."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for c in "<>&\u2028\u2029":
        text = text.replace(c, f"\\u{ord(c):04x}")
    return text


def _inline_svg(svg: str) -> str:
    """Graphviz's SVG document as an element of the page: the XML prologue dropped, the fixed
    size replaced by the viewer's (the viewBox is what pans and zooms)."""
    start = svg.index("<svg")
    head_end = svg.index(">", start)
    head = re.sub(r'\s(width|height)="[^"]*"', "", svg[start:head_end])
    return head + ' id="ps-svg"' + svg[head_end:]


def page(shapes: Shapes, rankdir: str = "TB") -> str:
    """The HTML page of a net with its inferred shapes (from protoseg.infer_shapes), laid out by
    Graphviz's `dot` (a ToolError saying how to install it when missing)."""
    if not isinstance(shapes, Shapes):
        raise TypeError(f"page takes the Shapes of a net (from infer_shapes), not "
                        f"{type(shapes).__name__}")
    d = drawing(shapes)
    svg = render(dot_source(d, rankdir), "svg").decode("utf-8")
    return _asset("viewer.html").format(
        title=html.escape(d.name), style=_asset("viewer.css"), svg=_inline_svg(svg),
        data=_json_in_html(page_data(shapes, d)), script=_asset("viewer.js"))
