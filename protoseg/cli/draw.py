"""`protoseg draw`: a drawing of the net (layers as nodes, blobs as edges labelled with their
shapes) as DOT, or as SVG, PNG or PDF through Graphviz's `dot`, or as an HTML page to explore it
(protoseg.viewer). Imports no torch."""
from __future__ import annotations

import os

from ..draw import FORMATS, RANKDIRS
from ..errors import ProtosegError
from ..files import Outputs
from .options import add_net_options, load_shapes


def register(sub):
    p = sub.add_parser("draw", help="draw the net: layers, and blobs with their shapes",
                       description="Draw the net: one node per layer (in-place layers folded into "
                                   "the layer whose top they rewrite), one edge per blob read, "
                                   "labelled with the blob's name and shape; colours by layer "
                                   "family. DOT needs nothing installed; SVG, PNG and PDF run "
                                   "Graphviz's `dot`, and so does HTML: one self-contained page "
                                   "that pans, zooms, finds layers and shows each layer's "
                                   "parameters, shapes, cost and receptive field.")
    add_net_options(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="FILE.dot, .svg, .png, .pdf or .html (default: DOT on stdout)")
    p.add_argument("--rankdir", choices=RANKDIRS, default="TB", type=str.upper,
                   help="the direction the net flows: top to bottom (default), left to right, ...")
    return p


def run(args) -> int:
    from ..draw import dot_source, drawing, render
    fmt = None
    if args.output:
        fmt = os.path.splitext(args.output)[1][1:].lower()
        if fmt not in FORMATS + ("html",):
            raise ProtosegError(f"{args.output}: cannot tell the drawing's format from its name: "
                                f"end it in .dot, .svg, .png, .pdf or .html")
    shapes = load_shapes(args)
    d = drawing(shapes)
    source = dot_source(d, args.rankdir)
    if not args.output:
        print(source, end="")
        return 0
    if fmt == "html":
        from ..viewer import page
        data = page(shapes, args.rankdir).encode("utf-8")
    else:
        data = source.encode("utf-8") if fmt == "dot" else render(source, fmt)
    with Outputs() as out:
        out.add(args.output, lambda tmp: _write(tmp, data), protect=[args.prototxt])
    layers = sum(len(n.layers) for n in d.nodes)
    outputs = sum(n.blob is not None for n in d.nodes)
    print(f"wrote {args.output}: {layers} layers in {len(d.nodes) - outputs} nodes "
          f"({d.folded} in-place layers folded), {outputs} output{'s' if outputs != 1 else ''}, "
          f"{len(d.edges)} edges")
    return 0


def _write(path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
