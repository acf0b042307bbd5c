"""The silent traps a net's text hides, found statically.

- Crop alignment: for each Crop, the offset that aligns its bottom 0 with its bottom 1, derived
  from their coordinate maps as Caffe's coord_map.crop() derives it (bottom 1's element j sits on
  bottom 0's element j + offset when both have one stride), beside the declared one. A wrong
  offset, a Crop without crop_param whose bottoms need one (BVLC Caffe then crops at 0; the
  original FCN fork derived the offset itself), and bottoms no integer offset can align are
  warnings.
- Misaligned bottoms: an Eltwise, Concat, ... whose bottoms sit differently in an input.
- Pooling whose clip rule fires: Caffe drops a last window that would start in the padding, where
  a port using the plain ceil formula keeps it (one more row or column).
- A net that cannot take the input size it declares: an error, with the nearest sizes it takes.

Warnings do not make a net wrong for Caffe (it runs it as written); errors do.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError
from ..layers.pooling import pooled
from ..shapes import infer_shapes
from ..text import fmt_number as number
from ..text import dims
from .coords import axis_name, coord_maps


@dataclass(frozen=True)
class Finding:
    severity: str               # "warning" or "error"
    kind: str                   # crop-offset, crop-unset, crop-unaligned, misaligned, clip-rule,
                                # input-size
    layer: object               # net.Layer (None for the net as a whole)
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class CropAudit:
    """One Crop: per cropped axis, the offset it declares and the one its bottoms' coordinate
    maps call for: bottom 1's element j sits on bottom 0's element j + derived (a Fraction; None
    where the maps do not give one: no common input, or different strides)."""

    layer: object
    axis: int                   # the first cropped axis
    declared: tuple
    derived: tuple
    maps: tuple                 # per cropped axis: (bottom 0's Map, bottom 1's Map) or None
    input: str | None           # the input the maps are relative to
    has_param: bool             # the layer has a crop_param


@dataclass
class CheckReport:
    crops: list                 # CropAudit
    findings: list              # Finding

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list:
        return [f for f in self.findings if f.severity == "warning"]


def check_net(net, inputs: dict | None = None) -> CheckReport:
    """Check a net (`protoseg.load_net`) at its declared input size (or `inputs`)."""
    from ..net import Net
    if not isinstance(net, Net):
        raise TypeError(f"check_net() takes a Net (protoseg.load_net), not {type(net).__name__}")
    try:
        shapes = infer_shapes(net, inputs)
    except ShapeError as e:
        return CheckReport([], [_input_size(net, inputs, e)])
    maps = coord_maps(shapes)
    crops, findings = [], []
    for ls in shapes.layers:
        if ls.layer.type == "Crop":
            audit = _audit(ls, maps)
            crops.append(audit)
            findings += _crop_findings(audit, ls)
        elif ls.layer.type == "Pooling":
            findings += _clip(ls)
    findings += _misaligned(maps)
    order = {id(l): i for i, l in enumerate(net.layers)}
    findings.sort(key=lambda f: order.get(id(f.layer), -1))
    return CheckReport(crops, findings)


def _audit(ls, maps) -> CropAudit:
    layer, window = ls.layer, ls.conf
    m0, m1 = maps.of(layer.bottom_values[0]), maps.of(layer.bottom_values[1])
    name = next((n for n in m0 if n in m1), None)
    pairs = []
    for a in range(window.axis, len(ls.bottoms[0])):
        b0, b1 = (m0[name].get(a), m1[name].get(a)) if name else (None, None)
        pairs.append(None if b0 is None or b1 is None else (b0, b1))
    derived = tuple(None if p is None or p[0].scale != p[1].scale else p[0].shift - p[1].shift
                    for p in pairs)
    return CropAudit(layer, window.axis, window.offsets, derived, tuple(pairs), name,
                     layer.params.has("crop_param"))


def _crop_findings(audit: CropAudit, ls) -> list:
    """The offsets the maps call for, or why no integer offset aligns the bottoms (one finding
    per reason, naming the axes it holds on)."""
    layer = audit.layer
    b0, b1 = layer.bottoms
    where = f"relative to '{audit.input}'"
    problems: dict = {}             # reason -> axes
    wanted = list(audit.declared)
    for i, (pair, d) in enumerate(zip(audit.maps, audit.derived)):
        if pair is None:
            continue
        m0, m1 = pair
        if d is None:
            why = (f"they have different strides ({number(m0.stride)} and {number(m1.stride)}): "
                   f"no crop aligns them")
        elif d < 0:
            why = f"'{b1}' starts {number(-d)} elements of '{b0}' before it"
        elif d.denominator != 1:
            why = (f"they are {number(d)} elements of '{b0}' apart (stride {number(m0.stride)}), "
                   f"not a whole number")
        else:
            wanted[i] = int(d)
            continue
        problems.setdefault(why, []).append(axis_name(audit.axis + i, len(ls.bottoms[0])))
    if problems:
        return [Finding("warning", "crop-unaligned", layer,
                        f"no offset aligns '{b0}' with '{b1}' along {' and '.join(axes)} {where}: "
                        f"{why}") for why, axes in problems.items()]
    if tuple(wanted) == tuple(audit.declared):
        return []
    hint = f"crop_param {{ axis: {audit.axis} {' '.join(f'offset: {o}' for o in _short(wanted))} }}"
    if not audit.has_param:
        return [Finding("warning", "crop-unset", layer,
                        f"no crop_param: BVLC Caffe crops at offset 0, which misaligns '{b0}' with "
                        f"'{b1}' {where}; the offset that aligns them: {_list(wanted)} (the original "
                        f"FCN fork derived it itself)", hint)]
    return [Finding("warning", "crop-offset", layer,
                    f"offset {_list(audit.declared)} misaligns '{b0}' with '{b1}' {where}; the "
                    f"offset that aligns them: {_list(wanted)}", hint)]


def _short(offsets: list) -> list:
    """One offset for every axis when they agree (crop_param's short form)."""
    return offsets[:1] if len(set(offsets)) == 1 else offsets


def _list(offsets) -> str:
    return ", ".join(str(o) for o in _short(list(offsets)))


def _clip(ls) -> list:
    g = ls.conf
    if g.global_pooling or not g.clip:
        return []
    out = []
    for i, axis in enumerate(("H", "W")):
        size, k, s, p = ls.bottoms[0][2 + i], g.kernel[i], g.stride[i], g.pad[i]
        n, _, fired = pooled(size, k, s, p, g.ceil, g.clip)
        if fired:
            out.append(Finding("warning", "clip-rule", ls.layer,
                               f"Caffe's clip rule fires on {axis}: the last window would start at "
                               f"{n * s - p} of {size} (in the padding), so Caffe drops it and "
                               f"gives {n}; a port that uses the plain "
                               f"{'ceil' if g.ceil else 'floor'} formula gets {n + 1}"))
    return out


def _misaligned(maps) -> list:
    """One warning per layer and input, naming the axes."""
    groups: dict = {}
    for m in maps.misaligned:
        groups.setdefault((id(m.layer), m.input), []).append(m)
    out = []
    for ms in groups.values():
        layer, name = ms[0].layer, ms[0].input
        ndim = len(maps.inputs[name]) + 2
        axes = " and ".join(axis_name(m.axis, ndim) for m in ms)
        parts = ", ".join(f"'{b}' stride {number(m.stride)} offset {number(m.offset)}"
                          for b, m in ms[0].maps)
        out.append(Finding("warning", "misaligned", layer,
                           f"its bottoms sit differently in '{name}' along {axes} ({parts} along "
                           f"{axis_name(ms[0].axis, ndim)}): it combines elements that do not "
                           f"correspond"))
    return out


def _input_size(net, inputs, error: ShapeError) -> Finding:
    """The declared size fails: say where, and the nearest sizes the net takes: along each axis
    with the others as declared, or, where none, along every axis at once."""
    from .sizes import input_sizes
    report = input_sizes(net, inputs)
    if not any(ax.accepted for ax in report.axes):
        report = input_sizes(net, inputs, square=True)
    near = []
    for ax in report.axes:
        below = [n for n in ax.accepted if n < ax.declared[0]][-1:]
        above = [n for n in ax.accepted if n > ax.declared[0]][:1]
        near.append(f"{ax.label(len(report.shape))}: "
                    f"{', '.join(map(str, below + above)) or f'none in {ax.lo}..{ax.hi}'}")
    layer = next((l for l in net.layers if l.name == error.layer and l.span == error.span), None)
    return Finding("error", "input-size", layer,
                   f"the net cannot take its input '{report.input}' {dims(report.shape)}: "
                   f"{error.message}",
                   "nearest sizes it takes: " + "; ".join(near) + " (`protoseg sizes` lists them)")
