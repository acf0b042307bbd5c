"""MultiStageMeanfield (CRF-RNN fork, torrvision/caffe branch crfrnn: multi_stage_meanfield.cpp):
the CRF as a recurrent net. Bottoms: the unaries (N, C, H, W), the softmax input of the first
iteration (the same shape; a copy of the unaries in CRF-RNN's nets) and the RGB image (N, 3, H,
W); top: the final Q (N, C, H, W), the first bottom's shape (LayerSetUp: num, channels, height,
width). Blobs: the spatial and bilateral kernel weights and the compatibility matrix, each
(1, 1, C, C). LayerSetUp checks num_iterations > 1.

Not compiled: each of its num_iterations mean-field steps filters with Gaussian kernels on a
permutohedral lattice built from the pixel positions and colours (modified_permutohedral.cpp),
which protoseg does not implement; a net that needs its output is refused with that reason.
"""
from __future__ import annotations

from ..spec import LayerSpec


def meanfield_shape(ctx, bottoms):
    unary, q0, image = bottoms
    if ctx.p.get("num_iterations") <= 1:
        ctx.fail(f"num_iterations must be > 1, got {ctx.p.get('num_iterations')}", "num_iterations")
    if len(unary) != 4 or q0 != unary:
        ctx.fail(f"the unaries (bottom 0) must be (N, C, H, W) and the first softmax input (bottom 1) "
                 f"the same; got {tuple(unary)} and {tuple(q0)}")
    if len(image) != 4 or image[1] != 3 or (image[0], *image[2:]) != (unary[0], *unary[2:]):
        ctx.fail(f"the image (bottom 2) must be (N, 3, H, W) of the unaries' N, H, W {tuple(unary)}; "
                 f"got {tuple(image)}")
    ctx.note(f"{ctx.p.get('num_iterations')} mean-field iterations over {unary[1]} labels")
    return [tuple(unary)]


SPECS = [LayerSpec("MultiStageMeanfield", meanfield_shape, param="multi_stage_meanfield_param",
                   bottoms=(3, 3), in_place=False,
                   uncompiled="no (permutohedral-lattice filtering is not implemented)")]
