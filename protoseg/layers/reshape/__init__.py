"""Reshape (reshape_layer.cpp; caffe-semantics.md §2.11).

Replaces axes [start, end) by `shape.dim`; 0 copies the bottom's axis, one -1 is inferred.
Its negative `axis` counts from "after the last axis" (-1 means n), unlike other layers.
"""
from __future__ import annotations

from ..spec import LayerSpec, local, sharing
from ..geometry import count


def reshape_shape(ctx, bottoms):
    b = bottoms[0]
    p = ctx.p
    n = len(b)
    axis, num_axes = p.get("axis"), p.get("num_axes")
    start = axis if axis >= 0 else n + axis + 1
    if not 0 <= start <= n:
        ctx.fail(f"axis {axis} is out of range for {tuple(b)}", "axis")
    if num_axes < -1:
        ctx.fail(f"num_axes must be >= -1, got {num_axes}", "num_axes")
    end = n if num_axes == -1 else start + num_axes
    if end > n:
        ctx.fail(f"axis {start} + num_axes {num_axes} runs past the {n} axes of {tuple(b)}", "num_axes")
    dims = list(p.get("shape").get("dim"))
    if sum(d == -1 for d in dims) > 1:
        ctx.fail(f"at most one -1 in the shape, got {dims}", "shape")
    new = []
    for j, d in enumerate(dims):
        if d == 0:
            if start + j >= n:
                ctx.fail(f"shape dim {j} is 0 (copy), but bottom axis {start + j} does not exist", "shape")
            new.append(b[start + j])
        elif d < -1:
            ctx.fail(f"shape dims must be >= -1, got {d}", "shape")
        else:
            new.append(d)
    out = list(b[:start]) + new + list(b[end:])
    if -1 in out:
        known = count(d for d in out if d != -1)
        if known == 0 or count(b) % known:
            ctx.fail(f"cannot infer the -1 in {tuple(out)}: {count(b)} values do not divide by {known}",
                     "shape")
        out[out.index(-1)] = count(b) // known
    if count(out) != count(b):
        ctx.fail(f"{tuple(out)} holds {count(out)} values, the bottom {tuple(b)} holds {count(b)}", "shape")
    ctx.note(f"{tuple(b)} -> {tuple(out)} (axes {start}..{end - 1} replaced by {dims})")
    return [tuple(out)]


def reshape_lower(ctx):
    p = ctx.p
    kw = {}
    if p.get("axis") != 0:
        kw["axis"] = p.get("axis")
    if p.get("num_axes") != -1:
        kw["num_axes"] = p.get("num_axes")
    return ctx.module(local(__name__, "CaffeReshape"), list(p.get("shape").get("dim")), fresh=False, **kw)


SPECS = [LayerSpec("Reshape", reshape_shape, param="reshape_param", in_place=False,
                   lower=reshape_lower, cost=sharing)]
