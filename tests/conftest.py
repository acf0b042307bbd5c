"""Shared helpers for protoseg's tests.

`layer_net` writes the smallest net around one layer under test: line 1 is an Input layer named
"input" with one top per bottom shape (b0, b1, ...), line 2 is the layer "L" with bottoms b0, b1, ...
and tops t0, t1, ... . Errors raised by the layer's shape rule therefore point at line 2
(`LAYER_LINE`).
"""
from __future__ import annotations

import pytest

from protoseg.errors import ProtosegError
from protoseg.net import load_net
from protoseg.shapes import infer_shapes

LAYER_LINE = 2      # the line of layer "L" in a text written by layer_net


def blob_shape_text(shape) -> str:
    """(1, 3, 8, 8) -> 'shape { dim: 1 dim: 3 dim: 8 dim: 8 }'; () -> 'shape { }' (a 0-axis blob)."""
    return "shape { " + "".join(f"dim: {d} " for d in shape) + "}"


def layer_net(type_: str, params: str = "", bottoms=((1, 3, 8, 8),), ntops: int = 1) -> str:
    lines = []
    if bottoms:
        tops = " ".join(f'top: "b{i}"' for i in range(len(bottoms)))
        shapes = " ".join(blob_shape_text(s) for s in bottoms)
        lines.append(f'layer {{ name: "input" type: "Input" {tops} input_param {{ {shapes} }} }}')
    else:
        lines.append("# no bottoms")
    bots = " ".join(f'bottom: "b{i}"' for i in range(len(bottoms)))
    tops = " ".join(f'top: "t{i}"' for i in range(ntops))
    lines.append(f'layer {{ name: "L" type: "{type_}" {bots} {tops} {params} }}')
    return "\n".join(lines) + "\n"


def infer_text(text: str, inputs=None, **load_kw):
    """Load a prototxt given as text and infer every shape (returns protoseg.shapes.Shapes)."""
    return infer_shapes(load_net(text=text, **load_kw), inputs)


def layer_tops(type_: str, params: str = "", bottoms=((1, 3, 8, 8),), ntops: int = 1) -> list:
    """The top shapes of layer "L" (see layer_net)."""
    return infer_text(layer_net(type_, params, bottoms, ntops)).of("L").tops


def layer_error(type_: str, params: str = "", bottoms=((1, 3, 8, 8),), ntops: int = 1,
                exc=ProtosegError) -> ProtosegError:
    """The error that loading and inferring layer "L" raises (fails the test if none is raised)."""
    with pytest.raises(exc) as info:
        infer_text(layer_net(type_, params, bottoms, ntops))
    return info.value


def text_error(text: str, inputs=None, exc=ProtosegError, **load_kw) -> ProtosegError:
    """The error that loading and inferring `text` raises (fails the test if none is raised)."""
    with pytest.raises(exc) as info:
        infer_text(text, inputs, **load_kw)
    return info.value
