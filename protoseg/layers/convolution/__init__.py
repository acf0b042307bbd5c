"""Convolution and Deconvolution: one geometry (base_conv_layer.cpp), two size rules
(conv_layer.cpp, deconv_layer.cpp; caffe-semantics.md §2.2, §2.3, §3.1, §3.2).

Convolution: out = (in + 2*pad - (dilation*(kernel-1)+1)) / stride + 1, C's truncating division.
Deconvolution: out = stride*(in - 1) + dilation*(kernel-1) + 1 - 2*pad, no output padding.
DeepLab v1's `hole`/`hole_h`/`hole_w` mean dilation. Weights: Convolution's blob 0 (num_output,
C/group, *kernel) is torch's Conv weight; Deconvolution's blob 0 (C, num_output/group, *kernel)
is exactly torch's ConvTranspose weight (no transpose, no flip); blob 1 the bias (num_output,).
A layer the caffemodel lacks whose weight_filler (and bias_filler, with a bias) are given as
constants gets them (FPN's fixed nearest up-sampling: a depthwise deconvolution of ones).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from ..geometry import canonical_axis, cdiv, collapse, per_axis
from ..spec import AxisRule, Cost, LayerSpec, nn, one_size


@dataclass(frozen=True)
class ConvGeometry:
    """A convolution's parameters, one value per spatial axis (BaseConvolutionLayer::LayerSetUp)."""

    axis: int                   # the channel axis
    kernel: tuple
    stride: tuple
    pad: tuple
    dilation: tuple
    num_output: int
    group: int
    channels: int               # input channels
    bias: bool

    @property
    def spatial(self) -> int:
        return len(self.kernel)

    def extent(self, i: int) -> int:
        """The dilated kernel's size along spatial axis i."""
        return self.dilation[i] * (self.kernel[i] - 1) + 1

    def conv_size(self, i: int, size: int) -> int:
        """Convolution's output size along spatial axis i (C's truncating division)."""
        return cdiv(size + 2 * self.pad[i] - self.extent(i), self.stride[i]) + 1

    def deconv_size(self, i: int, size: int) -> int:
        """Deconvolution's output size along spatial axis i."""
        return self.stride[i] * (size - 1) + self.extent(i) - 2 * self.pad[i]

    def blob_shapes(self, deconv: bool) -> list:
        """The caffemodel blobs: the weight (num_output, C/group, *kernel) of a Convolution,
        (C, num_output/group, *kernel) of a Deconvolution; the bias (num_output,)."""
        shapes = [(self.channels, self.num_output // self.group, *self.kernel) if deconv
                  else (self.num_output, self.channels // self.group, *self.kernel)]
        if self.bias:
            shapes.append((self.num_output,))
        return shapes


def conv_geometry(ctx, bottoms) -> ConvGeometry:
    """Expand kernel/stride/pad/dilation to one value per spatial axis and check the counts."""
    for i, b in enumerate(bottoms[1:], 1):
        if b != bottoms[0]:
            ctx.fail(f"all bottoms share the weights and must have one shape: bottom 0 is "
                     f"{tuple(bottoms[0])}, bottom {i} is {tuple(b)}")
    bottom = bottoms[0]
    p = ctx.p
    ca = canonical_axis(p.get("axis"), len(bottom))
    n = len(bottom) - ca - 1
    if n < 1:
        ctx.fail(f"a {len(bottom)}-axis bottom {tuple(bottom)} has no spatial axis after the "
                 f"channel axis {ca}")
    kernel = per_axis(p, "kernel_size", "kernel_h", "kernel_w", n, None)
    stride = per_axis(p, "stride", "stride_h", "stride_w", n, 1, missing_ok=False)
    pad = per_axis(p, "pad", "pad_h", "pad_w", n, 0, missing_ok=True)
    dilation = list(p.get("dilation")) or [1]
    if p.has("hole") or p.has("hole_h") or p.has("hole_w"):       # DeepLab v1 fork
        if p.get("dilation"):
            ctx.fail("give dilation or the DeepLab v1 'hole' fields, not both", "hole")
        if p.has("hole_h") or p.has("hole_w"):
            dilation = [p.get("hole_h"), p.get("hole_w")]
        else:
            dilation = [p.get("hole")]
    if len(dilation) == 1:
        dilation = dilation * n
    if len(dilation) != n:
        ctx.fail(f"dilation has {len(dilation)} values; it needs 1 or {n}", "dilation")
    for name, vals in (("kernel", kernel), ("stride", stride), ("dilation", dilation)):
        if any(v <= 0 for v in vals):
            ctx.fail(f"{name} must be > 0, got {vals}", "kernel_size" if name == "kernel" else name)
    num_output = p.get("num_output")
    group = p.get("group")
    channels = bottom[ca]
    if not p.has("num_output") or num_output <= 0:
        ctx.fail("num_output must be given and > 0", "num_output")
    if group <= 0 or channels % group or num_output % group:
        ctx.fail(f"group {group} must divide both the input channels ({channels}) and "
                 f"num_output ({num_output})", "group")
    return ConvGeometry(ca, tuple(kernel), tuple(stride), tuple(pad), tuple(dilation), num_output,
                        group, channels, p.get("bias_term"))


def conv_shape(ctx, bottoms):
    g: ConvGeometry = ctx.conf
    b = bottoms[0]
    out = list(b[:g.axis]) + [g.num_output]
    for i in range(g.spatial):
        size, k, s, p, d = b[g.axis + 1 + i], g.kernel[i], g.stride[i], g.pad[i], g.dilation[i]
        ext = g.extent(i)
        o = g.conv_size(i, size)
        ke = f"{k}" if d == 1 else f"{ext} (kernel {k}, dilation {d})"
        ctx.note(f"axis {g.axis + 1 + i}: ({size} + 2*{p} - {ke}) / {s} + 1 = {o}"
                 + (f"   (padded input {size + 2 * p})" if p else ""))
        out.append(o)
    return [tuple(out)] * len(bottoms)


def deconv_shape(ctx, bottoms):
    g: ConvGeometry = ctx.conf
    b = bottoms[0]
    out = list(b[:g.axis]) + [g.num_output]
    for i in range(g.spatial):
        size, s, p = b[g.axis + 1 + i], g.stride[i], g.pad[i]
        o = g.deconv_size(i, size)
        ctx.note(f"axis {g.axis + 1 + i}: {s}*({size} - 1) + {g.extent(i)} - 2*{p} = {o}")
        out.append(o)
    return [tuple(out)] * len(bottoms)


def conv_lower(ctx):
    """nn.Conv1d/2d/3d (Convolution) or nn.ConvTranspose1d/2d/3d (Deconvolution, whose output
    size stride*(in-1) + dilation*(k-1) + 1 - 2*pad is Caffe's, with no output_padding), with
    Caffe's kernel, stride, pad, dilation (DeepLab v1 `hole`) and group. Several bottoms share
    the weights: the module is called once per bottom."""
    g: ConvGeometry = ctx.conf
    if g.axis != 1:
        ctx.unsupported(f"convolution over channel axis {g.axis}: torch's Conv layers take the "
                        f"channels on axis 1")
    if g.spatial > 3:
        ctx.unsupported(f"{g.spatial}-D convolution: torch has Conv1d, Conv2d and Conv3d only")
    kw = {"kernel_size": collapse(g.kernel)}
    if any(s != 1 for s in g.stride):
        kw["stride"] = collapse(g.stride)
    if any(g.pad):
        kw["padding"] = collapse(g.pad)
    if any(d != 1 for d in g.dilation):
        kw["dilation"] = collapse(g.dilation)
    if g.group != 1:
        kw["groups"] = g.group
    if not g.bias:
        kw["bias"] = False
    cls = "Conv" if ctx.layer.type == "Convolution" else "ConvTranspose"
    return ctx.module(nn(f"{cls}{g.spatial}d"), g.channels, g.num_output,
                      call="each" if len(ctx.bottoms) > 1 else "single", **kw)


def conv_weights(ctx, blobs):
    """Blob 0 is the weight as stored: (num_output, C/group, *kernel) for Convolution,
    (C, num_output/group, *kernel) for Deconvolution; blob 1 the bias."""
    g: ConvGeometry = ctx.conf
    arrays = ctx.expect_blobs(blobs, g.blob_shapes(ctx.layer.type == "Deconvolution"))
    return dict(zip(("weight", "bias"), arrays))


def conv_cost(ctx) -> Cost:
    """Per bottom, every output value is a dot product of C/group * prod(kernel) inputs
    (dilation spreads the taps, it adds none): N * num_output * prod(top spatial) * C/group *
    prod(kernel). A Deconvolution scatters every input value through C_out/group * prod(kernel)
    weights: N * C * prod(bottom spatial) * num_output/group * prod(kernel) (Caffe's GEMM)."""
    g: ConvGeometry = ctx.conf
    deconv = ctx.layer.type == "Deconvolution"
    taps = math.prod(g.kernel)
    macs = 0
    for b, t in zip(ctx.bottoms, ctx.tops):
        outer = math.prod(b[:g.axis])
        if deconv:
            macs += outer * g.channels * math.prod(b[g.axis + 1:]) * g.num_output // g.group * taps
        else:
            macs += outer * g.num_output * math.prod(t[g.axis + 1:]) * g.channels // g.group * taps
    return Cost(tuple(g.blob_shapes(deconv)), macs)


def deconv_reach(kernel: int, stride: int, dilation: int) -> Fraction:
    """The most bottom steps the inputs of one Deconvolution output span: output o takes input i
    through tap m when i*stride + m*dilation = o + pad, so per residue of o the taps that hit a
    whole i, and the span of those i."""
    spans = []
    for r in range(stride):
        taps = [m for m in range(kernel) if (r - m * dilation) % stride == 0]
        if taps:
            spans.append((taps[-1] - taps[0]) * dilation // stride)
    return Fraction(max(spans))


def conv_axes(ctx) -> dict:
    """Each spatial axis: x_top = x/stride + (pad - (extent - 1)/2)/stride for a Convolution, and
    x_top = stride*x + (extent - 1)/2 - pad for a Deconvolution (coord_map.py); the bottoms (all
    of one shape) map alike."""
    g: ConvGeometry = ctx.conf
    rules = {}
    for i in range(g.spatial):
        s, ext, p = g.stride[i], g.extent(i), g.pad[i]
        if ctx.layer.type == "Deconvolution":
            rule = AxisRule(one_size(lambda n, i=i: g.deconv_size(i, n)),
                            Fraction(s), Fraction(ext - 1, 2) - p,
                            deconv_reach(g.kernel[i], s, g.dilation[i]))
        else:
            rule = AxisRule(one_size(lambda n, i=i: g.conv_size(i, n)),
                            Fraction(1, s), (p - Fraction(ext - 1, 2)) / s, Fraction(ext - 1))
        rules[g.axis + 1 + i] = rule
    return rules


SPECS = [
    LayerSpec("Convolution", conv_shape, param="convolution_param", conf=conv_geometry,
              bottoms=(1, None), tops=(1, None), in_place=False, lower=conv_lower,
              weights=conv_weights, cost=conv_cost, axes=conv_axes,
              fillers=("weight_filler", "bias_filler")),
    LayerSpec("Deconvolution", deconv_shape, param="convolution_param", conf=conv_geometry,
              bottoms=(1, None), tops=(1, None), in_place=False, lower=conv_lower,
              weights=conv_weights, cost=conv_cost, axes=conv_axes,
              fillers=("weight_filler", "bias_filler")),
]
