"""BatchNorm (batch_norm_layer.cpp; caffe-semantics.md §2.15, §3.6).

Blobs: mean_sum (C,), var_sum (C,), factor (1,). mean = mean_sum / factor, var = var_sum / factor
(factor 0 gives 0). y = (x - mean) / sqrt(var + eps). `use_global_stats` unset means
"layer phase is TEST". No scale or shift: Caffe nets follow it with a Scale layer.
"""
from __future__ import annotations

from ..spec import Cost, LayerSpec, nn, spatial_axes


def bn_shape(ctx, bottoms):
    b = bottoms[0]
    if len(b) < 1:
        ctx.fail("BatchNorm needs a bottom with at least 1 axis")
    return [b]


def _global_stats(ctx) -> bool:
    p = ctx.p
    return p.get("use_global_stats") if p.has("use_global_stats") else ctx.phase == "TEST"


def bn_lower(ctx):
    """nn.BatchNorm1d/2d/3d(C, eps, affine=False). With the stored statistics (use_global_stats,
    true by default at TEST) their running_mean / running_var are Caffe's blobs divided by the
    factor blob (see bn_weights). With `use_global_stats: false` (explicit, or a TRAIN-phase
    layer) Caffe normalises with the batch's own mean and biased variance:
    track_running_stats=False does the same in any mode."""
    b = ctx.bottoms[0]
    cls = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}.get(len(b))
    if cls is None:
        ctx.unsupported(f"BatchNorm of a {len(b)}-axis blob {tuple(b)}: torch's BatchNorm takes "
                        f"2 to 5 axes")
    kw = {}
    if ctx.p.get("eps") != 1e-5:
        kw["eps"] = ctx.p.get("eps")
    kw["affine"] = False
    if not _global_stats(ctx):
        kw["track_running_stats"] = False
    return ctx.module(nn(cls), b[1], **kw)


def bn_weights(ctx, blobs):
    """mean = blob0 * f, var = blob1 * f with f = 1 / blob2[0], or 0 when blob2[0] is 0 (then
    y = x / sqrt(eps)), computed in float32 as Caffe does."""
    import numpy as np
    mean, var, factor = ctx.expect_blobs(blobs, bn_blobs(ctx))
    if not _global_stats(ctx):
        return {}
    f = np.float32(0) if factor[0] == 0 else np.float32(1) / factor[0]
    return {"running_mean": mean * f, "running_var": var * f}


def bn_blobs(ctx) -> list:
    """mean_sum (C,), var_sum (C,), the scale factor (1,)."""
    c = ctx.bottoms[0][1]
    return [(c,), (c,), (1,)]


SPECS = [LayerSpec("BatchNorm", bn_shape, param="batch_norm_param", lower=bn_lower,
                   weights=bn_weights, cost=lambda ctx: Cost(tuple(bn_blobs(ctx))),
                   axes=spatial_axes)]
