"""draw: a net and its shapes -> a drawing (layers as nodes, blobs as edges labelled with their
shapes), written in Graphviz's DOT language here and laid out by Graphviz's `dot` program for SVG,
PNG and PDF. No torch, no numpy.

Caffe's python/caffe/draw.py draws every blob as a node of its own beside the layers, knows no
shapes, and draws an in-place layer (a ReLU whose top is its bottom) as a node with edges to and
from that blob node: a two-node loop per ReLU, hard to follow in a ResNet. Here:

- one node per layer, and one per net output (a top no layer reads), so the final shape shows;
- one edge per blob read: from the node that wrote the value to the node that reads it, labelled
  with the blob's name and shape (a blob read by three layers is three edges);
- an in-place layer is folded into the node that wrote the value it rewrites (conv1 + bn_conv1 +
  scale_conv1 + conv1_relu is one node), listed there in order (no other layer can read the value
  it rewrites: Caffe refuses such a net, and so does load_net). It keeps a node of its own when
  it has several tops, or when the layer that wrote the value has several (the fold would seem to
  apply to all of them);
- a node's colour says its layer family (the protoseg layer package that defines the type).

`drawing(shapes)` gives the description the DOT writer reads (and which an HTML viewer can read
too); `dot_source(drawing)` writes DOT, escaping every name; `render(source, fmt)` runs `dot`.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from .errors import ToolError
from .layers import package_of
from .schema import field_text, msg_text
from .shapes import Shapes
from .text import dims

__all__ = ["Node", "Edge", "Drawing", "drawing", "dot_source", "dot_string", "render", "family",
           "FAMILIES", "FORMATS", "RANKDIRS"]

# layer package -> family
_FAMILY_OF = {
    "data": "data",
    "convolution": "convolution",
    "pooling": "pooling", "roi_pooling": "pooling",
    "inner_product": "inner product", "embed": "inner product",
    "neuron": "activation", "prelu": "activation",
    "lrn": "normalization", "mvn": "normalization", "batch_norm": "normalization",
    "bn": "normalization", "scale": "normalization", "normalize": "normalization",
    "eltwise": "merge", "concat": "merge",
    "slice": "reshape", "split": "reshape", "crop": "reshape", "flatten": "reshape",
    "reshape": "reshape", "permute": "reshape", "tile": "reshape",
    "interp": "resize", "upsample": "resize",
    "softmax": "prediction", "argmax": "prediction", "reduction": "prediction",
    "loss": "loss",
    "prior_box": "detection", "detection": "detection", "meanfield": "prediction",
    "python_layer": "other",
}

# family -> fill colour; "other": Python layers and types the user registered; "output": a net
# output
FAMILIES = {
    "data": "#d9d9d9", "convolution": "#f4a6a6", "pooling": "#ffd08a",
    "inner product": "#d7b5f0", "activation": "#b8e6b8", "normalization": "#a9d3f5",
    "merge": "#fff3a0", "reshape": "#e6dcc8", "resize": "#a8e6e0", "prediction": "#f5c6e6",
    "loss": "#bdbdbd", "detection": "#c9c0f0", "other": "#ffffff", "output": "#ffffff",
}

FORMATS = ("dot", "svg", "png", "pdf")
RANKDIRS = ("TB", "LR", "BT", "RL")


def family(type_: str) -> str:
    """The family of a layer type: its protoseg package's, "other" for a registered type."""
    package = package_of(type_)
    return _FAMILY_OF[package.rsplit(".", 1)[1]] if package else "other"


@dataclass
class Node:
    """A layer and the in-place layers folded into it (`layers`, LayerShapes in file order), or a
    net output (`blob` and `shape`, no layers)."""

    id: str
    family: str
    layers: list = field(default_factory=list)
    blob: str | None = None
    shape: tuple | None = None


@dataclass(frozen=True)
class Edge:
    """A blob read: from the node that wrote the value to the node that reads it."""

    tail: str
    head: str
    blob: str
    shape: tuple


@dataclass
class Drawing:
    name: str
    nodes: list
    edges: list

    @property
    def folded(self) -> int:
        """How many in-place layers are folded into another layer's node."""
        return sum(max(len(n.layers) - 1, 0) for n in self.nodes)


def drawing(shapes: Shapes) -> Drawing:
    """The drawing of a net with its inferred shapes (from protoseg.infer_shapes)."""
    if not isinstance(shapes, Shapes):
        raise TypeError(f"drawing takes the Shapes of a net (from infer_shapes), not "
                        f"{type(shapes).__name__}")
    nodes: list = []
    node_of: dict = {}          # value -> the node that wrote it
    for ls in shapes.layers:
        layer = ls.layer
        rewrites = layer.bottom_values[0] if layer.in_place == [True] else None
        if rewrites is not None and len(node_of[rewrites].layers[0].layer.tops) == 1:
            node = node_of[rewrites]
            node.layers.append(ls)
        else:
            node = Node(f"n{len(nodes)}", family(layer.type), [ls])
            nodes.append(node)
        for v in layer.top_values:
            node_of[v] = node
    edges: dict = {}            # an ordered set: a layer reading one blob twice is one edge
    for node in nodes:
        for ls in node.layers:
            for blob, v in zip(ls.layer.bottoms, ls.layer.bottom_values):
                if node_of[v] is not node:
                    edges[Edge(node_of[v].id, node.id, blob, shapes.values[v])] = None
    edges = list(edges)
    read = {v for ls in shapes.layers for v in ls.layer.bottom_values}
    outputs = [(blob, v) for ls in shapes.layers for blob, v in zip(ls.layer.tops, ls.layer.top_values)
               if v not in read]
    for i, (blob, v) in enumerate(outputs):
        node = Node(f"out{i}", "output", blob=blob, shape=shapes.values[v])
        nodes.append(node)
        edges.append(Edge(node_of[v].id, node.id, blob, shapes.values[v]))
    return Drawing(shapes.net.name or "net", nodes, edges)


# ---------------------------------------------------------------------------------------------
# DOT

def dot_string(text: str) -> str:
    """A DOT quoted string that Graphviz shows as `text`, character for character: backslashes,
    quotes and `&` (Graphviz reads HTML entities in labels) escaped, control characters shown as
    \\xNN."""
    out = []
    for c in text:
        if c in '\\"':
            out.append("\\" + c)
        elif c == "&":
            out.append("&amp;")
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\\\x{ord(c):02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _lines(*parts) -> str:
    """Label lines, each escaped, joined by Graphviz's centred line break."""
    return '"' + "\\n".join(dot_string(p)[1:-1] for p in parts) + '"'


def _settings(layer) -> str:
    return " ".join(f"{k} {{ {msg_text(m)} }}" for k, m in layer.settings.items())


def _summary(layer, width: int = 40) -> list:
    """The scalar parameters the layer writes (num_output: 64 kernel_size: 3 pad: 100), in lines
    of about `width` characters, a longer field cut short; nested messages (fillers, shapes) and
    the whole of a long field are left to the tooltip."""
    lines: list = []
    for m in layer.settings.values():
        for k, _ in m.fields():
            if m.type.fields[k].kind == "message":
                continue
            text = field_text(m, k)
            if len(text) > width:
                text = text[:width - 3] + "..."
            if lines and len(lines[-1]) + 1 + len(text) <= width:
                lines[-1] += " " + text
            else:
                lines.append(text)
    return lines


def dot_source(d: Drawing, rankdir: str = "TB") -> str:
    """The drawing in Graphviz's DOT language. Node ids are `n0, n1, ...` (layers, file order)
    and `out0, ...` (net outputs); names are only ever in labels and tooltips, escaped."""
    if not isinstance(d, Drawing):
        raise TypeError(f"dot_source takes a Drawing, not {type(d).__name__}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    out = [f"digraph {dot_string(d.name)} {{",
           f"  graph [rankdir={rankdir}, fontname=\"Helvetica\", nodesep=0.25, ranksep=0.35];",
           "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10, "
           "margin=\"0.12,0.04\"];",
           "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#555555\", fontcolor=\"#333333\"];"]
    for n in d.nodes:
        if n.blob is not None:
            attrs = {"label": _lines(n.blob, dims(n.shape)), "shape": "ellipse", "style": "solid",
                     "tooltip": dot_string(f"output {n.blob} {dims(n.shape)}")}
        else:
            head = n.layers[0].layer
            lines = [head.name, head.type, *_summary(head)]
            lines += [f"+ {ls.layer.name} ({ls.layer.type})" for ls in n.layers[1:]]
            tip = [f"{ls.layer.name} ({ls.layer.type}) {_settings(ls.layer)}".rstrip()
                   for ls in n.layers]
            attrs = {"label": _lines(*lines), "fillcolor": f'"{FAMILIES[n.family]}"',
                     "tooltip": _lines(*tip)}
        attrs["id"] = f'"{n.id}"'
        out.append(f"  {n.id} [" + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "];")
    for e in d.edges:
        out.append(f"  {e.tail} -> {e.head} [label={_lines(e.blob, dims(e.shape))}];")
    out.append("}")
    return "\n".join(out) + "\n"


def render(source: str, fmt: str) -> bytes:
    """Lay out and draw DOT source with Graphviz's `dot` program: svg, png or pdf bytes. A
    ToolError saying how to install Graphviz when `dot` is not on the PATH."""
    if fmt not in FORMATS or fmt == "dot":
        raise ValueError(f"render draws svg, png or pdf, not {fmt!r}")
    exe = shutil.which("dot")
    if exe is None:
        raise ToolError(f"drawing {fmt.upper()} needs Graphviz's `dot` program, which is not "
                        f"installed (not found on the PATH)",
                        hint="install Graphviz: `apt-get install graphviz` (Debian, Ubuntu), "
                             "`dnf install graphviz` (Fedora), `brew install graphviz` (macOS), "
                             "`conda install graphviz`; or write the DOT file (-o NAME.dot), "
                             "which needs nothing installed")
    r = subprocess.run([exe, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True)
    if r.returncode != 0:
        raise ToolError(f"Graphviz's dot failed (exit status {r.returncode}): "
                        f"{r.stderr.decode('utf-8', 'replace').strip()}")
    return r.stdout
