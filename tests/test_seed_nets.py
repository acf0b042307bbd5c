"""The seed segmentation nets of prototxts/: DeepLab v1 LargeFOV, DeepLab v2 VGG-16 ASPP, DeepLab v2
ResNet-101 MSc and FPN on ResNet-50 (the FCNs are tested in test_cli.py).

- golden shape tables (tests/golden/<net>.json at the canonical size, <net>_<size>.json at an odd
  size) equal what `protoseg shapes` prints; the tables' key values are derived here by hand;
- the DeepLab nets correspond layer by layer to the published originals in ../shared/corpus;
- `protoseg compile --check` runs each net at a small size;
- FPN's depthwise deconvolution with weights 1 + Crop is nearest up-sampling (against torch's
  F.interpolate, not against protoseg's lowering);
- the shape tables of docs/nets.md are the CLI's current output. Regenerate them with
  `python tests/test_seed_nets.py`.

Everything goes through the command line or protoseg's public functions.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import protoseg

try:  # the corpus location: one place, test_corpus.py
    from tests.test_corpus import CORPUS
except ImportError:  # pragma: no cover - tests/ not a package
    from test_corpus import CORPUS

ROOT = Path(__file__).resolve().parents[1]
NETS = ROOT / "prototxts"
GOLDEN = ROOT / "tests" / "golden"
DOC = ROOT / "docs" / "nets.md"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")

# net -> (canonical size, odd size). DeepLab: 8k+1 sizes keep its strides exact (513 = 8*64 + 1).
# FPN: 512 is divisible by 32, so every pyramid level is exactly half the one below; at 375 the
# P4 -> P3 step and the x4/x8 steps to P2 have to crop.
SIZES = {
    "deeplab_v1_largefov": (513, 321),
    "deeplab_v2_aspp_vgg16": (513, 321),
    "deeplab_v2_resnet101_msc": (513, 321),
    "fpn_resnet50": (512, 375),
}
GOLDEN_CASES = [(net, size, f"{net}.json" if size == sizes[0] else f"{net}_{size}.json")
                for net, sizes in SIZES.items() for size in sizes]


def cli(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "protoseg", *argv], capture_output=True, text=True,
                          cwd=ROOT)


def shapes_json(path, size=None) -> dict:
    r = cli("shapes", str(path), "--format", "json",
            *(["--input", f"data=1,3,{size},{size}"] if size else []))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def golden(file) -> dict:
    return json.loads((GOLDEN / file).read_text())


@pytest.mark.parametrize("net,size,file", GOLDEN_CASES, ids=[f"{n}-{s}" for n, s, _ in GOLDEN_CASES])
def test_golden_shapes(net, size, file):
    j = shapes_json(NETS / f"{net}.prototxt", size)
    g = golden(file)
    assert j["inputs"] == g["inputs"] == {"data": [1, 3, size, size]}
    assert [[l["name"], l["type"], l["top_shapes"]] for l in j["layers"]] == g["layers"]


# The golden files list every layer; their key values are derived here from Caffe's rules:
#   conv  (in + 2p - d(k-1) - 1)/s + 1        (C truncation)
#   pool  ceil((in + 2p - k)/s) + 1, minus 1 if the layer has padding and (out-1)*s >= in + p
#   deconv s(in - 1) + d(k - 1) + 1 - 2p      crop: the size of the second bottom
#   Interp zoom z: in + (in - 1)(z - 1); shrink s: (in - 1)/s + 1; both: shrink, then zoom;
#          a second bottom: its size
# (value: the height of the layer's top; every golden input is square).
VGG_DEEPLAB_513 = {
    "conv1_2": 513,                              # 3x3 pad 1 keeps the size
    "pool1": 257,                                # ceil((513 + 2 - 3)/2) + 1; (257-1)*2 = 512 < 514
    "pool2": 129,                                # ceil((257 + 2 - 3)/2) + 1
    "pool3": 65,                                 # ceil((129 + 2 - 3)/2) + 1
    "pool4": 65,                                 # ceil((65 + 2 - 3)/1) + 1 = 66; 65*1 >= 66? no
    "conv5_3": 65,                               # (65 + 4 - 2*2 - 1)/1 + 1, dilation 2 pad 2
    "pool5": 65,
}
VGG_DEEPLAB_321 = {"pool1": 161, "pool2": 81, "pool3": 41, "pool4": 41, "pool5": 41}  # ceil(320/2)+1 ...
HAND_DERIVED = {
    ("deeplab_v1_largefov", 513): {
        **VGG_DEEPLAB_513,
        "pool5a": 65,                            # AVE 3x3 stride 1 pad 1
        "fc6": 65,                               # (65 + 24 - 12*2 - 1)/1 + 1, dilation 12 pad 12
        "fc8_voc12": 65,
        "fc8_interp": 65 + (65 - 1) * (8 - 1),   # 513
    },
    ("deeplab_v1_largefov", 321): {
        **VGG_DEEPLAB_321, "fc6": 41, "fc8_interp": 41 + (41 - 1) * 7},          # 321
    ("deeplab_v2_aspp_vgg16", 513): {
        **VGG_DEEPLAB_513,
        "fc6_1": 65, "fc6_4": 65,                # (65 + 2d - 2d - 1)/1 + 1 for d = 6, 24
        "fc8_voc12": 65,                         # the Eltwise SUM of four 65x65 scores
        "fc8_interp": 65 + (65 - 1) * 7,         # 513
    },
    ("deeplab_v2_aspp_vgg16", 321): {
        **VGG_DEEPLAB_321, "fc6_4": 41, "fc8_voc12": 41, "fc8_interp": 41 + (41 - 1) * 7},
    ("deeplab_v2_resnet101_msc", 513): {
        "data_res05": (513 - 1) // 2 + 1,        # 257
        "data_res075": 129 + (129 - 1) * 2,      # shrink 4: (513-1)/4 + 1 = 129; zoom 3: 385
        "conv1": (513 + 6 - 7) // 2 + 1,         # 257
        "pool1": 129,                            # ceil((257 + 2 - 3)/2) + 1; 128*2 = 256 < 258
        "res3a": (129 - 1) // 2 + 1,             # 65: the 1x1 stride-2 branch1 and branch2a
        "res4b22": 65,                           # 3x3 dilation 2 pad 2
        "res5c": 65,                             # 3x3 dilation 4 pad 4
        "conv1_res05": 129, "pool1_res05": 65, "res5c_res05": 33,     # (257+6-7)/2+1; ...
        "conv1_res075": 193, "pool1_res075": 97, "res5c_res075": 49,  # (385+6-7)/2+1; ...
        "fc1_voc12_c3": 65,                      # (65 + 48 - 48 - 1)/1 + 1, dilation 24 pad 24
        "fc1_voc12_res05_interp": 33 + (33 - 1) * 1,                  # zoom 2: 65
        "fc1_voc12_res075_interp": 17 + (17 - 1) * 3,                 # shrink 3: 48/3+1 = 17; zoom 4: 65
        "fc_fusion": 65,                         # MAX of three 65x65 scores
        "fc1_interp": 65 + (65 - 1) * 7,         # 513
    },
    ("deeplab_v2_resnet101_msc", 321): {
        "data_res05": 161, "data_res075": 81 + 80 * 2,               # 241
        "pool1": 81, "res5c": 41,
        "pool1_res05": 41, "res5c_res05": 21,
        "conv1_res075": 121, "pool1_res075": 61, "res5c_res075": 31,
        "fc1_voc12_res05_interp": 21 + 20,                            # 41
        "fc1_voc12_res075_interp": 11 + 10 * 3,                       # (31-1)/3 + 1 = 11; 41
        "fc1_interp": 41 + 40 * 7,                                    # 321
    },
    ("fpn_resnet50", 512): {
        "conv1": (512 + 6 - 7) // 2 + 1,         # 256
        "pool1": 128,                            # ceil((256 - 3)/2) + 1 = ceil(126.5) + 1, no pad
        "res2c": 128, "res3d": 64, "res4f": 32, "res5c": 16,          # (n - 1)/2 + 1 at each stage
        "p5_up": 2 * (16 - 1) + 2,               # 32
        "p5_up_crop": 32,                        # the size of p4_lateral: nothing cropped
        "p4_sum_up": 64, "p3_sum_up": 128, "p3_sum_up_crop": 128,
        "p5_x8": 8 * (16 - 1) + 8,               # 128
        "p4_x4": 4 * (32 - 1) + 4,               # 128
        "fpn_sum": 128, "score_p2": 128,
        "score": 512,                            # the size of the second bottom 'data'
    },
    ("fpn_resnet50", 375): {
        "conv1": (375 + 6 - 7) // 2 + 1,         # 374/2 + 1 = 188
        "pool1": 94,                             # ceil((188 - 3)/2) + 1 = ceil(92.5) + 1
        "res3d": (94 - 1) // 2 + 1,              # 47
        "res4f": (47 - 1) // 2 + 1,              # 24
        "res5c": (24 - 1) // 2 + 1,              # 12
        "p5_up": 24, "p5_up_crop": 24,
        "p4_sum_up": 2 * (24 - 1) + 2,           # 48
        "p4_sum_up_crop": 47,                    # p3_lateral's size: the last row/column dropped
        "p3_sum_up": 94, "p3_sum_up_crop": 94,
        "p5_x8": 8 * (12 - 1) + 8,               # 96
        "p5_x8_crop": 94,
        "p4_x4": 4 * (24 - 1) + 4,               # 96
        "p4_x4_crop": 94,
        "score": 375,
    },
}


@pytest.mark.parametrize("net,size", sorted(HAND_DERIVED), ids=[f"{n}-{s}" for n, s in sorted(HAND_DERIVED)])
def test_golden_files_agree_with_hand_derivation(net, size):
    file = f"{net}.json" if size == SIZES[net][0] else f"{net}_{size}.json"
    got = {layer: tops[0][2] for layer, _, tops in golden(file)["layers"]}
    assert {k: got[k] for k in HAND_DERIVED[net, size]} == HAND_DERIVED[net, size]


# Our DeepLab nets against the published nets they are written after: every layer they share by
# name has the same type, bottoms, tops and top shapes. (mine-only layers, the twin's file,
# the size). The originals' data layers, Dropout, MatWrite, SegAccuracy and Silence are not ours.
TWINS = {
    "deeplab_v2_resnet101_msc": ({"input"}, "deeplab/deeplabv2_resnet101_msc_test_val_resolved.prototxt", None),
    "deeplab_v2_aspp_vgg16": ({"input"}, "deeplab/deeplabv2_vgg16_aspp_voc12_test_val_resolved.prototxt", 513),
    "deeplab_v1_largefov": ({"fc8_interp"}, "deeplab/deeplabv1_largefov_vgg128_noup_deploy.prototxt", 513),
}


@needs_corpus
@pytest.mark.parametrize("net", sorted(TWINS))
def test_layers_correspond_to_the_published_net(net):
    mine_only, twin_file, size = TWINS[net]

    def layers(j):
        return {l["name"]: (l["type"], l["bottoms"], l["tops"], l["top_shapes"]) for l in j["layers"]}
    mine = layers(shapes_json(NETS / f"{net}.prototxt"))
    twin = layers(shapes_json(CORPUS / twin_file, size))
    assert set(mine) - set(twin) == mine_only
    assert {n: mine[n] for n in mine if n in twin} == {n: twin[n] for n in mine if n in twin}


MSC = NETS / "deeplab_v2_resnet101_msc.prototxt"


def param_names(path) -> dict:
    """layer -> the names of its `param { name }` specs."""
    return {l.name: [p.get("name") for p in l.params.get("param")] for l in protoseg.load_net(path).layers}


@pytest.mark.parametrize("tower", ["_res05", "_res075"])
def test_msc_towers_name_the_full_scale_params(tower):
    """Each layer of the 0.5 and 0.75 towers names the params of its full-scale layer (conv1_res05:
    conv1's 'conv1_0'; fc1_voc12_res075_c2: fc1_voc12_c2's 'fc1_voc12_c2_w', '..._b'), and every
    full-scale layer with params has its twin in the tower."""
    named = {n: p for n, p in param_names(MSC).items() if p}
    full = {n: p for n, p in named.items() if "_res05" not in n and "_res075" not in n}
    assert {n.replace(tower, ""): p for n, p in named.items() if tower in n} == full
    assert full["conv1"] == ["conv1_0"] and full["bn_conv1"] == ["bn_conv1_0", "bn_conv1_1", "bn_conv1_2"]
    assert full["fc1_voc12_c0"] == ["fc1_voc12_c0_w", "fc1_voc12_c0_b"]


@needs_corpus
def test_msc_param_names_are_the_originals():
    names = param_names(MSC)
    twin = param_names(CORPUS / TWINS["deeplab_v2_resnet101_msc"][1])
    assert {n: names[n] for n in names if n != "input"} == {n: twin[n] for n in names if n != "input"}


def test_msc_towers_share_their_weights():
    model = protoseg.compile_net(MSC, inputs={"data": (1, 3, 33, 33)},
                                 outputs=["conv1", "conv1_res05", "conv1_res075"])
    assert len([p for p in model.parameters() if p.shape == (64, 3, 7, 7)]) == 1


# A size each net runs at on a CI machine: DeepLab 8k+1 sizes; FPN 99, where every top-down step
# crops (pyramid 25, 13, 7, 4).
COMPILE_SIZES = {"deeplab_v1_largefov": 65, "deeplab_v2_aspp_vgg16": 65,
                 "deeplab_v2_resnet101_msc": 33, "fpn_resnet50": 99}


@pytest.mark.parametrize("net", sorted(COMPILE_SIZES))
def test_compile_check(net):
    size = COMPILE_SIZES[net]
    r = cli("compile", str(NETS / f"{net}.prototxt"), "--check", "--input", f"data=1,3,{size},{size}")
    assert r.returncode == 0, r.stderr
    assert "check: ok" in r.stdout and f"(data (1, 3, {size}, {size}))" in r.stdout


# FPN's up-sampling: a depthwise Deconvolution with weights 1 (kernel = stride = f) and a Crop at
# offset 0 must give what nearest up-sampling to the target size gives, one x2 step at a time
# (torch's F.interpolate, mode "nearest", size = the next level's), at an even size (no crop
# removes anything) and an odd one (every crop removes the last row and column).
FPN = NETS / "fpn_resnet50.prototxt"
UPSAMPLINGS = {     # the cropped top -> (its source, the blobs whose sizes the x2 steps go through)
    "p5_up_crop": ("p5", ["p4_lateral"]),
    "p4_sum_up_crop": ("p4_sum", ["p3_lateral"]),
    "p3_sum_up_crop": ("p3_sum", ["p2_lateral"]),
    "p3_x2_crop": ("p3", ["p2"]),
    "p4_x4_crop": ("p4", ["p3", "p2"]),
    "p5_x8_crop": ("p5", ["p4", "p3", "p2"]),
}


@pytest.fixture(scope="module", params=[64, 99], ids=["even-64", "odd-99"])
def fpn_blobs(request):
    import torch
    size = request.param
    wanted = sorted({b for top, (src, refs) in UPSAMPLINGS.items() for b in (top, src, *refs)})
    model = protoseg.compile_net(FPN, inputs={"data": (1, 3, size, size)}, outputs=wanted)
    state = model.state_dict()
    for attr, (_, type_) in model.protoseg_layers.items():
        if type_ == "Deconvolution":
            state[f"{attr}.weight"] = torch.ones_like(state[f"{attr}.weight"])
    model.load_state_dict(state)
    torch.manual_seed(0)
    with torch.no_grad():
        return size, model(torch.randn(1, 3, size, size))


@pytest.mark.parametrize("top", sorted(UPSAMPLINGS))
def test_fpn_deconv_and_crop_are_nearest_upsampling(fpn_blobs, top):
    import torch
    import torch.nn.functional as F
    _, blobs = fpn_blobs
    src, refs = UPSAMPLINGS[top]
    want = blobs[src]
    for ref in refs:
        want = F.interpolate(want, size=blobs[ref].shape[-2:], mode="nearest")
    assert torch.equal(blobs[top], want)


def test_fpn_upsampling_weights_come_from_their_constant_filler():
    import torch
    model = protoseg.compile_net(FPN, inputs={"data": (1, 3, 64, 64)}, outputs=["p5_up"])
    state = model.state_dict()
    weights = [state[f"{attr}.weight"] for attr, (_, type_) in model.protoseg_layers.items()
               if type_ == "Deconvolution"]
    assert len(weights) == 1 and torch.equal(weights[0], torch.ones_like(weights[0]))


def test_fpn_pyramid_sizes(fpn_blobs):
    """64: every level half the one below. 99: conv1 50, pool1 ceil(47/2) + 1 = 25, then 13, 7, 4:
    each x2 step gives one row and column too many (8, 14, 26), which the crops remove."""
    size, blobs = fpn_blobs
    assert [blobs[b].shape[-1] for b in ("p2", "p3", "p4", "p5")] == {64: [16, 8, 4, 2], 99: [25, 13, 7, 4]}[size]


# docs/nets.md holds each seed net's `protoseg shapes --format markdown` table (without its
# '# name' title) between a start marker naming the command and an end marker.
SEEDS = ["fcn32s", "fcn16s", "fcn8s", *SIZES]
START = "<!-- table: protoseg shapes prototxts/{}.prototxt --format markdown -->\n"
END = "<!-- end of table -->"
TABLE = re.compile(re.escape(START).replace(r"\{\}", r"(\w+)") + "(.*?)" + re.escape(END), re.S)
REGENERATE = "python tests/test_seed_nets.py"


def cli_table(net) -> str:
    r = cli("shapes", f"prototxts/{net}.prototxt", "--format", "markdown")
    assert r.returncode == 0, r.stderr
    title, blank, *rows = r.stdout.splitlines()
    assert title == f"# {net}" and blank == ""
    return "\n".join(rows) + "\n"


def test_docs_have_one_table_per_seed_net():
    assert [m.group(1) for m in TABLE.finditer(DOC.read_text())] == SEEDS


@pytest.mark.parametrize("net", SEEDS)
def test_docs_table_is_current(net):
    tables = {m.group(1): m.group(2) for m in TABLE.finditer(DOC.read_text())}
    assert tables.get(net) == cli_table(net), f"docs/nets.md is stale for {net}: run `{REGENERATE}`"


def regenerate_docs():
    """Rewrite every table of docs/nets.md between its markers from the CLI's output."""
    DOC.write_text(TABLE.sub(lambda m: START.format(m.group(1)) + cli_table(m.group(1)) + END,
                             DOC.read_text()))


if __name__ == "__main__":
    regenerate_docs()
