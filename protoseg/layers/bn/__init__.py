"""BN (PSPNet's and SegNet's fork layer; caffe-semantics.md §3.15): per-channel
y = slope * (x - mean) / sqrt(var + eps) + bias with stored statistics (PSPNet: blobs slope, bias,
mean, var, each (1, C, 1, 1)); SegNet's `bn_mode: INFERENCE` applies scale and shift directly."""
from __future__ import annotations

from ..scale import SCALE_MODULE
from ..spec import Cost, LayerSpec, nn, same_shape, spatial_axes


def _segnet(ctx) -> bool:
    return ctx.p.has("bn_mode") or ctx.p.has("scale_filler") or ctx.p.has("shift_filler")


def bn_fork_lower(ctx):
    """PSPNet: nn.BatchNorm2d(C, eps) with weight = slope, bias = bias and the stored mean/var used
    as they are (at TEST, or `frozen`); a TRAIN-phase layer normalises with batch statistics.
    SegNet `bn_mode: INFERENCE`: y = scale * x + shift (CaffeScale over axes 1..3 of the (1, C, 1,
    1) blobs); SegNet LEARN: batch statistics, eps 1e-9, then scale and shift."""
    b = ctx.bottoms[0]
    if len(b) != 4:
        ctx.unsupported(f"BN of a {len(b)}-axis blob {tuple(b)} (the forks' BN is 4-D)")
    c = b[1]
    p = ctx.p
    if _segnet(ctx):
        init = ctx.constant_filler("scale_filler", 1.0)
        shift = ctx.constant_filler("shift_filler", 0.0)
        if p.get("bn_mode") == "INFERENCE":
            kw = {"bias_term": True}
            if init != 1.0:
                kw["init"] = init
            if shift != 0.0:
                kw["bias_init"] = shift
            return ctx.module(SCALE_MODULE, (1, c, 1, 1), **kw)
        return ctx.module(nn("BatchNorm2d"), c, eps=1e-9, track_running_stats=False)
    kw = {}
    if p.get("eps") != 1e-5:
        kw["eps"] = p.get("eps")
    if not (ctx.phase == "TEST" or p.get("frozen")):
        kw["track_running_stats"] = False
    return ctx.module(nn("BatchNorm2d"), c, **kw)


def bn_fork_weights(ctx, blobs):
    """PSPNet: slope, bias, mean, var, each (1, C, 1, 1). SegNet: scale, shift, each (1, C, 1, 1)."""
    c = ctx.bottoms[0][1]
    if _segnet(ctx):
        scale, shift = ctx.expect_blobs(blobs, bn_fork_blobs(ctx))
        if ctx.p.get("bn_mode") == "INFERENCE":
            return {"weight": scale, "bias": shift}
        return {"weight": scale.reshape(c), "bias": shift.reshape(c)}
    slope, bias, mean, var = (a.reshape(c) for a in ctx.expect_blobs(blobs, bn_fork_blobs(ctx)))
    out = {"weight": slope, "bias": bias}
    if ctx.phase == "TEST" or ctx.p.get("frozen"):
        out.update(running_mean=mean, running_var=var)
    return out


def bn_fork_blobs(ctx) -> list:
    """PSPNet: slope, bias, mean, var; SegNet: scale, shift; each (1, C, 1, 1)."""
    return [(1, ctx.bottoms[0][1], 1, 1)] * (2 if _segnet(ctx) else 4)


SPECS = [LayerSpec("BN", same_shape, param="bn_param", lower=bn_fork_lower, weights=bn_fork_weights,
                   cost=lambda ctx: Cost(tuple(bn_fork_blobs(ctx))), axes=spatial_axes)]
