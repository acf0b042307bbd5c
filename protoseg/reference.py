"""References for `protoseg diff`: other Caffe implementations the compiled module is compared with.

A reference is a `Reference`: a `name`, `run` (the net once on given inputs, every layer's tops
back) and `deviation` (where it is known not to compute what Caffe computes). `OpenCV` is the
first one: OpenCV dnn's Caffe importer (cv2.dnn.readNetFromCaffe, OpenCV 4.x; OpenCV 5 removed
it). Its known deviations are the ones docs/opencv.md measured; a reference Caffe would have none.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod

from .errors import ToolError
from .layers import spec_of

__all__ = ["Reference", "OpenCV", "INSTALL_OPENCV"]

INSTALL_OPENCV = ('pip install "opencv-python-headless>=4.8,<5" (OpenCV 5 removed the Caffe '
                  'importer)')


class Reference(ABC):
    """A Caffe implementation to compare with."""

    name: str = "reference"

    @abstractmethod
    def run(self, prototxt: str, weights: str, net, inputs: dict) -> dict:
        """Run the net (the prototxt and caffemodel files, `net` the protoseg Net read from the
        same prototxt) once on `inputs` {blob: float32 array}. Returns {index of the layer in
        net.layers: [one array per top, or None where this reference does not give that top]}
        for every layer it computes."""

    def deviation(self, layer, ctx) -> str | None:
        """Why this reference may differ from Caffe at `layer` (ctx: its LowerContext: params,
        conf, bottom and top shapes), or None where it is not known to."""
        return None


class OpenCV(Reference):
    """OpenCV dnn's Caffe importer, on its own CPU backend with layer fusion off (every layer's
    output is computed on its own, as Caffe does)."""

    def __init__(self):
        try:
            import cv2
        except ImportError:
            raise ToolError("the reference for protoseg diff is OpenCV's Caffe importer, and "
                            "OpenCV (cv2) is not installed", hint=INSTALL_OPENCV) from None
        if not hasattr(getattr(cv2, "dnn", None), "readNetFromCaffe"):
            raise ToolError(f"OpenCV {cv2.__version__} has no Caffe importer "
                            f"(cv2.dnn.readNetFromCaffe)", hint=INSTALL_OPENCV)
        self.cv2 = cv2
        self.name = f"OpenCV {cv2.__version__} (cv2.dnn.readNetFromCaffe)"

    def run(self, prototxt, weights, net, inputs) -> dict:
        import numpy as np
        cv2 = self.cv2
        logging = cv2.utils.logging
        level = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)    # its errors come back as exceptions
        try:
            try:
                cv_net = cv2.dnn.readNetFromCaffe(os.fspath(prototxt), os.fspath(weights))
                matched = self._match(cv_net, net)      # makes every layer
            except cv2.error as e:
                raise _failed("cannot load the net", e) from None
            cv_net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            cv_net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
            cv_net.enableFusion(False)
            for blob, array in inputs.items():
                cv_net.setInput(np.ascontiguousarray(array, np.float32), blob)
            try:
                outputs = cv_net.forwardAndRetrieve([name for _, name in matched])
            except cv2.error as e:
                raise _failed("failed to run the net", e) from None
        finally:
            logging.setLogLevel(level)
        out = {}
        for (i, _), tops in zip(matched, outputs):
            n = len(net.layers[i].tops)
            arrays = [np.asarray(a, np.float32) for a in tops][:n]
            out[i] = arrays + [None] * (n - len(arrays))   # OpenCV keeps only the tops it uses
        return out

    @staticmethod
    def _match(cv_net, net) -> list:
        """[(index in net.layers, OpenCV layer name)]: OpenCV adds the layers in file order
        (the net's inputs become inputs, not layers), names a Convolution after its top, and
        inserts a few of its own (an MVN before a BatchNorm that uses batch statistics). A layer
        it does not have is left out (its tops are then not given)."""
        cv_layers = [(name, cv_net.getLayer(cv_net.getLayerId(name)).type)
                     for name in cv_net.getLayerNames()]
        matched, j = [], 0
        for i, layer in enumerate(net.layers):
            if spec_of(layer).source:
                continue
            names = {layer.name, *layer.tops[:1]}
            k = next((k for k in range(j, len(cv_layers))
                      if cv_layers[k][1] == layer.type and cv_layers[k][0] in names), None)
            if k is not None:
                matched.append((i, cv_layers[k][0]))
                j = k + 1
        return matched

    def deviation(self, layer, ctx) -> str | None:
        rule = _OPENCV_DEVIATIONS.get(layer.type)
        return rule(layer, ctx) if rule else None


def _failed(what: str, e) -> ToolError:
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    return ToolError(f"OpenCV {what}: {lines[-1] if lines else e}",
                     hint="docs/opencv.md lists what OpenCV's Caffe importer cannot load or run")


# -- where OpenCV 4.x computes something other than Caffe (docs/opencv.md, "Where OpenCV is not
# an oracle"); each rule: (layer, ctx) -> what OpenCV does differently, or None

def _lrn(layer, ctx):
    p = ctx.p
    if p.get("norm_region") == "ACROSS_CHANNELS" and p.get("k") != 1:
        return f"OpenCV ignores LRN's k ({p.get('k'):g}) and uses 1"


def _mvn(layer, ctx):
    if ctx.p.get("normalize_variance"):
        return ("OpenCV adds MVN's eps inside the square root, (x - mean) / sqrt(var + eps); "
                "Caffe adds it after, (x - mean) / (sqrt(var) + eps)")


def _log(layer, ctx):
    p = ctx.p
    if (p.get("base"), p.get("scale"), p.get("shift")) != (-1, 1, 0):
        return "OpenCV ignores Log's base, scale and shift and computes ln(x)"


def _swish(layer, ctx):
    if ctx.p.get("beta") != 1:
        return "OpenCV ignores Swish's beta and uses 1"


def _inner_product(layer, ctx):
    if ctx.p.get("transpose"):
        return "OpenCV ignores `transpose: true` and reads the (K, N) weights as (N, K)"


def _deconvolution(layer, ctx):
    if any(d != 1 for d in ctx.conf.dilation):
        return "OpenCV ignores a deconvolution's dilation"


def _pooling(layer, ctx):
    g = ctx.conf
    if g.global_pooling:
        return None
    if (g.pad[0] == 0) != (g.pad[1] == 0):
        return ("OpenCV clips the last pooling window only along the padded axis; Caffe clips "
                "both axes when either pad is set")
    (H, W), (h, w) = ctx.bottoms[0][2:], ctx.tops[0][2:]
    if g.pool == "MAX" and not any(g.pad) and ((h - 1) * g.stride[0] >= H or (w - 1) * g.stride[1] >= W):
        return ("the last pooling window lies outside the input (stride > kernel, no pad): "
                "OpenCV gives 0 there, Caffe -FLT_MAX")


def _interp(layer, ctx):
    p = ctx.p
    if p.get("shrink_factor") != 1 or p.get("pad_beg") or p.get("pad_end"):
        return "OpenCV ignores Interp's shrink_factor, pad_beg and pad_end"


def _legacy_axis(field):
    def rule(layer, ctx):
        if ctx.p.has(field) and ctx.p.get(field) != 1:
            return f"OpenCV ignores the legacy {field} and uses axis 1"
    return rule


def _scale(layer, ctx):
    if len(layer.bottoms) == 2 and ctx.p.get("bias_term"):
        return "OpenCV drops the second bottom of a two-bottom Scale with bias_term: it computes x + b"


def _prior_box(layer, ctx):
    p = ctx.p
    if p.has("img_size") or p.has("img_h") or p.has("img_w"):
        return "OpenCV ignores PriorBox's img_size, img_h and img_w and uses the image bottom's size"


def _batch_norm(layer, ctx):
    from .layers.batch_norm import _global_stats
    if not _global_stats(ctx) and (ctx.bottoms[0][0] > 1 or not ctx.p.has("use_global_stats")):
        return ("Caffe normalizes with the batch's own statistics here; OpenCV does that only for "
                "an explicit `use_global_stats: false` with batch 1")


_OPENCV_DEVIATIONS = {
    "LRN": _lrn, "MVN": _mvn, "Log": _log, "Swish": _swish, "InnerProduct": _inner_product,
    "Deconvolution": _deconvolution, "Pooling": _pooling, "Interp": _interp,
    "Concat": _legacy_axis("concat_dim"), "Slice": _legacy_axis("slice_dim"), "Scale": _scale,
    "PriorBox": _prior_box, "BatchNorm": _batch_norm,
}
