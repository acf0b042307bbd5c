"""Random caffemodels for the seed nets of prototxts/, written as Caffe's Net::ToProto writes a
trained net: every layer with parameters gets its own copy of its blobs, and a layer whose
`param { name }` names an earlier layer's parameters (DeepLab v2 MSc's 0.5 and 0.75 towers)
holds a copy of that layer's blobs.

The blob shapes are derived here from the layer parameters and the bottom shapes (Caffe's
LayerSetUp: Convolution (num_output, C/group, k, k) + bias, Deconvolution (C, num_output/group,
k, k) + bias, BatchNorm mean/variance (C,) and factor (1,), Scale gamma (C,) + beta), not from
protoseg's weight mapping. Values are zero-mean uniform with He scale for convolutions, small
biases, BatchNorm statistics stored times their factor, Scale gammas in [0.3, 0.7] (so 100
residual blocks keep finite activations); one seeded generator per layer.
"""
from __future__ import annotations

import math

import numpy as np

import protoseg
from protoseg.caffemodel import write_caffemodel

BN_FACTOR = 4.0


def _uniform(rng, shape, std):
    return ((rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(std * math.sqrt(12.0)))


def _fixed(p) -> float | None:
    """The value of an explicitly given constant weight_filler, else None."""
    if not p.has("weight_filler"):
        return None
    f = p.get("weight_filler")
    return float(f.get("value")) if f.get("type") == "constant" else None


def _blobs(layer, bottom, rng, fixed):
    c = bottom[1] if bottom else None
    if layer.type in ("Convolution", "Deconvolution"):
        p = layer.params.get("convolution_param")
        n, g, (k,) = p.get("num_output"), p.get("group"), p.get("kernel_size")
        shape = (n, c // g, k, k) if layer.type == "Convolution" else (c, n // g, k, k)
        if fixed is not None:
            w = np.full(shape, fixed, np.float32)
        else:
            w = _uniform(rng, shape, math.sqrt(2.0 / (shape[1] * k * k)))
        return [w] + ([_uniform(rng, (n,), 0.05)] if p.get("bias_term") else [])
    if layer.type == "BatchNorm":
        mean = _uniform(rng, (c,), 0.1) * np.float32(BN_FACTOR)
        var = (rng.random(c, dtype=np.float32) + np.float32(0.5)) * np.float32(BN_FACTOR)
        return [mean, var, np.array([BN_FACTOR], np.float32)]
    if layer.type == "Scale":
        gamma = rng.random(c, dtype=np.float32) * np.float32(0.4) + np.float32(0.3)
        bias = layer.params.get("scale_param").get("bias_term")
        return [gamma] + ([_uniform(rng, (c,), 0.05)] if bias else [])
    return []


def seed_layers(prototxt, size: int, seed: int = 0, *, fillers: bool = False):
    """[(name, type, [blobs])] for a seed net at input size `size`. Layers whose weights come
    from a constant weight_filler are left out (Caffe and protoseg fill them), or with
    `fillers=True` written with the filler's values (for OpenCV, which does not apply fillers)."""
    net = protoseg.load_net(prototxt)
    shapes = protoseg.infer_shapes(net, {"data": (1, 3, size, size)})
    owners: dict = {}            # first param name -> the blobs of the layer that named it
    out = []
    for i, layer in enumerate(net.layers):
        p = layer.params.get("convolution_param") if layer.type in ("Convolution", "Deconvolution") else None
        fixed = _fixed(p) if p is not None else None
        names = [s.get("name") for s in layer.params.get("param")]
        if names and names[0] in owners:
            blobs = owners[names[0]]
        else:
            blobs = _blobs(layer, shapes.of(layer.name).bottoms[0] if layer.bottoms else None,
                           np.random.default_rng([seed, i]), fixed)
            if names and names[0]:
                owners[names[0]] = blobs
        if blobs and (fixed is None or fillers):
            out.append((layer.name, layer.type, blobs))
    return out


def write_seed_caffemodel(path, prototxt, size: int, seed: int = 0, *, fillers: bool = False) -> int:
    return write_caffemodel(path, seed_layers(prototxt, size, seed, fillers=fillers))
