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

from dataclasses import dataclass

from ..geometry import canonical_axis, cdiv, collapse, per_axis
from ..spec import LayerSpec, nn


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
        o = cdiv(size + 2 * p - ext, s) + 1
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
        o = s * (size - 1) + g.extent(i) - 2 * p
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
    if ctx.layer.type == "Convolution":
        shapes = [(g.num_output, g.channels // g.group, *g.kernel)]
    else:
        shapes = [(g.channels, g.num_output // g.group, *g.kernel)]
    if g.bias:
        shapes.append((g.num_output,))
    arrays = ctx.expect_blobs(blobs, shapes)
    return dict(zip(("weight", "bias"), arrays))


SPECS = [
    LayerSpec("Convolution", conv_shape, param="convolution_param", conf=conv_geometry,
              bottoms=(1, None), tops=(1, None), in_place=False, lower=conv_lower,
              weights=conv_weights, fillers=("weight_filler", "bias_filler")),
    LayerSpec("Deconvolution", deconv_shape, param="convolution_param", conf=conv_geometry,
              bottoms=(1, None), tops=(1, None), in_place=False, lower=conv_lower,
              weights=conv_weights, fillers=("weight_filler", "bias_filler")),
]
