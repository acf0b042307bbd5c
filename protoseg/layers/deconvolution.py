"""Deconvolution (deconv_layer.cpp; caffe-semantics.md §2.3, §3.2).

out = stride*(in - 1) + dilation*(kernel-1) + 1 - 2*pad. No output padding. Weights: blob 0
(C_in, num_output/group, *kernel) is exactly torch's ConvTranspose weight layout: copied as is,
no transpose, no flip.
"""
from __future__ import annotations

from . import LayerSpec
from .convolution import _same_bottoms, conv_geometry


def deconv_shape(ctx, bottoms):
    _same_bottoms(ctx, bottoms)
    b = bottoms[0]
    g = conv_geometry(ctx, b)
    ca = g["axis"]
    out = list(b[:ca]) + [g["num_output"]]
    for i in range(g["n"]):
        size, k, s, p, d = b[ca + 1 + i], g["kernel"][i], g["stride"][i], g["pad"][i], g["dilation"][i]
        ext = d * (k - 1) + 1
        o = s * (size - 1) + ext - 2 * p
        ctx.note(f"axis {ca + 1 + i}: {s}*({size} - 1) + {ext} - 2*{p} = {o}")
        out.append(o)
    return [tuple(out)] * len(bottoms)


def deconv_lower(ctx):
    """nn.ConvTranspose1d/2d/3d: the output size stride*(in-1) + dilation*(k-1) + 1 - 2*pad is
    Caffe's, with no output_padding."""
    from .convolution import _conv_kwargs
    g = conv_geometry(ctx, ctx.bottoms[0])
    kw = _conv_kwargs(ctx, g, True)
    return ctx.module(f"nn.ConvTranspose{g['n']}d", g["channels"], g["num_output"],
                      call="each" if len(ctx.bottoms) > 1 else "single", **kw)


def deconv_weights(ctx, blobs):
    """Blob 0 (C_in, num_output/group, *kernel) is ConvTranspose's weight as it is: no transpose
    of the first two axes, no flip. Blob 1 the bias (num_output,)."""
    g = conv_geometry(ctx, ctx.bottoms[0])
    shapes = [(g["channels"], g["num_output"] // g["group"], *g["kernel"])]
    if g["bias"]:
        shapes.append((g["num_output"],))
    arrays = ctx.expect_blobs(blobs, shapes)
    return dict(zip(("weight", "bias"), arrays))


SPECS = [LayerSpec("Deconvolution", deconv_shape, param="convolution_param", bottoms=(1, None),
                   tops=(1, None), in_place=False, lower=deconv_lower, weights=deconv_weights)]
