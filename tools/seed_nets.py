"""Writes the four new seed prototxts and their golden shape tables.

The shapes are computed here, layer by layer, with Caffe's integer rules (an independent model of
the shape pass; protoseg is not imported). Run from the repository root:
    python tools/seed_nets.py .
(it rewrites prototxts/{deeplab_v1_largefov,deeplab_v2_aspp_vgg16,deeplab_v2_resnet101_msc,
fpn_resnet50}.prototxt and their tests/golden/ tables; tests/test_seed_nets.py checks both).
"""
import json
import sys
from pathlib import Path


def conv_out(n, k, s=1, p=0, d=1):
    num = n + 2 * p - d * (k - 1) - 1
    assert num >= 0, (n, k, s, p, d)
    return num // s + 1


def pool_out(n, k, s, p):            # CEIL, with the clip rule when the layer has padding
    out = -(-(n + 2 * p - k) // s) + 1
    if p > 0 and (out - 1) * s >= n + p:
        out -= 1
    return out


def deconv_out(n, k, s, p=0, d=1):
    return s * (n - 1) + d * (k - 1) + 1 - 2 * p


class Writer:
    def __init__(self, name, header, size):
        self.name = name
        self.lines = [f"# {h}" if h else "#" for h in header] + [f'name: "{name}"']
        self.shapes = {}                 # blob -> shape
        self.rows = []                   # [layer, type, [top shapes]]
        self.size = size
        self.lines.append('layer {\n  name: "input"  type: "Input"  top: "data"\n'
                          f'  input_param {{ shape {{ dim: 1 dim: 3 dim: {size} dim: {size} }} }}\n}}')
        self.shapes["data"] = (1, 3, size, size)
        self.rows.append(["input", "Input", [[1, 3, size, size]]])

    def comment(self, text):
        self.lines.append(f"# {text}")

    def _emit(self, name, type_, bottoms, tops, body, shape):
        bt = "  ".join([f'bottom: "{b}"' for b in bottoms] + [f'top: "{t}"' for t in tops])
        if body:
            self.lines.append("layer {\n" f'  name: "{name}"  type: "{type_}"\n  {bt}\n'
                              + "".join(f"  {b}\n" for b in body) + "}")
        else:
            self.lines.append(f'layer {{ name: "{name}"  type: "{type_}"  {bt} }}')
        for t in tops:
            self.shapes[t] = shape
        self.rows.append([name, type_, [list(shape) for _ in tops]])
        return shape

    @staticmethod
    def _params(names):
        return [" ".join(f'param {{ name: "{n}" }}' for n in names)] if names else []

    def conv(self, name, bottom, top, num_output, k, s=1, p=0, d=1, bias=True, params=None,
             extra=()):
        n, c, h, w = self.shapes[bottom]
        f = [f"num_output: {num_output}"]
        if not bias:
            f.append("bias_term: false")
        f.append(f"kernel_size: {k}")
        if p:
            f.append(f"pad: {p}")
        if s != 1:
            f.append(f"stride: {s}")
        if d != 1:
            f.append(f"dilation: {d}")
        body = self._params(params) + ["convolution_param { " + " ".join(f) + " }"]
        return self._emit(name, "Convolution", [bottom], [top], body,
                          (n, num_output, conv_out(h, k, s, p, d), conv_out(w, k, s, p, d)))

    def nearest_up(self, name, bottom, top, factor):
        """Depthwise deconvolution, kernel = stride = factor, weights 1, no bias: nearest xfactor."""
        n, c, h, w = self.shapes[bottom]
        body = ["param { lr_mult: 0 decay_mult: 0 }",
                f"convolution_param {{ num_output: {c} group: {c} bias_term: false "
                f"kernel_size: {factor} stride: {factor}",
                '                    weight_filler { type: "constant" value: 1 } }']
        return self._emit(name, "Deconvolution", [bottom], [top], body,
                          (n, c, deconv_out(h, factor, factor), deconv_out(w, factor, factor)))

    def pool(self, name, bottom, top, pool, k, s, p=0):
        n, c, h, w = self.shapes[bottom]
        f = f"pool: {pool} kernel_size: {k} stride: {s}" + (f" pad: {p}" if p else "")
        return self._emit(name, "Pooling", [bottom], [top], ["pooling_param { " + f + " }"],
                          (n, c, pool_out(h, k, s, p), pool_out(w, k, s, p)))

    def inplace(self, name, type_, blob, body=()):
        return self._emit(name, type_, [blob], [blob], list(body), self.shapes[blob])

    def relu(self, name, blob):
        return self.inplace(name, "ReLU", blob)

    def bn_scale(self, bn, scale, blob, bn_params=None, scale_params=None):
        self.inplace(bn, "BatchNorm", blob,
                     self._params(bn_params) + ["batch_norm_param { use_global_stats: true }"])
        self.inplace(scale, "Scale", blob,
                     self._params(scale_params) + ["scale_param { bias_term: true }"])

    def eltwise(self, name, bottoms, top, op):
        shapes = {self.shapes[b] for b in bottoms}
        assert len(shapes) == 1, (name, shapes)
        return self._emit(name, "Eltwise", bottoms, [top], [f"eltwise_param {{ operation: {op} }}"],
                          shapes.pop())

    def crop(self, name, bottom, ref, top):
        n, c, h, w = self.shapes[bottom]
        rh, rw = self.shapes[ref][2:]
        assert h >= rh and w >= rw, (name, h, rh)
        return self._emit(name, "Crop", [bottom, ref], [top], ["crop_param { axis: 2 offset: 0 }"],
                          (n, c, rh, rw))

    def interp(self, name, bottom, top, zoom=None, shrink=None, ref=None):
        n, c, h, w = self.shapes[bottom]
        f = []
        if shrink:
            f.append(f"shrink_factor: {shrink}")
            h, w = (h - 1) // shrink + 1, (w - 1) // shrink + 1
        if zoom:
            f.append(f"zoom_factor: {zoom}")
            h, w = h + (h - 1) * (zoom - 1), w + (w - 1) * (zoom - 1)
        if ref:
            h, w = self.shapes[ref][2:]
        body = ["interp_param { " + " ".join(f) + " }"] if f else []
        return self._emit(name, "Interp", [bottom] + ([ref] if ref else []), [top], body, (n, c, h, w))

    def text(self):
        return "\n".join(self.lines) + "\n"


# --------------------------------------------------------------------------------------------
# VGG-16 with DeepLab's pooling (3x3 stride 2 pad 1; pool4 and pool5 stride 1; conv5 dilation 2)

def deeplab_vgg16(w):
    blob = "data"
    for stage, (n, ch) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], start=1):
        for i in range(1, n + 1):
            name = f"conv{stage}_{i}"
            if stage == 5:
                w.conv(name, blob, name, ch, 3, p=2, d=2)
            else:
                w.conv(name, blob, name, ch, 3, p=1)
            w.relu(f"relu{stage}_{i}", name)
            blob = name
        w.pool(f"pool{stage}", blob, f"pool{stage}", "MAX", 3, 2 if stage <= 3 else 1, 1)
        blob = f"pool{stage}"
    return blob


def deeplab_v1_largefov(size):
    w = Writer("deeplab_v1_largefov", [
        "DeepLab v1 LargeFOV (Chen et al., \"Semantic Image Segmentation with Deep Convolutional Nets",
        "and Fully Connected CRFs\", ICLR 2015): VGG-16 with output stride 8 for PASCAL VOC (21",
        "classes). Layer names and parameters as in the published DeepLab-LargeFOV test/deploy nets",
        "(without their Dropout layers, identities at test time), written in current syntax",
        "(dilation instead of the V1 `hole`). Deploy form: one BGR image,",
        "mean-subtracted (104.008, 116.669, 122.675), 513x513 (any 8k+1 size keeps the strides",
        "exact: pools 513 -> 257 -> 129 -> 65, fc8 65, Interp zoom 8: 65 + 64*7 = 513).",
        "Written for protoseg's tests and examples; the shapes are in",
        "tests/golden/deeplab_v1_largefov.json (513) and deeplab_v1_largefov_321.json.",
    ], size)
    blob = deeplab_vgg16(w)
    w.pool("pool5a", blob, "pool5a", "AVE", 3, 1, 1)
    w.conv("fc6", "pool5a", "fc6", 1024, 3, p=12, d=12)
    w.relu("relu6", "fc6")
    w.conv("fc7", "fc6", "fc7", 1024, 1)
    w.relu("relu7", "fc7")
    w.conv("fc8_voc12", "fc7", "fc8_voc12", 21, 1)
    w.comment("bilinear (align corners) x8: (h - 1)*8 + 1, the input size for 8k+1 inputs")
    w.interp("fc8_interp", "fc8_voc12", "fc8_interp", zoom=8)
    return w


def deeplab_v2_aspp_vgg16(size):
    w = Writer("deeplab_v2_aspp_vgg16", [
        "DeepLab v2 VGG-16 ASPP-L (Chen et al., \"DeepLab: Semantic Image Segmentation with Deep",
        "Convolutional Nets, Atrous Convolution, and Fully Connected CRFs\", TPAMI 2017) for PASCAL",
        "VOC (21 classes): the DeepLab VGG-16 body (output stride 8), then four fc6-fc7-fc8 branches",
        "with fc6 dilations 6, 12, 18 and 24, summed. Layer names and parameters as in the published",
        "DeepLab v2 VGG-16 ASPP test net, without its Dropout layers. Deploy form: one BGR image, mean-subtracted (104.008,",
        "116.669, 122.675), 513x513.",
        "The score is brought to the input size as the original does, with Interp zoom_factor 8:",
        "(65 - 1)*8 + 1 = 513. For 8k+1 inputs this is exactly the input size and align-corners",
        "puts score pixel i on image pixel 8i, where the stride-8 features are centred; a second",
        "bottom (a fork extension that not every Interp has) would stretch other sizes by",
        "(H - 1)/(h - 1) != 8 and shift the labels. Other sizes: pad the image to 8k+1 with the",
        "mean (as DeepLab's data layer does) and crop the score.",
        "Written for protoseg's tests and examples; the shapes are in",
        "tests/golden/deeplab_v2_aspp_vgg16.json (513) and deeplab_v2_aspp_vgg16_321.json.",
    ], size)
    deeplab_vgg16(w)
    for i, d in enumerate([6, 12, 18, 24], start=1):
        w.comment(f"branch {i}: dilation {d}")
        w.conv(f"fc6_{i}", "pool5", f"fc6_{i}", 1024, 3, p=d, d=d)
        w.relu(f"relu6_{i}", f"fc6_{i}")
        w.conv(f"fc7_{i}", f"fc6_{i}", f"fc7_{i}", 1024, 1)
        w.relu(f"relu7_{i}", f"fc7_{i}")
        w.conv(f"fc8_voc12_{i}", f"fc7_{i}", f"fc8_voc12_{i}", 21, 1)
    w.eltwise("fc8_voc12", [f"fc8_voc12_{i}" for i in range(1, 5)], "fc8_voc12", "SUM")
    w.interp("fc8_interp", "fc8_voc12", "fc8_interp", zoom=8)
    return w


# --------------------------------------------------------------------------------------------
# ResNet bottlenecks (MSRA's Caffe names: resXY_branch1, resXY_branch2a/b/c, bnXY_..., scaleXY_...)

def bottleneck(w, blk, bottom, mid, out, stride=1, dil=1, project=False, sfx="", shared=False):
    """One bottleneck block 'blk' (e.g. '4b3'). sfx is appended to every layer and blob name;
    shared: param names '<layer>_<i>' (DeepLab MSc weight sharing)."""
    def L(x):
        return x + sfx

    def P(x, n):
        return [f"{x}_{i}" for i in range(n)] if shared else None

    if project:
        br1 = f"res{blk}_branch1"
        w.conv(L(br1), bottom, L(br1), out, 1, s=stride, bias=False, params=P(br1, 1))
        w.bn_scale(L(f"bn{blk}_branch1"), L(f"scale{blk}_branch1"), L(br1),
                   P(f"bn{blk}_branch1", 3), P(f"scale{blk}_branch1", 2))
        shortcut = L(br1)
    else:
        shortcut = bottom
    blob = bottom
    for part, (ch, k, s, p, d) in zip("abc", [(mid, 1, stride, 0, 1), (mid, 3, 1, dil, dil),
                                           (out, 1, 1, 0, 1)]):
        name = f"res{blk}_branch2{part}"
        w.conv(L(name), blob, L(name), ch, k, s=s, p=p, d=d, bias=False, params=P(name, 1))
        w.bn_scale(L(f"bn{blk}_branch2{part}"), L(f"scale{blk}_branch2{part}"), L(name),
                   P(f"bn{blk}_branch2{part}", 3), P(f"scale{blk}_branch2{part}", 2))
        if part != "c":
            w.relu(L(f"{name}_relu"), L(name))
        blob = L(name)
    w.eltwise(L(f"res{blk}"), [shortcut, blob], L(f"res{blk}"), "SUM")
    w.relu(L(f"res{blk}_relu"), L(f"res{blk}"))
    return L(f"res{blk}")


def resnet_stage(w, stage, names, bottom, mid, out, stride, dil, **kw):
    blob = bottom
    for i, blk in enumerate(names):
        blob = bottleneck(w, f"{stage}{blk}", blob, mid, out, stride if i == 0 else 1, dil,
                          project=i == 0, **kw)
    return blob


def deeplab_resnet101(w, data, sfx):
    """DeepLab v2's ResNet-101: conv1 without bias, pool1 pad 1, res4 dilation 2, res5 dilation 4."""
    w.comment(f"----- ResNet-101 on '{data}' -----")
    w.conv("conv1" + sfx, data, "conv1" + sfx, 64, 7, s=2, p=3, bias=False, params=["conv1_0"])
    w.bn_scale("bn_conv1" + sfx, "scale_conv1" + sfx, "conv1" + sfx,
               [f"bn_conv1_{i}" for i in range(3)], [f"scale_conv1_{i}" for i in range(2)])
    w.relu("conv1_relu" + sfx, "conv1" + sfx)
    w.pool("pool1" + sfx, "conv1" + sfx, "pool1" + sfx, "MAX", 3, 2, 1)
    blob = resnet_stage(w, 2, "abc", "pool1" + sfx, 64, 256, 1, 1, sfx=sfx, shared=True)
    blob = resnet_stage(w, 3, ["a", "b1", "b2", "b3"], blob, 128, 512, 2, 1, sfx=sfx, shared=True)
    blob = resnet_stage(w, 4, ["a"] + [f"b{i}" for i in range(1, 23)], blob, 256, 1024, 1, 2,
                        sfx=sfx, shared=True)
    return resnet_stage(w, 5, "abc", blob, 512, 2048, 1, 4, sfx=sfx, shared=True)


def aspp_head(w, res5c, sfx):
    for i, d in enumerate([6, 12, 18, 24]):
        w.conv(f"fc1_voc12{sfx}_c{i}", res5c, f"fc1_voc12{sfx}_c{i}", 21, 3, p=d, d=d,
               params=[f"fc1_voc12_c{i}_w", f"fc1_voc12_c{i}_b"])
    w.eltwise(f"fc1_voc12{sfx}", [f"fc1_voc12{sfx}_c{i}" for i in range(4)], f"fc1_voc12{sfx}", "SUM")


def deeplab_v2_resnet101_msc(size):
    w = Writer("deeplab_v2_resnet101_msc", [
        "DeepLab v2 ResNet-101 ASPP-L, multi-scale (MSc) inference (Chen et al., TPAMI 2017), PASCAL",
        "VOC (21 classes). Structure, layer names and parameters as in the published DeepLab v2",
        "ResNet-101 test net: ResNet-101 (BatchNorm + Scale; conv1 without bias, pool1 pad 1; res4",
        "dilation 2, res5 dilation 4: output stride 8) run on three scales of the input made with",
        "Interp (1; 0.5 = shrink 2; 0.75 = shrink 4 then zoom 3), the three towers sharing their",
        "weights through `param { name }` exactly as the original names them (conv1_0, bn_conv1_0..2,",
        "scale_conv1_0..1, ..., fc1_voc12_c0_w/_b). Each tower ends in the ASPP classifier (four 3x3",
        "convolutions to 21 classes, dilations 6, 12, 18, 24, summed); the 0.5 and 0.75 scores are",
        "brought to the full-scale score's size (zoom 2; shrink 3 then zoom 4), fused by Eltwise MAX,",
        "and zoomed x8 to the input size. At 513: towers 513, 257, 385 -> scores 65, 33, 49 -> 65,",
        "65, 65 -> 513. Deploy form: one BGR image, mean-subtracted (104.008, 116.669, 122.675),",
        "513x513. The three scores must line up for Eltwise MAX: only sizes 32k+1 to 32k+6 run, and",
        "only 32k+1 (321, 353, ..., 513) gives the input size back (`protoseg sizes` lists them).",
        "Written for protoseg's tests and examples; the shapes are in",
        "tests/golden/deeplab_v2_resnet101_msc.json (513) and deeplab_v2_resnet101_msc_321.json.",
    ], size)
    w.comment("----- the three scales -----")
    w.interp("data_res05", "data", "data_res05", shrink=2)
    w.interp("data_res075", "data", "data_res075", shrink=4, zoom=3)
    deeplab_resnet101(w, "data", "")
    deeplab_resnet101(w, "data_res05", "_res05")
    deeplab_resnet101(w, "data_res075", "_res075")
    w.comment("----- ASPP classifiers (shared across the scales) -----")
    aspp_head(w, "res5c", "")
    aspp_head(w, "res5c_res05", "_res05")
    aspp_head(w, "res5c_res075", "_res075")
    w.comment("----- to the full-scale score's size, fused by MAX, to the input size -----")
    w.interp("fc1_voc12_res05_interp", "fc1_voc12_res05", "fc1_voc12_res05_interp", zoom=2)
    w.interp("fc1_voc12_res075_interp", "fc1_voc12_res075", "fc1_voc12_res075_interp",
             shrink=3, zoom=4)
    w.eltwise("fc_fusion", ["fc1_voc12", "fc1_voc12_res075_interp", "fc1_voc12_res05_interp"],
              "fc_fusion", "MAX")
    w.interp("fc1_interp", "fc_fusion", "fc1_interp", zoom=8)
    return w


# --------------------------------------------------------------------------------------------
# FPN on MSRA's ResNet-50

def fpn_resnet50(size):
    w = Writer("fpn_resnet50", [
        "FPN semantic segmentation on ResNet-50 (feature pyramid after Lin et al., \"Feature Pyramid",
        "Networks for Object Detection\", CVPR 2017) for PASCAL VOC (21 classes).",
        "Backbone: MSRA's Caffe ResNet-50 as published (layer names and parameters of",
        "ResNet-50-deploy.prototxt: conv1 with bias, pool1 3x3 stride 2 without padding), so its",
        "caffemodel loads as it is. C2..C5 = res2c, res3d, res4f, res5c (strides 4, 8, 16, 32).",
        "Top-down: 1x1 convolutions to 256 channels (p5 on C5; laterals on C4, C3, C2); nearest x2",
        "up-sampling written in standard Caffe layers: a depthwise Deconvolution (kernel 2, stride 2,",
        "group 256, weights fixed to 1, no bias) repeats every pixel into a 2x2 block, then Crop",
        "(axis 2, offset 0) to the lateral's size drops the last row/column when the lateral is odd",
        "(nearest to size 2n - 1 equals x2 then a crop at offset 0); Eltwise SUM; 3x3 smoothing on",
        "P4, P3, P2. Head: P3, P4, P5 brought to P2's size by nearest x2, x4, x8 (one depthwise",
        "deconvolution each, kernel = stride = factor, + a crop at offset 0: the same values as",
        "repeated x2 + crop, since floor(floor(i/2)/2) = floor(i/4), in one layer), summed, 3x3",
        "conv + ReLU, 1x1 classifier, then bilinear Interp to the input size.",
        "The last Interp takes its size from its second bottom 'data' (DeepLab v2's Interp does this",
        "when no zoom, shrink or height/width is given): zoom_factor 4 would give 4*(h - 1) + 1 from",
        "P2's h = ceil((ceil(H/2) - 1)/2), which is below H at every input size (509 at 512), and a",
        "Crop cannot grow it.",
        "Deploy form: one BGR image, 0..255 minus (102.9801, 115.9465, 122.7717), 512x512 (sizes",
        "divisible by 32 keep every level exactly half the one below).",
        "Written for protoseg's tests and examples; the shapes are in tests/golden/fpn_resnet50.json",
        "(512) and fpn_resnet50_375.json.",
    ], size)
    w.comment("----- ResNet-50 (MSRA) -----")
    w.conv("conv1", "data", "conv1", 64, 7, s=2, p=3)
    w.bn_scale("bn_conv1", "scale_conv1", "conv1")
    w.relu("conv1_relu", "conv1")
    w.pool("pool1", "conv1", "pool1", "MAX", 3, 2)
    c2 = resnet_stage(w, 2, "abc", "pool1", 64, 256, 1, 1)
    c3 = resnet_stage(w, 3, "abcd", c2, 128, 512, 2, 1)
    c4 = resnet_stage(w, 4, "abcdef", c3, 256, 1024, 2, 1)
    c5 = resnet_stage(w, 5, "abc", c4, 512, 2048, 2, 1)
    w.comment("----- top-down pathway -----")
    w.conv("p5", c5, "p5", 256, 1)
    above = "p5"
    for lvl, c in [(4, c4), (3, c3), (2, c2)]:
        w.conv(f"p{lvl}_lateral", c, f"p{lvl}_lateral", 256, 1)
        w.nearest_up(f"{above}_up", above, f"{above}_up", 2)
        w.crop(f"{above}_up_crop", f"{above}_up", f"p{lvl}_lateral", f"{above}_up_crop")
        w.eltwise(f"p{lvl}_sum", [f"p{lvl}_lateral", f"{above}_up_crop"], f"p{lvl}_sum", "SUM")
        above = f"p{lvl}_sum"
    for lvl in (4, 3, 2):
        w.conv(f"p{lvl}", f"p{lvl}_sum", f"p{lvl}", 256, 3, p=1)
    w.comment("----- every level to P2's size, summed, classified -----")
    for lvl, f in [(3, 2), (4, 4), (5, 8)]:
        w.nearest_up(f"p{lvl}_x{f}", f"p{lvl}", f"p{lvl}_x{f}", f)
        w.crop(f"p{lvl}_x{f}_crop", f"p{lvl}_x{f}", "p2", f"p{lvl}_x{f}_crop")
    w.eltwise("fpn_sum", ["p2", "p3_x2_crop", "p4_x4_crop", "p5_x8_crop"], "fpn_sum", "SUM")
    w.conv("fpn_conv", "fpn_sum", "fpn_conv", 256, 3, p=1)
    w.relu("fpn_relu", "fpn_conv")
    w.conv("score_p2", "fpn_conv", "score_p2", 21, 1)
    w.comment("bilinear (align corners) to the input's size, taken from the second bottom")
    w.interp("score", "score_p2", "score", ref="data")
    return w


NETS = {"deeplab_v1_largefov": (deeplab_v1_largefov, 513, 321),
        "deeplab_v2_aspp_vgg16": (deeplab_v2_aspp_vgg16, 513, 321),
        "deeplab_v2_resnet101_msc": (deeplab_v2_resnet101_msc, 513, 321),
        "fpn_resnet50": (fpn_resnet50, 512, 375)}


def golden_text(w, size):
    rows = ",\n".join("  " + json.dumps(r) for r in w.rows)
    return (f'{{"name": "{w.name}", "inputs": {{"data": [1, 3, {size}, {size}]}}, "layers": [\n'
            f"{rows}]}}\n")


def main(root):
    root = Path(root)
    for name, (make, canonical, odd) in NETS.items():
        w = make(canonical)
        (root / "prototxts" / f"{name}.prototxt").write_text(w.text())
        (root / "tests" / "golden" / f"{name}.json").write_text(golden_text(w, canonical))
        (root / "tests" / "golden" / f"{name}_{odd}.json").write_text(golden_text(make(odd), odd))
        print(name, len(w.rows), "layers", w.rows[-1])


if __name__ == "__main__":
    main(sys.argv[1])
