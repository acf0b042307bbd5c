"""Cost per layer and in total: parameters, multiply-accumulates, activation memory.

Each layer type says what it stores and computes (its spec's `cost`, a `Cost`); this module adds
what is the same for every type: the activation memory of its tops, and the totals. How the
counts compare with Netscope's analyzer: docs/analysis.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..layers import LowerContext, spec_of

BYTES = 4       # Caffe's Dtype: float32


def context(ls, spec) -> LowerContext:
    """The context a layer's `cost` and `axes` see: its inferred shapes and parsed parameters."""
    return LowerContext(ls.layer, spec, ls.bottoms, ls.tops, ls.conf)


@dataclass(frozen=True)
class LayerCost:
    """One layer's cost. params and macs are None where its type has no cost rule."""

    layer: object               # net.Layer
    params: int | None          # values in its caffemodel blobs
    macs: int | None            # multiply-accumulates, one forward pass
    activation_bytes: int       # memory its tops own (0 for in-place tops and shared ones)
    blobs: tuple = ()           # the shapes of its caffemodel blobs


@dataclass(frozen=True)
class Costs:
    layers: list                # LayerCost, in the order of Shapes.layers
    params: int                 # totals over the layers that have a cost rule
    macs: int
    activation_bytes: int       # every blob a forward pass allocates
    unknown: list               # names of the layers without a cost rule


def costs(shapes) -> Costs:
    """The cost of every layer of an inferred net (`protoseg.infer_shapes`), and the totals."""
    from ..shapes import Shapes
    if not isinstance(shapes, Shapes):
        raise TypeError(f"costs() takes the Shapes of infer_shapes(), not {type(shapes).__name__}")
    out = []
    for ls in shapes.layers:
        spec = spec_of(ls.layer)
        cost = spec.cost(context(ls, spec)) if spec.cost is not None else None
        owned = [t for t, in_place in zip(ls.tops, ls.layer.in_place)
                 if not in_place and not (cost is not None and cost.shares)]
        activation = sum(math.prod(t) for t in owned) * BYTES
        if cost is None:
            out.append(LayerCost(ls.layer, None, None, activation))
        else:
            out.append(LayerCost(ls.layer, cost.params, cost.macs, activation, tuple(cost.blobs)))
    known = [c for c in out if c.params is not None]
    return Costs(out, sum(c.params for c in known), sum(c.macs for c in known),
                 sum(c.activation_bytes for c in out),
                 [c.layer.name for c in out if c.params is None])
