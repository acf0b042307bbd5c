"""Coordinate maps: where every blob's elements sit in each net input, and what they see.

Along each spatial axis of an input, element j of a blob is centred on input coordinate
offset + j * stride, i.e. x_blob = scale * x_input + shift with scale = 1/stride (the affine maps of
Caffe's python/caffe/coord_map.py), and depends on `rf` input pixels (its receptive field, dilation
included). Each layer type gives, per axis, its own map and reach (its spec's `axes`); this module
composes them through the net in execution order, per input:

    scale = scale_bottom * a,  shift = a * shift_bottom + b,  rf = rf_bottom + reach * stride_bottom

for a layer x_top = a * x_bottom + b whose top element spans `reach` bottom steps. Where a layer
combines several bottoms (Eltwise, Concat), their maps must agree; where they do not, the layer is
recorded in `misaligned` (the top keeps bottom 0's map). All arithmetic is exact (fractions).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..layers import spec_of
from .cost import context


@dataclass(frozen=True)
class Map:
    """A blob's placement along one axis of one input."""

    scale: Fraction             # x_blob = scale * x_input + shift
    shift: Fraction
    rf: Fraction                # receptive field, in input pixels

    @property
    def stride(self) -> Fraction:
        """Input pixels between neighbouring elements."""
        return 1 / self.scale

    @property
    def offset(self) -> Fraction:
        """The input coordinate element 0 is centred on."""
        return -self.shift / self.scale


@dataclass(frozen=True)
class Misalignment:
    """A layer whose bottoms sit differently in an input along an axis."""

    layer: object               # net.Layer
    input: str                  # the input blob
    axis: int
    maps: tuple                 # (bottom blob, Map) for each mapped bottom


@dataclass
class CoordMaps:
    inputs: dict                # input blob -> its spatial axes
    values: dict                # SSA value -> {input blob: {axis: Map}}
    misaligned: list            # Misalignment

    def of(self, value: str) -> dict:
        """{input blob: {axis: Map}} of an SSA value (a top of Shapes.layers[i].layer.top_values)."""
        return self.values.get(value, {})


def axis_name(axis: int, ndim: int) -> str:
    """H and W for the spatial axes of a 4-axis blob, 'axis k' otherwise."""
    return {2: "H", 3: "W"}[axis] if ndim == 4 and axis in (2, 3) else f"axis {axis}"


def coord_maps(shapes) -> CoordMaps:
    """The coordinate maps of every blob of an inferred net (`protoseg.infer_shapes`) relative to
    each net input with spatial axes (axes 2 and on)."""
    from ..shapes import Shapes
    if not isinstance(shapes, Shapes):
        raise TypeError(f"coord_maps() takes the Shapes of infer_shapes(), not {type(shapes).__name__}")
    inputs, values, misaligned = {}, {}, []
    for ls in shapes.layers:
        spec = spec_of(ls.layer)
        if spec.source:
            for blob, value, shape in zip(ls.layer.tops, ls.layer.top_values, ls.tops):
                if len(shape) >= 3:
                    inputs[blob] = tuple(range(2, len(shape)))
                    values[value] = {blob: {a: Map(Fraction(1), Fraction(0), Fraction(1))
                                            for a in inputs[blob]}}
            continue
        rules = spec.axes(context(ls, spec)) if spec.axes is not None else {}
        top = {}
        for name, axes in inputs.items():
            for a in axes:
                rule = rules.get(a)
                if rule is None or rule.scale is None:
                    continue
                mapped = range(len(ls.layer.bottoms)) if rule.mapped is None else rule.mapped
                found = [(ls.layer.bottoms[i], values[ls.layer.bottom_values[i]][name][a])
                         for i in mapped
                         if a in values.get(ls.layer.bottom_values[i], {}).get(name, {})]
                if not found:
                    continue
                maps = [(b, Map(m.scale * rule.scale, rule.scale * m.shift + rule.shift,
                                m.rf + rule.reach * m.stride)) for b, m in found]
                first = maps[0][1]
                if any((m.scale, m.shift) != (first.scale, first.shift) for _, m in maps):
                    misaligned.append(Misalignment(ls.layer, name, a, tuple(maps)))
                    top.setdefault(name, {})[a] = first
                else:
                    top.setdefault(name, {})[a] = Map(first.scale, first.shift,
                                                      max(m.rf for _, m in maps))
        for value in ls.layer.top_values:
            values[value] = top
    return CoordMaps(inputs, values, misaligned)
