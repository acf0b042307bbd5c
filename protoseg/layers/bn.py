"""BN (PSPNet's and SegNet's fork layer; caffe-semantics.md §3.15): per-channel
y = slope * (x - mean) / sqrt(var + eps) + bias with stored statistics (PSPNet: blobs slope, bias,
mean, var, each (1, C, 1, 1)); SegNet's `bn_mode: INFERENCE` applies scale and shift directly."""
from __future__ import annotations

from . import LayerSpec, same_shape

SPECS = [LayerSpec("BN", same_shape, param="bn_param")]
