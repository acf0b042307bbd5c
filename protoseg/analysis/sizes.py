"""Which input sizes a net takes, and what it gives for each.

One spatial axis of the input at a time (the others as declared), or all of them at once (n x n),
every size of a range is run through the net's layers together. A layer is evaluated once per distinct set of bottom shapes:
by its own shape rule the first time, then, where only axes its type gives an `AxisRule` for
differ, by that rule's size function alone (the same arithmetic the shape rule uses, without its
notes); anything else goes through the shape rule again. A size is taken when every layer takes
it as Caffe's set-up does (every rule's checks, no dimension below 1) and every layer with blobs
keeps the blob shapes it has at the declared size (Caffe's weights are made for those: an
InnerProduct's K fixes the size of what it reads).

The sizes that pass are then described compactly (`rows`): a periodic tail ("every 8k+1 from
9") found by trying periods up to 64, with each output an affine function of the size per
residue class, and the sizes below it as plain runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from ..errors import InputError, ProtosegError
from ..layers import LowerContext, spec_of
from ..shapes import layer_tops, source_shapes
from ..text import fmt_shape
from .coords import axis_name

MAX_PERIOD = 64


@dataclass(frozen=True)
class Rejection:
    """Why a size is refused: the layer, and its bottom shapes there (the message is the layer's
    own error, made on demand)."""

    index: int                  # the layer's index in net.layers
    bottoms: tuple
    reason: str | None = None   # set when the refusal is not a shape rule's (blobs)


@dataclass(frozen=True)
class Row:
    """Accepted sizes {n in [start, stop] : n % step in residues} whose outputs are affine in n:
    outputs[i] = (a, b) for a*n + b, None where that output lacks the axis."""

    start: int
    stop: int
    step: int
    residues: tuple
    outputs: tuple


@dataclass
class AxisSizes:
    """The sizes one axis takes (the others as declared), or, with several axes, every axis at
    once (n x n); the outputs' sizes along the first."""

    axes: tuple
    declared: tuple             # the declared size of each axis
    lo: int
    hi: int
    outcomes: dict              # size -> tuple of output sizes (accepted) or Rejection
    rows: list = field(default_factory=list)

    def label(self, ndim: int) -> str:
        """'H', 'W', or 'H = W' for axes that move together."""
        return " = ".join(axis_name(a, ndim) for a in self.axes)

    @property
    def accepted(self) -> list:
        return [n for n, o in self.outcomes.items() if not isinstance(o, Rejection)]

    def rejected(self) -> dict:
        """layer index -> the sizes it refuses."""
        out: dict = {}
        for n, o in self.outcomes.items():
            if isinstance(o, Rejection):
                out.setdefault(o.index, []).append(n)
        return out


@dataclass
class SizeReport:
    net: object
    input: str                  # the input whose axes vary
    shape: tuple                # its declared shape
    varied: list                # every input blob that varies with it (same size on that axis)
    outputs: list               # the net's output blobs
    axes: list                  # AxisSizes
    unchecked: list             # layers with blobs the declared size does not reach (their blob
                                # shapes could not be held to the declared ones)
    _reasons: dict = field(default_factory=dict, repr=False)

    def reason(self, rejection: Rejection) -> str:
        """The message of the error the layer gives at the refused size."""
        if rejection.reason is not None:
            return rejection.reason
        key = (rejection.index, rejection.bottoms)
        if key not in self._reasons:
            layer = self.net.layers[rejection.index]
            try:
                layer_tops(layer, spec_of(layer), list(rejection.bottoms))
            except ProtosegError as e:
                self._reasons[key] = e.message
            else:
                raise RuntimeError(f"layer '{layer.name}' takes {rejection.bottoms}, but the size "
                                   f"analysis refused it")
        return self._reasons[key]


def input_sizes(net, inputs: dict | None = None, lo: int = 1, hi: int = 1024,
                square: bool = False) -> SizeReport:
    """Run every size lo..hi of each spatial axis of the net's first spatial input through the net,
    the other axes as declared (`inputs`: shapes by blob name, as infer_shapes takes them); with
    `square`, every spatial axis at once (n x n)."""
    from ..net import Net
    if not isinstance(net, Net):
        raise TypeError(f"input_sizes() takes a Net (protoseg.load_net), not {type(net).__name__}")
    if not (isinstance(lo, int) and isinstance(hi, int)) or not 1 <= lo <= hi:
        raise ValueError(f"the sizes must be integers with 1 <= lo <= hi, not {lo!r}..{hi!r}")
    sources = source_shapes(net, inputs)
    tops = [(b, v) for l in net.layers if spec_of(l).source for b, v in zip(l.tops, l.top_values)]
    spatial = [(b, v) for b, v in tops if len(sources[v]) >= 3]
    if not spatial:
        have = ", ".join(f"'{b}' {fmt_shape(sources[v])}" for b, v in tops) or "none"
        raise InputError(f"no input of this net has spatial axes (axes 2 and on): {have}")
    name, value = spatial[0]
    shape = sources[value]
    used = {v for l in net.layers for v in l.bottom_values}
    outputs = [(b, v) for l in net.layers if not spec_of(l).source
               for b, v in zip(l.tops, l.top_values) if v not in used]
    groups = [tuple(range(2, len(shape)))] if square else [(a,) for a in range(2, len(shape))]
    axes, unchecked, varied = [], set(), set()
    for group in groups:
        declared = tuple(shape[a] for a in group)
        moving = [v for _, v in spatial if len(sources[v]) > group[-1]
                  and tuple(sources[v][a] for a in group) == declared]
        varied |= {b for b, v in spatial if v in moving}
        points = [declared] + [(n,) * len(group) for n in range(lo, hi + 1)
                               if (n,) * len(group) != declared]
        results, missed = _run(net, sources, moving, group, points, [v for _, v in outputs])
        unchecked |= missed
        outcomes = {p[0]: r for p, r in zip(points[1:], results[1:])}
        if len(set(declared)) == 1 and lo <= declared[0] <= hi:
            outcomes[declared[0]] = results[0]
        outcomes = dict(sorted(outcomes.items()))
        axes.append(AxisSizes(group, declared, lo, hi, outcomes, summarize(outcomes, lo, hi)))
    return SizeReport(net, name, shape, [b for b, _ in spatial if b in varied],
                      [b for b, _ in outputs], axes, sorted(unchecked))


def _run(net, sources: dict, varied: list, axes: tuple, points: list, outputs: list):
    """Every point (the sizes of `axes`) through every layer; points[0] is the declared one (its
    blob shapes are the reference). Returns per point the outputs' sizes along axes[0] or a
    Rejection, and the names of the layers whose blobs could not be checked."""

    def at(shape, point):
        shape = list(shape)
        for a, n in zip(axes, point):
            shape[a] = n
        return tuple(shape)
    state = {v: ([at(s, p) for p in points] if v in varied else [s] * len(points))
             for v, s in sources.items()}
    refused: list = [None] * len(points)
    unchecked = set()
    for index, layer in enumerate(net.layers):
        spec = spec_of(layer)
        if spec.source:
            continue
        step = _Layer(index, layer, spec)
        columns = [state[v] for v in layer.bottom_values]
        if len(columns) == 1:      # one evaluation per distinct bottom shape
            keys = columns[0]
            results = {k: step.evaluate((k,)) for k in dict.fromkeys(keys)}
        else:
            keys = list(zip(*columns)) if columns else [()] * len(points)
            results = {k: step.evaluate(k) for k in dict.fromkeys(keys)}
        if step.rejected:
            for i, k in enumerate(keys):
                if type(results[k]) is Rejection and refused[i] is None:
                    refused[i] = results[k]
        for t, value in enumerate(layer.top_values):
            tops = {k: r[t] if type(r) is tuple else None for k, r in results.items()}
            if len(columns) == 1 and all(t == k for k, t in tops.items()):
                state[value] = keys              # the top is the bottom, size for size
            else:
                state[value] = [tops[k] for k in keys]
        if step.unchecked:
            unchecked.add(layer.name)
    out = []
    a = axes[0]
    for i in range(len(points)):
        if refused[i] is not None:
            out.append(refused[i])
        else:
            out.append(tuple(state[v][i][a] if len(state[v][i]) > a else None for v in outputs))
    return out, unchecked


class _Layer:
    """One layer, evaluated for many bottom shapes: the first success is the template its axis
    rules start from, and (when it is the declared size's) the reference for its blob shapes."""

    DEAD = False                # the value of a key whose bottoms a size never reached

    def __init__(self, index, layer, spec):
        self.index, self.layer, self.spec = index, layer, spec
        self.template = None    # (bottoms, tops, rules)
        self.blobs = None       # the reference blob shapes
        self.first = True       # the next evaluation is the declared size's
        self.unchecked = False
        self.rejected = False   # some size was refused here

    def evaluate(self, key):
        declared, self.first = self.first, False
        if None in key:
            return self.DEAD
        if self.template is not None:
            tops = self._by_rules(key)
            if tops is not None:
                self.rejected |= type(tops) is Rejection
                return tops
        try:
            tops, ctx = layer_tops(self.layer, self.spec, list(key))
        except ProtosegError:
            self.rejected = True
            return Rejection(self.index, key)
        if self.spec.cost is not None or self.template is None:
            lctx = LowerContext(self.layer, self.spec, list(key), tops, ctx.conf)
        if self.spec.cost is not None:
            blobs = tuple(self.spec.cost(lctx).blobs)
            if declared:
                self.blobs = blobs
            elif self.blobs is None:
                self.unchecked = bool(blobs)
            elif blobs != self.blobs:
                self.rejected = True
                return Rejection(self.index, key, _blob_reason(self.blobs, blobs))
        if self.template is None:
            rules = self.spec.axes(lctx) if self.spec.axes is not None else {}
            self.template = (key, tuple(tops), rules)
        return tuple(tops)

    def _by_rules(self, key):
        """The tops by the axis rules alone, when the bottoms differ from the template's only
        along axes that have one; None when the shape rule must run."""
        bottoms, tops, rules = self.template
        changed = set()
        for b, t in zip(key, bottoms):
            if b != t:
                if len(b) != len(t):
                    return None
                changed.update([a for a in range(len(b)) if b[a] != t[a]])
        if not changed <= rules.keys():
            return None
        new = tops
        for a in changed:
            size = rules[a].size(*[b[a] if len(b) > a else None for b in key])
            if size is None or size < 1:
                return Rejection(self.index, key)
            new = tuple(t[:a] + (size,) + t[a + 1:] if len(t) > a else t for t in new)
        return new


def _blob_reason(want: tuple, got: tuple) -> str:
    shapes = lambda blobs: ", ".join(fmt_shape(s) for s in blobs)   # noqa: E731
    return (f"its blobs would be {shapes(got)}, but its weights are {shapes(want)} (made for the "
            f"declared input size)")


# -- the compact description

def summarize(outcomes: dict, lo: int, hi: int) -> list:
    """Rows of accepted sizes: the periodic tail (the shortest period whose tail starts lowest),
    then the runs below it."""
    accepted = {n: o for n, o in outcomes.items() if not isinstance(o, Rejection)}
    start, period, diff = hi + 1, 1, None
    for p in range(1, min(MAX_PERIOD, (hi - lo + 1) // 2) + 1):
        n0, d = _tail(accepted, lo, hi, p)
        if n0 < start:
            start, period, diff = n0, p, d
        if start == lo:         # no longer period can start lower
            break
    rows = _runs(accepted, lo, start - 1)
    groups: dict = {}
    for first in range(start, min(start + period, hi + 1)):
        if first not in accepted:
            continue
        slope = tuple(None if d is None else Fraction(d, period) for d in diff)
        line = tuple(None if a is None else (a, o - a * first)
                     for a, o in zip(slope, accepted[first]))
        groups.setdefault(line, []).append(first)
    for line, firsts in groups.items():
        if len(firsts) == period:
            rows.append(Row(firsts[0], hi, 1, (0,), line))
        else:
            rows.append(Row(firsts[0], hi, period, tuple(f % period for f in firsts), line))
    return sorted(rows, key=lambda r: r.start)


def _tail(accepted: dict, lo: int, hi: int, p: int) -> tuple:
    """Where the tail of [lo, hi] that is periodic with period p starts (n0 = hi + 1: none), and
    the outputs' change over one period there."""
    diff = None
    n = hi - p
    while n >= lo:
        a, b = accepted.get(n), accepted.get(n + p)
        if (a is None) != (b is None):
            break
        if a is not None:
            d = tuple(None if x is None or y is None else y - x for x, y in zip(a, b))
            if any((x is None) != (y is None) for x, y in zip(a, b)) or diff not in (None, d):
                break
            diff = d
        n -= 1
    n0 = n + 1
    if hi - n0 + 1 < 2 * p or diff is None:
        return hi + 1, None
    return n0, diff


def _runs(accepted: dict, lo: int, hi: int) -> list:
    """Consecutive accepted sizes in [lo, hi] whose outputs change by a constant step."""
    rows, n = [], lo
    while n <= hi:
        if n not in accepted:
            n += 1
            continue
        end, step = n, None
        while end + 1 <= hi and end + 1 in accepted:
            d = tuple(None if x is None or y is None else y - x
                      for x, y in zip(accepted[end], accepted[end + 1]))
            if step not in (None, d):
                break
            step, end = d, end + 1
        line = tuple(None if o is None else (Fraction(s or 0), o - (s or 0) * n)
                     for o, s in zip(accepted[n], step or (0,) * len(accepted[n])))
        rows.append(Row(n, end, 1, (0,), line))
        n = end + 1
    return rows


def affine_text(line, var: str = "n") -> str:
    """(a, b) as 'n', 'n + 7', '(n + 7)/8', '2n - 1'; None as '-' (no such axis)."""
    if line is None:
        return "-"
    a, b = line
    q = math.lcm(a.denominator, b.denominator)
    A, B = int(a * q), int(b * q)
    if A == 0:
        return str(Fraction(B, q))
    text = {1: var, -1: f"-{var}"}.get(A, f"{A}{var}")
    if B:
        text += f" + {B}" if B > 0 else f" - {-B}"
    return f"({text})/{q}" if q > 1 else text


def sizes_text(row: Row, hi: int) -> str:
    """'≥ 9', '195..226', '17', 'every 8k+1 from 9'."""
    if row.step == 1:
        if row.start == row.stop:
            return str(row.start)
        return f"≥ {row.start}" if row.stop == hi else f"{row.start}..{row.stop}"
    classes = ", ".join(f"{row.step}k+{r}" if r else f"{row.step}k" for r in row.residues)
    return f"every {classes} from {row.start}" + ("" if row.stop == hi else f" to {row.stop}")


def runs_text(sizes: list, limit: int = 3) -> str:
    """[1, 2, 3, 7, 9, 10] as '1..3, 7, 9..10'; more than `limit` runs: the first ones and '...'."""
    runs = []
    for n in sorted(sizes):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    parts = [str(a) if a == b else f"{a}..{b}" for a, b in runs]
    return ", ".join(parts[:limit]) + (", ..." if len(parts) > limit else "")
