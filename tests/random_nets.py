"""A seeded generator of small random Caffe nets that Caffe accepts (tests/test_caffe_random_nets.py).

`random_net(seed)` gives the prototxt text and the input shapes. A net starts from one Input
"data" (batch 1-2, 1-6 channels, 5-14 pixels a side) and adds 4-12 layers; each layer reads a
blob chosen among all the live ones (so branches form), may run in place where Caffe allows it,
and joins branches where the shapes allow (Eltwise, Concat, Crop). Layer parameters are drawn
from the ranges Caffe accepts. The generator tracks shapes with Caffe's formulas
(caffe-semantics.md §2) only to stay within what Caffe accepts; the shapes tested are Caffe's.

Left out on purpose: BN and Upsample (the reference's are other forks' layers, see
docs/fidelity.md), pooling configurations whose last window is empty (-FLT_MAX / NaN would
flow through the rest of the net; tests/test_caffe_layers.py covers them), LRN in place and
Eltwise SUM in place (broken in Caffe's CPU code, §3.5 / §3.8).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

MAX_SIDE = 24           # spatial size bound, to keep every net tiny
MAX_CHANNELS = 12


@dataclass
class RandomNet:
    seed: int
    text: str
    inputs: dict        # {blob: shape}


class _Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.lines: list = []
        self.live: dict = {}         # blob -> shape, in creation order
        self.read: set = set()       # blobs whose current version a layer has read
        self.shared: set = set()     # blobs whose memory another blob shares (Reshape, Permute)
        self.n = 0

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def layer(self, type_: str, bottoms, tops, param: str = "") -> None:
        bots = " ".join(f'bottom: "{b}"' for b in bottoms)
        tps = " ".join(f'top: "{t}"' for t in tops)
        self.lines.append(f'layer {{ name: "{self.name("l")}" type: "{type_}" {bots} {tps} {param} }}')
        self.read.update(bottoms)
        self.read.difference_update(tops)

    def out(self, x: str, shape, in_place_ok: bool = False) -> str:
        """The top for a layer reading x: x itself (in place) or a new blob. Not in place when
        another layer has read this version of x (Caffe would insert a Split and refuse the
        in-place top, "produced by multiple sources"), nor when x shares its memory with another
        blob (Caffe would rewrite both; tests/test_caffe_layers.py has those cases)."""
        in_place = in_place_ok and x not in self.read and x not in self.shared
        top = x if in_place and self.r.random() < 0.4 else self.name("b")
        self.live[top] = tuple(shape)
        return top

    def pick(self, ndim: int = 4):
        names = [b for b, s in self.live.items() if len(s) == ndim]
        if not names:
            return None
        return names[-1] if self.r.random() < 0.5 else self.r.choice(names)


# ---------------------------------------------------------------------------------------------
# layers: each takes the generator and a 4-D bottom; returns False when it does not apply


def _conv(g: _Gen, x: str, deconv: bool) -> bool:
    n, c, h, w = g.live[x]
    r = g.r
    group = r.choice([d for d in range(1, c + 1) if c % d == 0])
    num = group * r.randint(1, max(1, MAX_CHANNELS // group))
    k, s, p, d = r.randint(1, 4 if deconv else 3), r.randint(1, 2), r.randint(0, 1 if deconv else 2), r.randint(1, 2)
    ext = d * (k - 1) + 1
    if deconv:
        oh, ow = (s * (v - 1) + ext - 2 * p for v in (h, w))
    elif min(h, w) + 2 * p < ext:
        return False
    else:
        oh, ow = ((v + 2 * p - ext) // s + 1 for v in (h, w))
    if min(oh, ow) < 1 or max(oh, ow) > MAX_SIDE:
        return False
    bias = r.choice(["", "bias_term: false"])
    top = g.out(x, (n, num, oh, ow))
    g.layer("Deconvolution" if deconv else "Convolution", [x], [top],
            f"convolution_param {{ num_output: {num} kernel_size: {k} stride: {s} pad: {p} dilation: {d} "
            f"group: {group} {bias} }}")
    return True


def conv(g: _Gen, x: str) -> bool:
    return _conv(g, x, deconv=False)


def deconv(g: _Gen, x: str) -> bool:
    return _conv(g, x, deconv=True)


def pool(g: _Gen, x: str) -> bool:
    n, c, h, w = g.live[x]
    r = g.r
    op = r.choice(["MAX", "AVE"])
    if r.random() < 0.15:
        top = g.out(x, (n, c, 1, 1))
        g.layer("Pooling", [x], [top], f"pooling_param {{ pool: {op} global_pooling: true }}")
        return True
    kh, kw = r.randint(1, 3), r.randint(1, 3)
    sh, sw = r.randint(1, 3), r.randint(1, 3)
    ph, pw = r.randint(0, kh - 1), r.randint(0, kw - 1)
    ceil = r.random() < 0.7
    if h + 2 * ph < kh or w + 2 * pw < kw:
        return False
    sizes = []
    for size, k, s, p in ((h, kh, sh, ph), (w, kw, sw, pw)):
        o = (math.ceil if ceil else math.floor)((size + 2 * p - k) / s) + 1
        if (ph or pw) and (o - 1) * s >= size + p:      # pooling_layer.cpp: clips both axes
            o -= 1
        if (o - 1) * s - p >= size:                       # an empty last window: left out here
            return False
        sizes.append(o)
    top = g.out(x, (n, c, *sizes))
    g.layer("Pooling", [x], [top], f"pooling_param {{ pool: {op} kernel_h: {kh} kernel_w: {kw} stride_h: {sh} "
                                   f"stride_w: {sw} pad_h: {ph} pad_w: {pw} ceil_mode: {str(ceil).lower()} }}")
    return True


NEURONS = [     # (type, parameter choices, in place allowed)
    ("ReLU", ["", "relu_param { negative_slope: 0.1 }", "relu_param { negative_slope: -0.5 }"], True),
    ("PReLU", ["", "prelu_param { channel_shared: true }"], True),
    ("ELU", ["", "elu_param { alpha: 0.5 }"], True),
    ("Sigmoid", [""], True),
    ("TanH", [""], True),
    ("AbsVal", [""], False),
    ("BNLL", [""], True),
    ("Power", ["power_param { power: 2 scale: 0.5 shift: 1 }", "power_param { scale: -2 shift: 0.5 }"], True),
    ("Exp", ["exp_param { base: 2 scale: 0.3 }", "exp_param { scale: 0.2 shift: -0.1 }"], True),
    ("Dropout", ["dropout_param { dropout_ratio: 0.3 }"], True),
    ("Threshold", ["threshold_param { threshold: 0.1 }"], True),
    ("BatchNorm", ["", "batch_norm_param { eps: 0.001 }"], True),
    ("Scale", ["scale_param { bias_term: true }", "scale_param { axis: 2 num_axes: 1 }", ""], True),
    ("Bias", ["", "bias_param { axis: 1 num_axes: 2 }"], True),
    ("LRN", ["lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 }",
             "lrn_param { local_size: 3 alpha: 0.3 beta: 0.6 norm_region: WITHIN_CHANNEL }"], False),
    ("MVN", ["", "mvn_param { across_channels: true eps: 0.001 }", "mvn_param { normalize_variance: false }"],
     False),
    ("Softmax", ["", "softmax_param { axis: 2 }"], False),
    ("Normalize", ["norm_param { across_spatial: false channel_shared: false }",
                   "norm_param { across_spatial: true channel_shared: true }"], False),
]


def neuron(g: _Gen, x: str) -> bool:
    type_, params, in_place = g.r.choice(NEURONS)
    if type_ in ("LRN", "MVN", "Normalize") and min(g.live[x][2:]) < 1:
        return False
    top = g.out(x, g.live[x], in_place)
    g.layer(type_, [x], [top], g.r.choice(params))
    return True


def join(g: _Gen, x: str) -> bool:
    """Eltwise with a blob of the same shape, Concat along the channels, or Crop to a smaller blob."""
    shape = g.live[x]
    n, c, h, w = shape
    others = [b for b, s in g.live.items() if len(s) == 4 and b != x]
    same = [b for b in others if g.live[b] == shape]
    cat1 = [b for b in others if g.live[b][0] == n and g.live[b][2:] == (h, w)
            and g.live[b][1] + c <= MAX_CHANNELS]
    smaller = [b for b in others if g.live[b][2] <= h and g.live[b][3] <= w]
    kinds = [k for k, ok in (("eltwise", same), ("concat", cat1), ("crop", smaller)) if ok]
    if not kinds:
        return False
    kind = g.r.choice(kinds)
    if kind == "eltwise":
        y = g.r.choice(same)
        op = g.r.choice(["operation: SUM", "operation: SUM coeff: 0.5 coeff: -1.5", "operation: PROD",
                         "operation: MAX"])
        g.layer("Eltwise", [x, y], [g.out(x, shape)], f"eltwise_param {{ {op} }}")
    elif kind == "concat":
        y = g.r.choice(cat1)
        g.layer("Concat", [x, y], [g.out(x, (n, c + g.live[y][1], h, w))])
    else:
        y = g.r.choice(smaller)
        rh, rw = g.live[y][2:]
        oh, ow = g.r.randint(0, h - rh), g.r.randint(0, w - rw)
        g.layer("Crop", [x, y], [g.out(x, (n, c, rh, rw))], f"crop_param {{ axis: 2 offset: {oh} offset: {ow} }}")
    return True


def move(g: _Gen, x: str) -> bool:
    """Slice, Permute, Reshape or Tile."""
    n, c, h, w = g.live[x]
    kind = g.r.choice(["slice", "permute", "reshape", "tile"])
    if kind == "slice" and c >= 2:
        point = g.r.randint(1, c - 1)
        a, b = g.name("b"), g.name("b")
        g.live[a], g.live[b] = (n, point, h, w), (n, c - point, h, w)
        g.layer("Slice", [x], [a, b], f"slice_param {{ axis: 1 slice_point: {point} }}")
    elif kind == "permute":
        order = [0] + g.r.sample([1, 2, 3], 3)
        shape = (n, c, h, w)
        top = g.out(x, tuple(shape[i] for i in order))
        g.layer("Permute", [x], [top], "permute_param { " + " ".join(f"order: {i}" for i in order) + " }")
        g.shared.update((x, top))               # the identity order shares the bottom's memory
    elif kind == "reshape":
        top = g.out(x, (n, c, w, h))
        g.layer("Reshape", [x], [top], f"reshape_param {{ shape {{ dim: 0 dim: -1 dim: {w} dim: {h} }} }}")
        g.shared.update((x, top))
    elif kind == "tile" and c * 2 <= MAX_CHANNELS:
        axis = g.r.randint(1, 3)
        shape = list(g.live[x])
        shape[axis] *= 2
        if max(shape[2:]) > MAX_SIDE:
            return False
        g.layer("Tile", [x], [g.out(x, tuple(shape))], f"tile_param {{ axis: {axis} tiles: 2 }}")
    else:
        return False
    return True


def head(g: _Gen, x: str) -> bool:
    """A layer that leaves 4-D: InnerProduct, Flatten, Reduction or ArgMax."""
    n, c, h, w = g.live[x]
    kind = g.r.choice(["ip", "flatten", "reduction", "argmax"])
    if kind == "ip":
        k = g.r.randint(1, 6)
        g.layer("InnerProduct", [x], [g.out(x, (n, k))], f"inner_product_param {{ num_output: {k} }}")
    elif kind == "flatten":
        top = g.out(x, (n, c * h * w))
        g.layer("Flatten", [x], [top])
        g.shared.update((x, top))
    elif kind == "reduction":
        op = g.r.choice(["SUM", "ASUM", "SUMSQ", "MEAN"])
        g.layer("Reduction", [x], [g.out(x, (n, c))], f"reduction_param {{ operation: {op} axis: 2 }}")
    else:
        k = g.r.randint(1, min(3, c))
        values = g.r.choice(["true", "false"])     # indices: ties (ReLU zeros) take the larger index
        g.layer("ArgMax", [x], [g.out(x, (n, k, h, w))],
                f"argmax_param {{ axis: 1 top_k: {k} out_max_val: {values} }}")
    return True


STEPS = [(conv, 3), (deconv, 1), (pool, 2), (neuron, 5), (join, 2), (move, 1)]


def random_net(seed: int) -> RandomNet:
    g = _Gen(seed)
    r = g.r
    shape = (r.randint(1, 2), r.randint(1, 6), r.randint(5, 14), r.randint(5, 14))
    g.live["data"] = shape
    steps, weights = zip(*STEPS)
    target = r.randint(4, 12)
    added = 0
    while added < target:
        step = r.choices(steps, weights)[0]
        x = g.pick()
        if step(g, x):
            added += 1
    if r.random() < 0.5:
        head(g, g.pick())
    dims = " ".join(f"dim: {d}" for d in shape)
    text = f'name: "random{seed}"\n' \
           f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'
    return RandomNet(seed, text + "\n".join(g.lines) + "\n", {"data": shape})
