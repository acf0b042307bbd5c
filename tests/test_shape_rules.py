"""Per-layer shape rules, as table tests.

Every expected shape below is derived by hand from the formulas of
../shared/docs/caffe-semantics.md (section named in the comment or the case id; "A" = Appendix A),
never by running protoseg. Error cases check the words of the message and, where the driver adds
it, the location: `<string>:LINE:` and `layer 'NAME' (Type)`.

Helpers (tests/conftest.py): `layer_tops(type, params, bottoms, ntops)` builds
    line 1: layer "input" (Input) with tops b0, b1, ... shaped like `bottoms`
    line 2: layer "L" (type) with bottoms b0, b1, ... and tops t0, t1, ...
and returns L's top shapes; `layer_error(...)` returns the error the same net raises.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import LAYER_LINE, infer_text, layer_error, layer_net, layer_tops, text_error
from protoseg.errors import GraphError, InputError, ShapeError
from protoseg.net import load_net
from protoseg.shapes import infer_shapes

REPO = Path(__file__).resolve().parents[1]
FCN8S = REPO / "prototxts" / "fcn8s.prototxt"

AT_L = f"<string>:{LAYER_LINE}:"


def located(err, name="L", type_=None) -> bool:
    """The driver's `layer 'NAME' (Type):` prefix is in the message (the line is checked apart)."""
    s = str(err)
    head = f"layer '{name}'" + (f" ({type_})" if type_ else "")
    return head in s


# =============================================================================================
# §2.1 Input and data layers (shape sources)

INPUT_SHARED = """
layer { name: "in" type: "Input" top: "a" top: "b" top: "c"
  input_param { shape { dim: 1 dim: 2 dim: 3 } } }
"""
INPUT_PER_TOP = """
layer { name: "in" type: "Input" top: "data" top: "im_info"
  input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } shape { dim: 1 dim: 3 } } }
"""
INPUT_DEFERRED = '\nlayer { name: "in" type: "Input" top: "x" }\n'

DUMMY_SHARED = """
layer { name: "d" type: "DummyData" top: "a" top: "b"
  dummy_data_param { shape { dim: 2 dim: 3 } } }
"""
DUMMY_PER_TOP = """
layer { name: "d" type: "DummyData" top: "a" top: "b"
  dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 5 } } }
"""
# legacy lists: 1 entry is broadcast to every top, N entries are per top
DUMMY_LEGACY = """
layer { name: "d" type: "DummyData" top: "a" top: "b"
  dummy_data_param { num: 2 channels: 3 channels: 5 height: 4 width: 6 } }
"""

DATA = """
layer { name: "d" type: "Data" top: "data" top: "label"
  data_param { source: "db" batch_size: 16 backend: LMDB } transform_param { crop_size: 227 } }
"""
IMAGE_DATA_RESIZED = """
layer { name: "d" type: "ImageData" top: "data" top: "label"
  image_data_param { source: "list.txt" batch_size: 4 new_height: 32 new_width: 48 } }
"""
IMAGE_DATA_GRAY = """
layer { name: "d" type: "ImageData" top: "data" top: "label"
  image_data_param { source: "list.txt" new_height: 32 new_width: 48 is_color: false } }
"""
IMAGE_DATA_CROP = """
layer { name: "d" type: "ImageData" top: "data" top: "label"
  transform_param { crop_size: 24 }
  image_data_param { source: "list.txt" batch_size: 4 new_height: 32 new_width: 48 } }
"""
IMAGE_DATA_UNSIZED = """
layer { name: "d" type: "ImageData" top: "data" top: "label"
  image_data_param { source: "list.txt" batch_size: 4 } }
"""
IMAGE_SEG_DATA = """
layer { name: "d" type: "ImageSegData" top: "data" top: "label" top: "data_dim"
  transform_param { crop_size: 321 }
  image_data_param { source: "list.txt" batch_size: 10 } }
"""
IMAGE_SEG_DATA_UNSIZED = """
layer { name: "d" type: "ImageSegData" top: "data" top: "label" top: "data_dim"
  image_data_param { source: "list.txt" batch_size: 10 } }
"""
DENSE_IMAGE_DATA = """
layer { name: "d" type: "DenseImageData" top: "data" top: "label"
  dense_image_data_param { source: "list.txt" batch_size: 4 crop_height: 360 crop_width: 480 } }
"""
DENSE_IMAGE_DATA_RESIZED = """
layer { name: "d" type: "DenseImageData" top: "data" top: "label"
  dense_image_data_param { source: "list.txt" batch_size: 4 new_height: 240 new_width: 320 } }
"""
DENSE_IMAGE_DATA_UNSIZED = """
layer { name: "d" type: "DenseImageData" top: "data" top: "label"
  dense_image_data_param { source: "list.txt" batch_size: 4 } }
"""
# SSD AnnotatedData: the image from transform_param.resize_param (annotated_data_layer.cpp), the
# label (1, 1, boxes, 8) only at run time
ANNOTATED_DATA = """
layer { name: "d" type: "AnnotatedData" top: "data" top: "label"
  transform_param { resize_param { height: 300 width: 300 } } data_param { source: "db" batch_size: 8 } }
"""
HDF5_DATA = """
layer { name: "d" type: "HDF5Data" top: "data" top: "label"
  hdf5_data_param { source: "files.txt" batch_size: 10 } }
"""
PYTHON_DATA = """
layer { name: "d" type: "Python" top: "data" top: "label"
  python_param { module: "voc_layers" layer: "VOCSegDataLayer" } }
"""
MEMORY_DATA = """
layer { name: "d" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: 8 channels: 1 height: 28 width: 28 } }
"""
WINDOW_DATA = """
layer { name: "d" type: "WindowData" top: "data" top: "label"
  transform_param { crop_size: 227 }
  window_data_param { source: "windows.txt" batch_size: 128 } }
"""

THREE_SOURCES = DATA + """layer { name: "m" type: "MemoryData" top: "mdata" top: "mlabel"
  memory_data_param { batch_size: 8 channels: 1 height: 28 width: 28 } }
layer { name: "h" type: "HDF5Data" top: "hdata" top: "hlabel" hdf5_data_param { source: "f.txt" batch_size: 2 } }
"""


@pytest.mark.parametrize("text, inputs, expected", [
    # Input: shape[0] for every top when exactly one shape is given
    pytest.param(INPUT_SHARED, None, {"a": (1, 2, 3), "b": (1, 2, 3), "c": (1, 2, 3)},
                 id="input-one-shape-shared-by-3-tops"),
    # Input: top i gets shape[i]
    pytest.param(INPUT_PER_TOP, None, {"data": (1, 3, 4, 4), "im_info": (1, 3)},
                 id="input-one-shape-per-top"),
    # Input with no shape: deferred to run time (--input)
    pytest.param(INPUT_DEFERRED, {"x": (2, 3, 5)}, {"x": (2, 3, 5)}, id="input-deferred-from-inputs"),
    # --input overrides a shape the net gives (the CLI's --input)
    pytest.param(INPUT_PER_TOP, {"data": (1, 3, 9, 9)}, {"data": (1, 3, 9, 9), "im_info": (1, 3)},
                 id="input-overridden-by-inputs"),
    pytest.param(DUMMY_SHARED, None, {"a": (2, 3), "b": (2, 3)}, id="dummydata-shape-shared"),
    pytest.param(DUMMY_PER_TOP, None, {"a": (2, 3), "b": (5,)}, id="dummydata-shape-per-top"),
    # legacy (num, channels, height, width); num/height/width broadcast, channels per top
    pytest.param(DUMMY_LEGACY, None, {"a": (2, 3, 4, 6), "b": (2, 5, 4, 6)},
                 id="dummydata-legacy-nchw-broadcast"),
    # Data: top 0 from the database (-> inputs), label (batch_size,)
    pytest.param(DATA, {"data": (16, 3, 227, 227)}, {"data": (16, 3, 227, 227), "label": (16,)},
                 id="data-top0-from-inputs-label-batch"),
    # ImageData: (batch, 3, new_height, new_width), labels (batch,)
    pytest.param(IMAGE_DATA_RESIZED, None, {"data": (4, 3, 32, 48), "label": (4,)},
                 id="imagedata-new-height-width"),
    # is_color false -> 1 channel; batch_size default 1 (ImageDataParameter)
    pytest.param(IMAGE_DATA_GRAY, None, {"data": (1, 1, 32, 48), "label": (1,)},
                 id="imagedata-gray-default-batch-1"),
    # crop_size wins over the resize: (batch, 3, crop, crop)
    pytest.param(IMAGE_DATA_CROP, None, {"data": (4, 3, 24, 24), "label": (4,)},
                 id="imagedata-crop-size"),
    pytest.param(IMAGE_DATA_UNSIZED, {"data": (4, 3, 100, 80)}, {"data": (4, 3, 100, 80), "label": (4,)},
                 id="imagedata-unsized-from-inputs"),
    # DeepLab ImageSegData: image (b,3,c,c), label (b,1,c,c), data_dim (b,1,1,2)
    pytest.param(IMAGE_SEG_DATA, None,
                 {"data": (10, 3, 321, 321), "label": (10, 1, 321, 321), "data_dim": (10, 1, 1, 2)},
                 id="imagesegdata-crop-321"),
    pytest.param(IMAGE_SEG_DATA_UNSIZED, {"data": (10, 3, 50, 60), "label": (10, 1, 50, 60)},
                 {"data": (10, 3, 50, 60), "label": (10, 1, 50, 60), "data_dim": (10, 1, 1, 2)},
                 id="imagesegdata-unsized-from-inputs"),
    # SegNet DenseImageData: (b, 3, crop_height, crop_width), label (b, 1, ch, cw)
    pytest.param(DENSE_IMAGE_DATA, None, {"data": (4, 3, 360, 480), "label": (4, 1, 360, 480)},
                 id="denseimagedata-crop-360x480"),
    # without a crop, the images are resized to new_height x new_width
    pytest.param(DENSE_IMAGE_DATA_RESIZED, None, {"data": (4, 3, 240, 320), "label": (4, 1, 240, 320)},
                 id="denseimagedata-new-240x320"),
    pytest.param(HDF5_DATA, {"data": (10, 4), "label": (10,)}, {"data": (10, 4), "label": (10,)},
                 id="hdf5data-from-inputs"),
    pytest.param(ANNOTATED_DATA, {"label": (1, 1, 3, 8)}, {"data": (8, 3, 300, 300), "label": (1, 1, 3, 8)},
                 id="annotateddata-resize-300-label-from-inputs"),
    pytest.param(PYTHON_DATA, {"data": (1, 3, 50, 50), "label": (1, 1, 50, 50)},
                 {"data": (1, 3, 50, 50), "label": (1, 1, 50, 50)}, id="python-from-inputs"),
    # MemoryData: (batch, channels, height, width), labels (batch,)
    pytest.param(MEMORY_DATA, None, {"data": (8, 1, 28, 28), "label": (8,)}, id="memorydata"),
    # WindowData: (batch, 3, crop, crop), labels (batch,)
    pytest.param(WINDOW_DATA, None, {"data": (128, 3, 227, 227), "label": (128,)}, id="windowdata"),
])
def test_source_layer_shapes(text, inputs, expected):
    assert infer_text(text, inputs).blobs == expected


@pytest.mark.parametrize("text, needed, known", [
    pytest.param(INPUT_DEFERRED, ["'x' (layer 'in', Input)"], [], id="input-without-shape"),
    pytest.param(DATA, ["'data' (layer 'd', Data)"], ["'label'"], id="data-only-top0"),
    pytest.param(IMAGE_DATA_UNSIZED, ["'data' (layer 'd', ImageData)"], ["'label'"],
                 id="imagedata-unsized-only-top0"),
    pytest.param(IMAGE_SEG_DATA_UNSIZED, ["'data' (layer 'd', ImageSegData)",
                                          "'label' (layer 'd', ImageSegData)"], ["'data_dim'"],
                 id="imagesegdata-unsized-data-and-label"),
    pytest.param(DENSE_IMAGE_DATA_UNSIZED, ["'data' (layer 'd', DenseImageData)",
                                            "'label' (layer 'd', DenseImageData)"], [],
                 id="denseimagedata-unsized-data-and-label"),
    pytest.param(HDF5_DATA, ["'data' (layer 'd', HDF5Data)", "'label' (layer 'd', HDF5Data)"], [],
                 id="hdf5data-every-top"),
    pytest.param(PYTHON_DATA, ["'data' (layer 'd', Python)", "'label' (layer 'd', Python)"], [],
                 id="python-every-top"),
    # several source layers: every missing blob of every layer, in file order
    pytest.param(THREE_SOURCES,
                 ["'data' (layer 'd', Data)", "'hdata' (layer 'h', HDF5Data)", "'hlabel' (layer 'h', HDF5Data)"],
                 ["'label'", "'mdata'", "'mlabel'"], id="three-source-layers"),
])
def test_source_layer_needs_input(text, needed, known):
    err = text_error(text, exc=InputError)
    msg = str(err)
    listing = msg.split("--input:", 1)[1].split("\n", 1)[0]
    assert "must be given with --input" in msg
    assert listing.strip() == ", ".join(needed)
    assert not [k for k in known if k in listing]
    assert "<string>:2:" in msg                     # the layer that needs them
    assert "hint: e.g. --input " in msg


def test_input_shape_count_mismatch():
    # §2.1 / input_layer.cpp: 0, 1 or one shape per top; 2 shapes for 3 tops is an error
    text = """layer { name: "in" type: "Input" top: "a" top: "b" top: "c"
  input_param { shape { dim: 1 } shape { dim: 2 } } }
"""
    err = text_error(text, exc=ShapeError)
    assert "2 shapes for 3 tops" in str(err)
    assert "<string>:2:" in str(err) and located(err, "in", "Input")


def test_inputs_name_not_an_input():
    err = text_error(INPUT_PER_TOP, {"dat": (1, 3, 4, 4)}, exc=InputError)
    assert "'dat'" in str(err) and "not an input of this net" in str(err)
    assert "data, im_info" in str(err)


@pytest.mark.parametrize("params, words", [
    pytest.param("shape { dim: 2 } num: 1 channels: 1 height: 1 width: 1", "both shape and num",
                 id="shape-and-legacy"),
    pytest.param("num: 1 channels: 1 channels: 2 channels: 3 height: 1 width: 1",
                 "channels has 3 values for 2 tops", id="legacy-wrong-count"),
    pytest.param("shape { dim: 1 } shape { dim: 2 } shape { dim: 3 }", "3 shapes for 2 tops",
                 id="shape-wrong-count"),
])
def test_dummydata_errors(params, words):
    text = f'# dummy\nlayer {{ name: "L" type: "DummyData" top: "a" top: "b" dummy_data_param {{ {params} }} }}\n'
    err = text_error(text, exc=ShapeError)
    assert words in str(err)
    assert AT_L in str(err) and located(err, "L", "DummyData")


def test_imagedata_new_height_without_width():
    # image_data_layer.cpp: new_height and new_width are set together
    text = '# x\nlayer { name: "L" type: "ImageData" top: "d" top: "l" image_data_param { new_height: 32 } }\n'
    err = text_error(text, exc=ShapeError)
    assert "new_height and new_width must be set together" in str(err)
    assert AT_L in str(err) and located(err, "L", "ImageData")


def test_windowdata_needs_crop_size():
    text = '# x\nlayer { name: "L" type: "WindowData" top: "d" top: "l" window_data_param { batch_size: 2 } }\n'
    err = text_error(text, exc=ShapeError)
    assert "crop_size" in str(err) and AT_L in str(err) and located(err, "L", "WindowData")


# =============================================================================================
# §2.2 Convolution: out = cdiv(in + 2p - (d(k-1)+1), s) + 1

@pytest.mark.parametrize("bottom, params, expected", [
    # A: (224 + 6 - 7)/2 + 1 = 111 + 1
    pytest.param((1, 3, 224, 224), "num_output: 64 kernel_size: 7 stride: 2 pad: 3", (1, 64, 112, 112),
                 id="conv-k7-s2-p3-224"),
    # A: (5 - 3)/2 + 1 = 2
    pytest.param((1, 1, 5, 5), "num_output: 4 kernel_size: 3 stride: 2", (1, 4, 2, 2), id="conv-k3-s2-p0-5"),
    # A: (4 - 3)/2 + 1 = 0 + 1
    pytest.param((1, 1, 4, 4), "num_output: 4 kernel_size: 3 stride: 2", (1, 4, 1, 1), id="conv-k3-s2-p0-4"),
    # A: (2 - 3)/2 = cdiv(-1, 2) = 0 (C truncation; Python floor would give -1) -> 1
    pytest.param((1, 1, 2, 2), "num_output: 4 kernel_size: 3 stride: 2", (1, 4, 1, 1),
                 id="conv-k3-s2-p0-2-c-truncation"),
    # A: extent 12*2+1 = 25; (65 + 24 - 25)/1 + 1 = 65
    pytest.param((1, 8, 65, 65), "num_output: 21 kernel_size: 3 dilation: 12 pad: 12", (1, 21, 65, 65),
                 id="conv-k3-d12-p12-65"),
    # §2.2: k3 d2 p2 keeps the size (extent 5)
    pytest.param((1, 8, 17, 17), "num_output: 8 kernel_size: 3 dilation: 2 pad: 2", (1, 8, 17, 17),
                 id="conv-k3-d2-p2-same"),
    # §2.2: k3 d6 p6 (ASPP) keeps the size (extent 13)
    pytest.param((1, 8, 33, 33), "num_output: 8 kernel_size: 3 dilation: 6 pad: 6", (1, 8, 33, 33),
                 id="conv-k3-d6-p6-same"),
    # §2.2: k7 p0 on 22 -> 16 (FCN fc6)
    pytest.param((1, 512, 22, 22), "num_output: 4096 kernel_size: 7", (1, 4096, 16, 16), id="conv-k7-p0-22"),
    # §2.2: (224 + 2 - 3)/2 + 1 = 112
    pytest.param((1, 3, 224, 224), "num_output: 32 kernel_size: 3 stride: 2 pad: 1", (1, 32, 112, 112),
                 id="conv-k3-s2-p1-224"),
    # §8: (500 + 200 - 3) + 1 = 698
    pytest.param((1, 3, 500, 500), "num_output: 64 kernel_size: 3 pad: 100", (1, 64, 698, 698),
                 id="conv-k3-p100-500"),
    # group: channels and num_output divisible by group; shape as without groups
    pytest.param((1, 4, 8, 8), "num_output: 6 kernel_size: 3 group: 2", (1, 6, 6, 6), id="conv-group2"),
    # depthwise
    pytest.param((2, 32, 9, 9), "num_output: 32 kernel_size: 3 pad: 1 group: 32", (2, 32, 9, 9),
                 id="conv-depthwise-group32"),
    # kernel_h/w, pad_h/w, stride_h/w: H (10+2-3)/2+1 = 5, W (20+4-5)/3+1 = 6+1 = 7
    pytest.param((1, 3, 10, 20),
                 "num_output: 8 kernel_h: 3 kernel_w: 5 pad_h: 1 pad_w: 2 stride_h: 2 stride_w: 3",
                 (1, 8, 5, 7), id="conv-kh3-kw5-ph1-pw2-sh2-sw3"),
    # pad_h alone: the missing pad_w is 0 (allowed): H (5+2-3)+1 = 5, W (5-3)+1 = 3
    pytest.param((1, 1, 5, 5), "num_output: 2 kernel_size: 3 pad_h: 1", (1, 2, 5, 3), id="conv-pad-h-only"),
    # repeated per-axis values: H k3 s1 p0 d1: 11-3+1 = 9; W k5 s2 p2 d2: extent 9, (13+4-9)/2+1 = 5
    pytest.param((1, 2, 11, 13),
                 "num_output: 3 kernel_size: 3 kernel_size: 5 stride: 1 stride: 2 pad: 0 pad: 2 "
                 "dilation: 1 dilation: 2", (1, 3, 9, 5), id="conv-per-axis-k3-5-s1-2-p0-2-d1-2"),
    # N-D (3 spatial axes): D (8+2-3)/1+1 = 8, H (10+2-3)/2+1 = 5, W (12+2-3)/2+1 = 6
    pytest.param((1, 2, 8, 10, 12), "num_output: 4 kernel_size: 3 pad: 1 stride: 1 stride: 2 stride: 2",
                 (1, 4, 8, 5, 6), id="conv3d-k3-p1-s1-2-2"),
    # N-D with per-axis kernel 1,3,3: D 4, H 7, W 7
    pytest.param((2, 3, 4, 9, 9), "num_output: 5 kernel_size: 1 kernel_size: 3 kernel_size: 3",
                 (2, 5, 4, 7, 7), id="conv3d-k1-3-3"),
    # axis 2: channel axis 2 (3 channels), axes before it kept, spatial 9x9 -> 7x7
    pytest.param((2, 5, 3, 9, 9), "num_output: 8 kernel_size: 3 axis: 2", (2, 5, 8, 7, 7), id="conv-axis2"),
    # axis -3 on a 4-axis blob = axis 1
    pytest.param((1, 3, 9, 9), "num_output: 8 kernel_size: 3 axis: -3", (1, 8, 7, 7), id="conv-axis-neg3"),
    # out == 1 exactly: k == in, no pad
    pytest.param((1, 512, 7, 7), "num_output: 10 kernel_size: 7", (1, 10, 1, 1), id="conv-k7-on-7"),
])
def test_convolution(bottom, params, expected):
    assert layer_tops("Convolution", f"convolution_param {{ {params} }}", [bottom]) == [expected]


def test_convolution_two_bottoms_share_weights():
    # §2.2: each bottom produces the corresponding top; all bottoms have one shape
    tops = layer_tops("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }",
                      [(1, 2, 6, 6), (1, 2, 6, 6)], ntops=2)
    assert tops == [(1, 4, 4, 4), (1, 4, 4, 4)]


@pytest.mark.parametrize("bottoms, params, words", [
    pytest.param([(1, 3, 8, 8)], "num_output: 4 kernel_size: 3 group: 2",
                 "group 2 must divide both the input channels (3)", id="group-not-dividing-channels"),
    pytest.param([(1, 4, 8, 8)], "num_output: 6 kernel_size: 3 group: 4",
                 "group 4 must divide both the input channels (4) and num_output (6)",
                 id="group-not-dividing-num-output"),
    pytest.param([(1, 3, 8, 8)], "kernel_size: 3", "num_output must be given", id="num-output-missing"),
    pytest.param([(1, 3, 8, 8)], "num_output: 4 kernel_size: 3 kernel_h: 3 kernel_w: 3",
                 "give either kernel_size or kernel_h/kernel_w, not both", id="kernel-size-with-kernel-h"),
    pytest.param([(1, 3, 8, 8)], "num_output: 4 kernel_h: 3", "kernel_h and kernel_w must be given together",
                 id="kernel-h-without-kernel-w"),
    pytest.param([(1, 3, 8, 8)], "num_output: 4", "kernel_size is required", id="kernel-missing"),
    pytest.param([(1, 3, 8, 8)], "num_output: 4 kernel_size: 3 kernel_size: 3 kernel_size: 3",
                 "kernel_size has 3 values; it needs 1 or 2", id="kernel-size-count"),
    pytest.param([(1, 3, 4, 8, 8)], "num_output: 4 kernel_h: 3 kernel_w: 3",
                 "kernel_h/kernel_w can only be used for 2-D", id="kernel-h-on-3d"),
    pytest.param([(1, 3, 8, 8)], "num_output: 4 kernel_size: 3 stride_h: 2",
                 "stride_h and stride_w must be given together",
                 id="stride-h-without-stride-w"),
    pytest.param([(1, 3, 8, 8)], "num_output: 4 kernel_size: 3 dilation: 1 dilation: 2 dilation: 3",
                 "dilation has 3 values", id="dilation-count"),
    pytest.param([(1, 3, 8, 8), (1, 3, 8, 9)], "num_output: 4 kernel_size: 3",
                 "must have one shape", id="bottoms-differ"),
    # (3 - 4)/1 + 1 = 0 and (3 - 5)/1 + 1 = -1: flagged (§2.2 "let the calculator flag out <= 0")
    pytest.param([(1, 3, 3, 3)], "num_output: 4 kernel_size: 4", "a dimension below 1", id="out-zero"),
    pytest.param([(1, 3, 3, 3)], "num_output: 4 kernel_size: 5", "a dimension below 1", id="out-negative"),
])
def test_convolution_errors(bottoms, params, words):
    err = layer_error("Convolution", f"convolution_param {{ {params} }}", bottoms, ntops=len(bottoms),
                      exc=ShapeError)
    assert words in str(err)
    assert AT_L in str(err) and located(err, "L", "Convolution")


# DeepLab v1 (V1 format, `hole` = dilation, §1.10 / §5.6)
V1_HOLE = """input: "data"
input_dim: 1 input_dim: 3 input_dim: 20 input_dim: 20
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
  convolution_param { num_output: 8 kernel_size: 3 %s } }
"""


@pytest.mark.parametrize("params, expected", [
    # hole 2 = dilation 2, pad 2: extent 5, (20 + 4 - 5) + 1 = 20
    pytest.param("pad: 2 hole: 2", (1, 8, 20, 20), id="hole2-pad2-same"),
    # hole 4, pad 0: extent 9, 20 - 9 + 1 = 12
    pytest.param("hole: 4", (1, 8, 12, 12), id="hole4-pad0"),
    # hole_h 2 / hole_w 3: extents 5 and 7 -> 16 x 14
    pytest.param("hole_h: 2 hole_w: 3", (1, 8, 16, 14), id="hole-h2-w3"),
])
def test_convolution_deeplab_v1_hole(params, expected):
    assert infer_text(V1_HOLE % params).blobs["conv"] == expected


# =============================================================================================
# §2.3 Deconvolution: out = s(in - 1) + d(k-1) + 1 - 2p

@pytest.mark.parametrize("bottom, params, expected", [
    # A: 2*15 + 4 = 34
    pytest.param((1, 21, 16, 16), "num_output: 21 kernel_size: 4 stride: 2", (1, 21, 34, 34),
                 id="deconv-k4-s2-p0-16"),
    # A: 2*33 + 4 - 2 = 68
    pytest.param((1, 21, 34, 34), "num_output: 21 kernel_size: 4 stride: 2 pad: 1", (1, 21, 68, 68),
                 id="deconv-k4-s2-p1-34"),
    # A: 1*4 + 3 - 2 = 5
    pytest.param((1, 2, 5, 5), "num_output: 3 kernel_size: 3 stride: 1 pad: 1", (1, 3, 5, 5),
                 id="deconv-k3-s1-p1-5"),
    # A: extent 5; 2*6 + 5 = 17
    pytest.param((1, 2, 7, 7), "num_output: 3 kernel_size: 3 dilation: 2 stride: 2", (1, 3, 17, 17),
                 id="deconv-k3-d2-s2-p0-7"),
    # §2.3: 34 -> 70 (FCN upscore_pool4)
    pytest.param((1, 21, 34, 34), "num_output: 21 kernel_size: 4 stride: 2", (1, 21, 70, 70),
                 id="deconv-k4-s2-p0-34"),
    # §2.3: 8*69 + 16 = 568 (FCN-8s upscore8)
    pytest.param((1, 21, 70, 70), "num_output: 21 kernel_size: 16 stride: 8 bias_term: false",
                 (1, 21, 568, 568), id="deconv-k16-s8-70"),
    # §2.3: 32*15 + 64 = 544 (FCN-32s)
    pytest.param((1, 21, 16, 16), "num_output: 21 kernel_size: 64 stride: 32", (1, 21, 544, 544),
                 id="deconv-k64-s32-16"),
    # group 4: 2*4 + 4 = 12
    pytest.param((1, 4, 5, 5), "num_output: 4 kernel_size: 4 stride: 2 group: 4", (1, 4, 12, 12),
                 id="deconv-group4"),
    # kernel_h/w, stride_h/w: H 2*2 + 4 = 8, W 1*4 + 2 = 6
    pytest.param((1, 2, 3, 5), "num_output: 3 kernel_h: 4 kernel_w: 2 stride_h: 2 stride_w: 1",
                 (1, 3, 8, 6), id="deconv-kh4-kw2-sh2-sw1"),
    # 3-D: 2*(3-1) + 2 = 6 on each axis
    pytest.param((1, 2, 3, 3, 3), "num_output: 2 kernel_size: 2 stride: 2", (1, 2, 6, 6, 6),
                 id="deconv3d-k2-s2"),
])
def test_deconvolution(bottom, params, expected):
    assert layer_tops("Deconvolution", f"convolution_param {{ {params} }}", [bottom]) == [expected]


def test_deconvolution_group_error():
    err = layer_error("Deconvolution", "convolution_param { num_output: 4 kernel_size: 2 group: 2 }",
                      [(1, 3, 4, 4)], exc=ShapeError)
    assert "group 2 must divide both the input channels (3)" in str(err)
    assert AT_L in str(err) and located(err, "L", "Deconvolution")


# =============================================================================================
# §2.4 Pooling: CEIL out = ceil((H + 2p - k)/s) + 1, FLOOR with floor; then, only with pad > 0,
# out -= 1 if (out - 1)*s >= H + p.

@pytest.mark.parametrize("bottom, params, expected", [
    # A: ceil(3/2) + 1 = 3
    pytest.param((1, 2, 6, 6), "kernel_size: 3 stride: 2", (1, 2, 3, 3), id="pool-ceil-6-k3-s2-p0"),
    # A: ceil(6/2) + 1 = 4; clip: 3*2 = 6 >= 8? no
    pytest.param((1, 2, 7, 7), "kernel_size: 3 stride: 2 pad: 1", (1, 2, 4, 4), id="pool-ceil-7-k3-s2-p1"),
    # A: ceil(7/2) + 1 = 5; clip: 4*2 = 8 >= 9? no
    pytest.param((1, 2, 8, 8), "kernel_size: 3 stride: 2 pad: 1", (1, 2, 5, 5), id="pool-ceil-8-k3-s2-p1"),
    # §2.4 table: FCN pool1 ceil(696/2) + 1 = 349
    pytest.param((1, 64, 698, 698), "pool: MAX kernel_size: 2 stride: 2", (1, 64, 349, 349),
                 id="pool-ceil-698-k2-s2"),
    # §2.4 table: ceil(347/2) + 1 = 175
    pytest.param((1, 2, 349, 349), "kernel_size: 2 stride: 2", (1, 2, 175, 175), id="pool-ceil-349-k2-s2"),
    # §2.4 table: ceil(111/2) + 1 = 57; clip: 56*2 = 112 >= 113? no
    pytest.param((1, 2, 112, 112), "kernel_size: 3 stride: 2 pad: 1", (1, 2, 57, 57),
                 id="pool-ceil-112-k3-s2-p1"),
    # §2.4 table: ceil(10/2) + 1 = 6
    pytest.param((1, 2, 13, 13), "kernel_size: 3 stride: 2", (1, 2, 6, 6), id="pool-ceil-13-k3-s2-p0"),
    # A / §2.4: ceil(5/2) + 1 = 4, no clip with pad 0 (torch says 3)
    pytest.param((1, 2, 6, 6), "kernel_size: 1 stride: 2", (1, 2, 4, 4), id="pool-ceil-6-k1-s2-p0-no-clip"),
    # §2.4 table: ceil(4/3) + 1 = 3 (torch 2)
    pytest.param((1, 2, 5, 5), "kernel_size: 1 stride: 3", (1, 2, 3, 3), id="pool-ceil-5-k1-s3-p0"),
    # §2.4 table: ceil(4/3) + 1 = 3 (torch 2)
    pytest.param((1, 2, 6, 6), "kernel_size: 2 stride: 3", (1, 2, 3, 3), id="pool-ceil-6-k2-s3-p0"),
    # clip fires (pad > 0): ceil(5/2) + 1 = 4; 3*2 = 6 >= 5 + 1 -> 3
    pytest.param((1, 2, 5, 5), "kernel_size: 2 stride: 2 pad: 1", (1, 2, 3, 3), id="pool-ceil-5-k2-s2-p1-clip"),
    # clip fires: ceil(1/2) + 1 = 2; 1*2 = 2 >= 1 + 1 -> 1
    pytest.param((1, 2, 1, 1), "kernel_size: 2 stride: 2 pad: 1", (1, 2, 1, 1), id="pool-ceil-1-k2-s2-p1-clip"),
    # §2.4: ceil(-0.5) = -0 -> 1
    pytest.param((1, 2, 1, 1), "kernel_size: 2 stride: 2", (1, 2, 1, 1), id="pool-ceil-1-k2-s2-p0-neg-zero"),
    # A FLOOR: floor(6/2) + 1 = 4
    pytest.param((1, 2, 7, 7), "kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR", (1, 2, 4, 4),
                 id="pool-floor-7-k3-s2-p1"),
    # A FLOOR: floor(7/2) + 1 = 4
    pytest.param((1, 2, 8, 8), "kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR", (1, 2, 4, 4),
                 id="pool-floor-8-k3-s2-p1"),
    # FLOOR: floor(5/2) + 1 = 3
    pytest.param((1, 2, 6, 6), "kernel_size: 1 stride: 2 round_mode: FLOOR", (1, 2, 3, 3),
                 id="pool-floor-6-k1-s2-p0"),
    # §8: FLOOR FCN pool1 on 698 -> 349 and pool4 on 87 -> floor(85/2) + 1 = 43
    pytest.param((1, 2, 87, 87), "kernel_size: 2 stride: 2 round_mode: FLOOR", (1, 2, 43, 43),
                 id="pool-floor-87-k2-s2"),
    pytest.param((1, 2, 8, 8), "kernel_size: 3 stride: 2 pad: 1 round_mode: CEIL", (1, 2, 5, 5),
                 id="pool-round-mode-ceil-explicit"),
    # §1.11 fork spelling: ceil_mode false == round_mode FLOOR
    pytest.param((1, 2, 8, 8), "kernel_size: 3 stride: 2 pad: 1 ceil_mode: false", (1, 2, 4, 4),
                 id="pool-fork-ceil-mode-false-8-k3-s2-p1"),
    pytest.param((1, 2, 8, 8), "kernel_size: 3 stride: 2 pad: 1 ceil_mode: true", (1, 2, 5, 5),
                 id="pool-fork-ceil-mode-true-8-k3-s2-p1"),
    pytest.param((1, 2, 6, 6), "pool: AVE kernel_size: 3 stride: 2", (1, 2, 3, 3), id="pool-ave-6-k3-s2"),
    pytest.param((1, 2, 8, 8), "pool: AVE kernel_size: 3 stride: 2 pad: 1", (1, 2, 5, 5),
                 id="pool-ave-8-k3-s2-p1"),
    pytest.param((1, 2, 6, 6), "pool: STOCHASTIC kernel_size: 3 stride: 2", (1, 2, 3, 3),
                 id="pool-stochastic-6-k3-s2"),
    # kernel_h/w, stride_h/w, pad_h/w: H ceil((7+2-3)/2)+1 = 4 (6 >= 8? no);
    # W ceil((9+2-2)/3)+1 = 4 (9 >= 10? no)
    pytest.param((1, 1, 7, 9), "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 1",
                 (1, 1, 4, 4), id="pool-kh3-kw2-sh2-sw3-ph1-pw1"),
    # stride larger than kernel on W only, pad 0 everywhere: W ceil(5/3)+1 = 3
    pytest.param((1, 1, 4, 7), "kernel_h: 2 kernel_w: 2 stride_h: 2 stride_w: 3", (1, 1, 2, 3),
                 id="pool-kh2-kw2-sh2-sw3"),
    # §3.x / App. C 16: the quotient is a float32: 16777217 rounds to 16777216.0f, so
    # ceil(16777216) + 1 = 16777217 (exact arithmetic would give 16777218)
    pytest.param((1, 1, 16777218, 1), "kernel_size: 1 stride: 1", (1, 1, 16777217, 1),
                 id="pool-ceil-float32-quotient-2pow24-plus-1"),
    # Caffe's check is "kernel_size XOR (kernel_h AND kernel_w)": kernel_size with kernel_h alone
    # passes it and kernel_size is used: ceil(3/2) + 1 = 3
    pytest.param((1, 2, 6, 6), "kernel_size: 3 kernel_h: 5 stride: 2", (1, 2, 3, 3),
                 id="pool-kernel-size-with-kernel-h-alone-uses-kernel-size"),
    # global pooling: kernel = (H, W) -> 1x1 (A: 7x9)
    pytest.param((2, 5, 7, 9), "pool: AVE global_pooling: true", (2, 5, 1, 1), id="pool-global-ave-7x9"),
    pytest.param((2, 5, 7, 9), "global_pooling: true", (2, 5, 1, 1), id="pool-global-max-7x9"),
])
def test_pooling(bottom, params, expected):
    assert layer_tops("Pooling", f"pooling_param {{ {params} }}", [bottom]) == [expected]


def test_pooling_clip_on_unpadded_axis_when_other_axis_padded():
    # pooling_layer.cpp Reshape: if (pad_h_ || pad_w_) { clip H; clip W; }
    # H: ceil((7+2-3)/2)+1 = 4; 3*2 = 6 >= 7+1? no -> 4
    # W: ceil((6+0-1)/2)+1 = 4; 3*2 = 6 >= 6+0 -> yes -> 3   (pad_h = 1 enables the clip)
    tops = layer_tops("Pooling", "pooling_param { kernel_h: 3 kernel_w: 1 stride: 2 pad_h: 1 pad_w: 0 }",
                      [(1, 1, 7, 6)])
    assert tops == [(1, 1, 4, 3)]


def test_pooling_max_two_tops():
    # §2.4: MAX may have a second top (the argmax mask), same shape
    tops = layer_tops("Pooling", "pooling_param { pool: MAX kernel_size: 2 stride: 2 }", [(1, 3, 9, 9)], 2)
    assert tops == [(1, 3, 5, 5), (1, 3, 5, 5)]


@pytest.mark.parametrize("bottom, params, ntops, words", [
    pytest.param((1, 2, 8, 8), "kernel_size: 2 pad: 2", 1, "pad [2, 2] must be smaller than the kernel [2, 2]",
                 id="pad-equals-kernel"),
    pytest.param((1, 2, 8, 8), "kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 2", 1, "must be smaller than the kernel",
                 id="pad-w-equals-kernel-w"),
    pytest.param((1, 2, 8, 8), "pool: STOCHASTIC kernel_size: 3 pad: 1", 1,
                 "padding is only implemented for MAX and AVE pooling, not STOCHASTIC", id="pad-with-stochastic"),
    pytest.param((1, 2, 8, 8), "kernel_size: 3 kernel_h: 3 kernel_w: 3", 1, "not both",
                 id="kernel-size-with-kernel-h-and-w"),
    pytest.param((1, 2, 8, 8), "kernel_h: 3", 1, "give kernel_size, or kernel_h and kernel_w",
                 id="kernel-h-without-kernel-w"),
    pytest.param((1, 2, 8, 8), "stride: 2", 1, "give kernel_size, or kernel_h and kernel_w", id="no-kernel"),
    pytest.param((1, 2, 8, 8), "kernel_size: 3 pad_h: 1", 1, "give pad, or pad_h and pad_w", id="pad-h-alone"),
    pytest.param((1, 2, 8, 8), "kernel_size: 3 pad: 1 pad_h: 1 pad_w: 1", 1, "give pad, or pad_h and pad_w",
                 id="pad-with-pad-h-w"),
    pytest.param((1, 2, 8, 8), "kernel_size: 3 stride_w: 2", 1, "give stride, or stride_h and stride_w",
                 id="stride-w-alone"),
    pytest.param((1, 2, 8, 8), "global_pooling: true kernel_size: 3", 1, "do not give a kernel size",
                 id="global-with-kernel"),
    pytest.param((1, 2, 8, 8), "global_pooling: true stride: 2", 1, "global_pooling needs pad 0 and stride 1",
                 id="global-with-stride"),
    pytest.param((2, 3, 8), "kernel_size: 2", 1, "Pooling needs a 4-axis (N, C, H, W) bottom, got (2, 3, 8)",
                 id="bottom-3d"),
    pytest.param((1, 2, 3, 8, 8), "kernel_size: 2", 1, "4-axis", id="bottom-5d"),
    pytest.param((1, 2, 8, 8), "pool: AVE kernel_size: 2", 2, "a second top (the argmax mask) exists only for MAX",
                 id="ave-two-tops"),
])
def test_pooling_errors(bottom, params, ntops, words):
    err = layer_error("Pooling", f"pooling_param {{ {params} }}", [bottom], ntops, exc=ShapeError)
    assert words in str(err)
    assert AT_L in str(err) and located(err, "L", "Pooling")


# =============================================================================================
# §2.5 InnerProduct: top = bottom[:axis] + (num_output,)

@pytest.mark.parametrize("bottom, params, expected", [
    # A: (N,256,6,6) -> (N,4096), 2-D, not (N,4096,1,1)
    pytest.param((10, 256, 6, 6), "num_output: 4096", (10, 4096), id="ip-256x6x6-to-4096"),
    # A: axis 2 on (N,T,D) -> (N,T,num_output)
    pytest.param((5, 7, 32), "num_output: 10 axis: 2", (5, 7, 10), id="ip-axis2-3d"),
    pytest.param((5, 7, 32), "num_output: 10 axis: -1", (5, 7, 10), id="ip-axis-neg1-3d"),
    pytest.param((4, 100), "num_output: 10", (4, 10), id="ip-2d"),
    # axis 0: everything flattened into K, top (num_output,)
    pytest.param((3, 4), "num_output: 10 axis: 0", (10,), id="ip-axis0"),
    pytest.param((2, 512, 7, 7), "num_output: 1000 transpose: true", (2, 1000), id="ip-transpose"),
])
def test_inner_product(bottom, params, expected):
    assert layer_tops("InnerProduct", f"inner_product_param {{ {params} }}", [bottom]) == [expected]


@pytest.mark.parametrize("bottom, params, words", [
    pytest.param((2, 3), "axis: 1", "num_output must be given", id="num-output-missing"),
    pytest.param((2, 3, 4, 5), "num_output: 3 axis: 4", "axis 4 is out of range for a 4-axis blob",
                 id="axis-out-of-range"),
])
def test_inner_product_errors(bottom, params, words):
    err = layer_error("InnerProduct", f"inner_product_param {{ {params} }}", [bottom], exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "InnerProduct")


# =============================================================================================
# §2.0 shape-preserving layers: top == bottom[0]

@pytest.mark.parametrize("type_, params, bottom", [
    pytest.param("ReLU", "relu_param { negative_slope: 0.1 }", (2, 3, 5, 7), id="relu"),
    pytest.param("ReLU", "", (2, 3, 4, 5, 6), id="relu-5d"),
    pytest.param("PReLU", "prelu_param { channel_shared: true }", (2, 3, 5, 7), id="prelu"),
    pytest.param("PReLU", "", (4, 10), id="prelu-2d"),
    pytest.param("ELU", "elu_param { alpha: 0.5 }", (2, 3, 5, 7), id="elu"),
    pytest.param("Sigmoid", "", (4, 10), id="sigmoid-2d"),
    pytest.param("TanH", "", (2, 3, 5, 7), id="tanh"),
    pytest.param("AbsVal", "", (2, 3, 5, 7), id="absval"),
    pytest.param("BNLL", "", (6,), id="bnll-1d"),
    pytest.param("Power", "power_param { power: 2 scale: 0.5 shift: 1 }", (2, 3, 5, 7), id="power"),
    pytest.param("Exp", "exp_param { base: 2 scale: 3 }", (2, 3, 5, 7), id="exp"),
    pytest.param("Log", "log_param { base: 10 shift: 1 }", (2, 3, 5, 7), id="log"),
    pytest.param("Threshold", "threshold_param { threshold: 0.5 }", (2, 3, 5, 7), id="threshold"),
    pytest.param("Clip", "clip_param { min: -1 max: 1 }", (2, 3, 5, 7), id="clip"),
    pytest.param("Swish", "swish_param { beta: 1.5 }", (2, 3, 5, 7), id="swish"),
    pytest.param("Dropout", "dropout_param { dropout_ratio: 0.3 }", (2, 4096), id="dropout"),
    pytest.param("LRN", "lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }", (2, 96, 55, 55), id="lrn"),
    pytest.param("LRN", "lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL }", (2, 8, 5, 5),
                 id="lrn-within-channel"),
    pytest.param("MVN", "mvn_param { normalize_variance: false across_channels: true }", (2, 3, 5, 7), id="mvn"),
    pytest.param("BatchNorm", "batch_norm_param { use_global_stats: true eps: 0.001 }", (2, 3, 5, 7),
                 id="batchnorm"),
    pytest.param("BatchNorm", "", (8, 16), id="batchnorm-2d"),
    pytest.param("Scale", "scale_param { bias_term: true }", (2, 3, 5, 7), id="scale"),
    pytest.param("Bias", "", (2, 3, 5, 7), id="bias"),
    pytest.param("Softmax", "", (2, 21, 5, 5), id="softmax"),
    pytest.param("Softmax", "softmax_param { axis: -1 }", (2, 3, 4), id="softmax-axis-neg1"),
    # forks: PSPNet BN, SSD Normalize
    pytest.param("BN", "bn_param { momentum: 0.95 eps: 0.00001 }", (1, 64, 30, 30), id="bn-pspnet"),
    pytest.param("Normalize", "norm_param { across_spatial: false channel_shared: false }", (1, 512, 38, 38),
                 id="normalize-ssd"),
])
def test_shape_preserving(type_, params, bottom):
    assert layer_tops(type_, params, [bottom]) == [bottom]


@pytest.mark.parametrize("type_, params, bottom, words", [
    pytest.param("LRN", "", (2, 96, 55), "LRN needs a 4-axis bottom, got (2, 96, 55)", id="lrn-3d"),
    pytest.param("LRN", "lrn_param { local_size: 4 }", (2, 96, 5, 5), "local_size must be odd, got 4",
                 id="lrn-even-local-size"),
    pytest.param("PReLU", "", (6,), "PReLU needs a bottom with at least 2 axes", id="prelu-1d"),
    pytest.param("Exp", "exp_param { base: -2 }", (2, 3), "base must be > 0 (or -1 for e), got -2", id="exp-base"),
    pytest.param("Log", "log_param { base: 0 }", (2, 3), "base must be > 0", id="log-base-0"),
    pytest.param("Softmax", "softmax_param { axis: 4 }", (2, 3, 4, 5), "axis 4 is out of range",
                 id="softmax-axis"),
    pytest.param("Normalize", "", (6,), "Normalize needs at least 2 axes", id="normalize-1d"),
])
def test_shape_preserving_errors(type_, params, bottom, words):
    err = layer_error(type_, params, [bottom], exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", type_)


# =============================================================================================
# §2.15 Scale / Bias: one bottom (learned operand bottom[axis : axis+num_axes]) or two
# (bottom1.shape == bottom0.shape[axis : axis + bottom1.ndim]); shape preserved.

@pytest.mark.parametrize("type_, params, bottoms", [
    pytest.param("Scale", "", [(2, 3, 4, 5), (3,)], id="scale-2bottoms-channel"),
    pytest.param("Scale", "", [(2, 3, 4, 5), (3, 4)], id="scale-2bottoms-c-h"),
    pytest.param("Scale", "scale_param { axis: 0 }", [(2, 3, 4, 5), (2, 3)], id="scale-2bottoms-axis0"),
    pytest.param("Scale", "scale_param { axis: -2 }", [(2, 3, 4, 5), (4, 5)], id="scale-2bottoms-axis-neg2"),
    # a 0-axis second bottom is a scalar and `axis` is ignored (even an out-of-range one)
    pytest.param("Scale", "scale_param { axis: 7 }", [(2, 3, 4, 5), ()], id="scale-2bottoms-scalar"),
    pytest.param("Scale", "scale_param { axis: 2 num_axes: 2 }", [(2, 3, 4, 5)], id="scale-axis2-num-axes2"),
    pytest.param("Scale", "scale_param { axis: 1 num_axes: -1 }", [(2, 3, 4, 5)], id="scale-num-axes-to-end"),
    pytest.param("Scale", "scale_param { num_axes: 0 }", [(2, 3, 4, 5)], id="scale-num-axes0-scalar"),
    pytest.param("Bias", "", [(2, 3, 4, 5), (3,)], id="bias-2bottoms-channel"),
    pytest.param("Bias", "bias_param { axis: 3 }", [(2, 3, 4, 5), (5,)], id="bias-2bottoms-axis3"),
    pytest.param("Bias", "bias_param { axis: 1 num_axes: 3 }", [(2, 3, 4, 5)], id="bias-axis1-num-axes3"),
])
def test_scale_bias(type_, params, bottoms):
    assert layer_tops(type_, params, bottoms) == [bottoms[0]]


@pytest.mark.parametrize("type_, params, bottoms, words", [
    pytest.param("Scale", "", [(2, 3, 4, 5), (4,)],
                 "the scale bottom (4,) must equal bottom 0's axes 1..1: (3,) of (2, 3, 4, 5)",
                 id="scale-2bottoms-mismatch"),
    # (4, 5, 6) from axis 2 runs past the end of (2, 3, 4, 5)
    pytest.param("Scale", "scale_param { axis: 2 }", [(2, 3, 4, 5), (4, 5, 6)], "must equal bottom 0's axes",
                 id="scale-2bottoms-past-end"),
    pytest.param("Scale", "scale_param { axis: 2 num_axes: 3 }", [(2, 3, 4, 5)],
                 "axis 2 + num_axes 3 runs past the 4 axes", id="scale-num-axes-past-end"),
    pytest.param("Scale", "scale_param { num_axes: -2 }", [(2, 3, 4, 5)], "num_axes must be -1",
                 id="scale-num-axes-neg2"),
    pytest.param("Scale", "scale_param { axis: 4 }", [(2, 3, 4, 5), (3,)], "axis 4 is out of range",
                 id="scale-axis-out-of-range"),
    pytest.param("Bias", "", [(2, 3, 4, 5), (2, 3)], "the bias bottom (2, 3) must equal",
                 id="bias-2bottoms-mismatch"),
])
def test_scale_bias_errors(type_, params, bottoms, words):
    err = layer_error(type_, params, bottoms, exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", type_)


# =============================================================================================
# §2.7 Eltwise: identical shape vectors, coeff count 0 or #bottoms, no coeff with PROD

@pytest.mark.parametrize("params, bottoms", [
    pytest.param("", [(1, 21, 34, 34), (1, 21, 34, 34)], id="sum-default"),
    pytest.param("eltwise_param { operation: SUM coeff: 1 coeff: -1 coeff: 0.5 }", [(2, 3)] * 3,
                 id="sum-coeff-3"),
    pytest.param("eltwise_param { operation: PROD }", [(2, 3, 4)] * 2, id="prod"),
    # MAX ignores coeff (only PROD rejects it)
    pytest.param("eltwise_param { operation: MAX coeff: 1 coeff: 2 }", [(2, 3, 4)] * 2, id="max-with-coeff"),
])
def test_eltwise(params, bottoms):
    assert layer_tops("Eltwise", params, bottoms) == [bottoms[0]]


@pytest.mark.parametrize("params, bottoms, words", [
    # same count (24) but different shapes: an error (no reshaping, no broadcasting)
    pytest.param("", [(2, 12), (2, 3, 4)],
                 "all bottoms must have the same shape: bottom 0 'b0' is (2, 12), bottom 1 'b1' is (2, 3, 4)",
                 id="same-count-different-shape"),
    pytest.param("", [(1, 3, 4, 4), (1, 3, 4, 5)], "must have the same shape", id="different-width"),
    pytest.param("", [(1, 3, 4, 4), (1, 1, 4, 4)], "must have the same shape", id="no-broadcast"),
    pytest.param("eltwise_param { coeff: 1 coeff: 1 coeff: 1 }", [(2, 3), (2, 3)],
                 "3 coeff values for 2 bottoms", id="coeff-count"),
    pytest.param("eltwise_param { operation: PROD coeff: 1 coeff: 1 }", [(2, 3), (2, 3)],
                 "coeff applies to SUM only, not PROD", id="coeff-with-prod"),
])
def test_eltwise_errors(params, bottoms, words):
    err = layer_error("Eltwise", params, bottoms, exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "Eltwise")


def test_eltwise_one_bottom_is_a_graph_error():
    err = layer_error("Eltwise", "", [(2, 3)], exc=GraphError)
    assert "Eltwise takes at least 2 bottoms, got 1" in str(err) and located(err, "L", "Eltwise")


# =============================================================================================
# §2.8 Concat: sum along the axis, every other axis equal

@pytest.mark.parametrize("params, bottoms, expected", [
    pytest.param("", [(1, 2, 4, 4), (1, 3, 4, 4)], (1, 5, 4, 4), id="concat-default-axis1"),
    pytest.param("concat_param { axis: 0 }", [(2, 3), (5, 3), (1, 3)], (8, 3), id="concat-axis0"),
    pytest.param("concat_param { axis: -1 }", [(1, 2, 4, 4), (1, 2, 4, 6)], (1, 2, 4, 10),
                 id="concat-axis-neg1"),
    pytest.param("concat_param { concat_dim: 0 }", [(2, 3), (5, 3)], (7, 3), id="concat-legacy-concat-dim0"),
    pytest.param("concat_param { concat_dim: 2 }", [(1, 2, 3, 4), (1, 2, 5, 4)], (1, 2, 8, 4),
                 id="concat-legacy-concat-dim2"),
    pytest.param("", [(1, 7, 2, 2)], (1, 7, 2, 2), id="concat-one-bottom"),
])
def test_concat(params, bottoms, expected):
    assert layer_tops("Concat", params, bottoms) == [expected]


@pytest.mark.parametrize("params, bottoms, words", [
    pytest.param("", [(1, 2, 4, 4), (1, 3, 5, 4)],
                 "bottom 1 'b1' (1, 3, 5, 4) does not match bottom 0 (1, 2, 4, 4) on the axes other than "
                 "the concat axis 1", id="mismatch"),
    pytest.param("", [(1, 2, 4, 4), (1, 2, 4)], "does not match bottom 0", id="different-axis-count"),
    pytest.param("concat_param { axis: 1 concat_dim: 1 }", [(1, 2), (1, 2)],
                 "give axis or the legacy concat_dim, not both",
                 id="axis-and-concat-dim"),
    pytest.param("concat_param { concat_dim: 4 }", [(1, 2, 3, 4)] * 2, "concat_dim 4 is out of range",
                 id="concat-dim-out-of-range"),
    pytest.param("concat_param { axis: -5 }", [(1, 2, 3, 4)] * 2, "axis -5 is out of range", id="axis-out-of-range"),
])
def test_concat_errors(params, bottoms, words):
    err = layer_error("Concat", params, bottoms, exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "Concat")


# =============================================================================================
# §2.9 Slice: sizes from slice_point differences, or equal parts

@pytest.mark.parametrize("params, bottom, expected", [
    # A: D = 10, slice_point [3, 7] -> 3, 4, 3
    pytest.param("slice_param { slice_point: 3 slice_point: 7 }", (2, 10, 5), [(2, 3, 5), (2, 4, 5), (2, 3, 5)],
                 id="slice-points-3-7-of-10"),
    # A: no points, 2 tops -> 5, 5
    pytest.param("", (2, 10, 5), [(2, 5, 5), (2, 5, 5)], id="slice-equal-2-of-10"),
    pytest.param("slice_param { slice_dim: 2 }", (1, 2, 6), [(1, 2, 2)] * 3, id="slice-legacy-slice-dim2"),
    pytest.param("slice_param { axis: -1 slice_point: 1 }", (4, 5), [(4, 1), (4, 4)], id="slice-axis-neg1"),
    pytest.param("slice_param { axis: 0 }", (6, 3), [(2, 3)] * 3, id="slice-axis0-equal-3"),
])
def test_slice(params, bottom, expected):
    assert layer_tops("Slice", params, [bottom], ntops=len(expected)) == expected


@pytest.mark.parametrize("params, bottom, ntops, words", [
    pytest.param("slice_param { slice_point: 3 slice_point: 7 }", (2, 10), 2, "2 slice points for 2 tops: need 1",
                 id="point-count"),
    pytest.param("slice_param { slice_point: 5 slice_point: 3 }", (2, 10), 3, "must be increasing",
                 id="points-not-increasing"),
    pytest.param("slice_param { slice_point: 3 slice_point: 12 }", (2, 10), 3, "inside (0, 10)",
                 id="point-past-end"),
    pytest.param("slice_param { slice_point: 0 }", (2, 10), 2, "must be increasing", id="point-zero"),
    pytest.param("", (2, 10), 3, "axis 1 has size 10, which does not divide into 3 equal tops",
                 id="unequal-split"),
    pytest.param("slice_param { axis: 1 slice_dim: 1 }", (2, 10), 2, "give axis or the legacy slice_dim, not both",
                 id="axis-and-slice-dim"),
])
def test_slice_errors(params, bottom, ntops, words):
    err = layer_error("Slice", params, [bottom], ntops, exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "Slice")


# =============================================================================================
# §2.10 Split / Silence

def test_split_every_top_has_the_bottom_shape():
    assert layer_tops("Split", "", [(1, 3, 5, 5)], ntops=3) == [(1, 3, 5, 5)] * 3


def test_silence_has_no_tops():
    assert layer_tops("Silence", "", [(1, 3), (2,)], ntops=0) == []


# =============================================================================================
# §2.6 Crop: axes < axis from bottom0, axes >= axis from bottom1, bottom0[i] - off_i >= bottom1[i]

@pytest.mark.parametrize("params, bottoms, expected", [
    # A / §8: score_pool4c, 44 - 5 = 39 >= 34
    pytest.param("crop_param { axis: 2 offset: 5 }", [(1, 21, 44, 44), (1, 21, 34, 34)], (1, 21, 34, 34),
                 id="crop-fcn-score-pool4c-offset5"),
    # A: axis 1 offsets [1, 2, 3]: (2,5,10,10) vs (2,3,4,4) -> [:, 1:4, 2:6, 3:7]
    pytest.param("crop_param { axis: 1 offset: 1 offset: 2 offset: 3 }", [(2, 5, 10, 10), (2, 3, 4, 4)],
                 (2, 3, 4, 4), id="crop-axis1-offsets-1-2-3"),
    # one offset for every cropped axis: 10 - 3 >= 4, 12 - 3 >= 5
    pytest.param("crop_param { offset: 3 }", [(1, 3, 10, 12), (1, 3, 4, 5)], (1, 3, 4, 5),
                 id="crop-single-offset-broadcast"),
    # default axis 2, no offset: N and C from bottom0 even though bottom1 differs there
    pytest.param("", [(1, 3, 10, 10), (5, 1, 4, 4)], (1, 3, 4, 4), id="crop-default-axis2-keeps-n-c"),
    pytest.param("crop_param { axis: 0 }", [(4, 3, 10, 10), (2, 2, 5, 5)], (2, 2, 5, 5), id="crop-axis0"),
    pytest.param("crop_param { axis: -1 offset: 6 }", [(1, 3, 10, 10), (1, 1, 1, 4)], (1, 3, 10, 4),
                 id="crop-axis-neg1"),
    # exact fit: 44 - 10 = 34
    pytest.param("crop_param { axis: 2 offset: 10 }", [(1, 21, 44, 44), (1, 21, 34, 34)], (1, 21, 34, 34),
                 id="crop-exact-fit"),
])
def test_crop(params, bottoms, expected):
    assert layer_tops("Crop", params, bottoms) == [expected]


@pytest.mark.parametrize("params, bottoms, words", [
    # A: offset 11 -> 44 - 11 = 33 < 34
    pytest.param("crop_param { axis: 2 offset: 11 }", [(1, 21, 44, 44), (1, 21, 34, 34)],
                 "crop out of bounds on axis 2: window [11, 45) of size 34 (from 'b1') does not fit in 44: "
                 "44 - 11 < 34", id="offset-11-out-of-bounds"),
    pytest.param("", [(1, 3, 10, 10), (1, 3, 4, 12)], "crop out of bounds on axis 3", id="reference-larger"),
    pytest.param("crop_param { axis: 1 offset: 1 offset: 2 }", [(2, 5, 10, 10), (2, 3, 4, 4)],
                 "2 offsets for the 3 cropped axes", id="offset-count"),
    pytest.param("", [(1, 3, 10, 10), (10, 10)], "has fewer axes than", id="reference-fewer-axes"),
])
def test_crop_errors(params, bottoms, words):
    err = layer_error("Crop", params, bottoms, exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "Crop")


# =============================================================================================
# §2.12 Flatten: bottom[:s] + (prod(bottom[s:e+1]),) + bottom[e+1:]

@pytest.mark.parametrize("params, bottom, expected", [
    pytest.param("", (2, 3, 4, 5), (2, 60), id="flatten-default"),
    pytest.param("flatten_param { axis: 2 }", (2, 3, 4, 5), (2, 3, 20), id="flatten-axis2"),
    pytest.param("flatten_param { axis: 1 end_axis: 2 }", (2, 3, 4, 5), (2, 12, 5), id="flatten-axis1-end2"),
    pytest.param("flatten_param { end_axis: -2 }", (2, 3, 4, 5), (2, 12, 5), id="flatten-end-neg2"),
    pytest.param("flatten_param { axis: 0 }", (2, 3, 4, 5), (120,), id="flatten-axis0"),
    pytest.param("flatten_param { axis: -1 }", (2, 3, 4, 5), (2, 3, 4, 5), id="flatten-axis-neg1-noop"),
    pytest.param("", (4, 10), (4, 10), id="flatten-2d"),
])
def test_flatten(params, bottom, expected):
    assert layer_tops("Flatten", params, [bottom]) == [expected]


def test_flatten_end_axis_just_before_axis_inserts_unit_axis():
    # flatten_layer.cpp: top = shape[:2] + (count(2, 2) = 1,) + shape[2:] = (2, 3, 1, 4)
    assert layer_tops("Flatten", "flatten_param { axis: 2 end_axis: 1 }", [(2, 3, 4)]) == [(2, 3, 1, 4)]


def test_flatten_axis_out_of_range():
    err = layer_error("Flatten", "flatten_param { axis: 4 }", [(2, 3, 4, 5)], exc=ShapeError)
    assert "axis 4 is out of range for a 4-axis blob" in str(err) and AT_L in str(err)
    assert located(err, "L", "Flatten")


# =============================================================================================
# §2.11 Reshape: start = axis >= 0 ? axis : n + axis + 1; 0 copies, one -1 inferred

def _reshape(dims, extra=""):
    return "reshape_param { shape { " + "".join(f"dim: {d} " for d in dims) + "} " + extra + " }"


@pytest.mark.parametrize("params, bottom, expected", [
    # §2.11 examples
    pytest.param(_reshape([0, 2, -1]), (2, 8), (2, 2, 4), id="reshape-0-2-neg1"),
    pytest.param(_reshape([1], "num_axes: 0"), (2, 8), (1, 2, 8), id="reshape-insert-front-num-axes0"),
    pytest.param(_reshape([1], "axis: 1 num_axes: 0"), (2, 8), (2, 1, 8), id="reshape-insert-axis1"),
    pytest.param(_reshape([-1], "axis: 1 num_axes: 2"), (2, 3, 4, 5), (2, 12, 5), id="reshape-merge-axes-1-2"),
    # axis -1 means "after the last axis": start = 2 - 1 + 1 = 2
    pytest.param(_reshape([1], "axis: -1 num_axes: 0"), (2, 8), (2, 8, 1), id="reshape-axis-neg1-appends"),
    # axis -2 on 4 axes: start = 4 - 2 + 1 = 3 (the last axis), replaced by (5, 1)
    pytest.param(_reshape([5, 1], "axis: -2 num_axes: 1"), (2, 3, 4, 5), (2, 3, 4, 5, 1),
                 id="reshape-axis-neg2-is-last-axis"),
    pytest.param(_reshape([0, -1]), (2, 3, 4, 5), (2, 60), id="reshape-0-neg1"),
    pytest.param(_reshape([0, 0, -1]), (1, 3, 500, 500), (1, 3, 250000), id="reshape-0-0-neg1"),
    # -1 inferred within the replaced range: 120 / (6 * 4 * 5) = 1
    pytest.param(_reshape([6, -1], "axis: 0 num_axes: 2"), (2, 3, 4, 5), (6, 1, 4, 5),
                 id="reshape-axis0-num-axes2"),
    pytest.param(_reshape([-1]), (2, 3, 4), (24,), id="reshape-flatten-all"),
    pytest.param(_reshape([4, 6]), (2, 3, 4), (4, 6), id="reshape-explicit"),
])
def test_reshape(params, bottom, expected):
    assert layer_tops("Reshape", params, [bottom]) == [expected]


@pytest.mark.parametrize("params, bottom, words", [
    pytest.param(_reshape([7]), (2, 8), "(7,) holds 7 values, the bottom (2, 8) holds 16", id="count-mismatch"),
    pytest.param(_reshape([-1, -1]), (2, 8), "at most one -1", id="two-neg1"),
    pytest.param(_reshape([3, -1]), (2, 8), "cannot infer the -1", id="neg1-not-divisible"),
    pytest.param(_reshape([0, 0, 0]), (2, 8), "shape dim 2 is 0 (copy), but bottom axis 2 does not exist",
                 id="copy-missing-axis"),
    pytest.param(_reshape([1], "axis: 3"), (2, 8), "axis 3 is out of range", id="axis-past-end"),
    # start = 2 - 4 + 1 = -1 < 0
    pytest.param(_reshape([1], "axis: -4"), (2, 8), "axis -4 is out of range", id="axis-neg-out-of-range"),
    pytest.param(_reshape([16], "axis: 1 num_axes: 2"), (2, 8), "runs past the 2 axes", id="num-axes-past-end"),
    pytest.param(_reshape([-2, 8]), (2, 8), "shape dims must be >= -1, got -2", id="dim-neg2"),
])
def test_reshape_errors(params, bottom, words):
    err = layer_error("Reshape", params, [bottom], exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "Reshape")


# =============================================================================================
# Reduction (reduction_layer.cpp): top = bottom[:axis], default axis 0 (a 0-axis scalar)

@pytest.mark.parametrize("params, bottom, expected", [
    pytest.param("", (2, 3, 4), (), id="reduction-default-axis0-scalar"),
    pytest.param("reduction_param { axis: 1 }", (2, 3, 4), (2,), id="reduction-axis1"),
    pytest.param("reduction_param { operation: MEAN axis: 2 }", (2, 3, 4), (2, 3), id="reduction-mean-axis2"),
    pytest.param("reduction_param { operation: SUMSQ axis: -1 }", (2, 3, 4), (2, 3), id="reduction-axis-neg1"),
])
def test_reduction(params, bottom, expected):
    assert layer_tops("Reduction", params, [bottom]) == [expected]


# =============================================================================================
# §2.14 ArgMax

@pytest.mark.parametrize("params, bottom, expected", [
    # A: no axis, top_k 1 -> (N, 1, 1, 1)
    pytest.param("", (2, 21, 5, 5), (2, 1, 1, 1), id="argmax-flat-k1"),
    # A: out_max_val -> (N, 2, top_k, 1)
    pytest.param("argmax_param { out_max_val: true }", (2, 21, 5, 5), (2, 2, 1, 1), id="argmax-flat-out-max-val"),
    pytest.param("argmax_param { top_k: 5 }", (2, 21, 5, 5), (2, 1, 5, 1), id="argmax-flat-k5"),
    # (N, K) -> padded to 3 axes: (N, 1, top_k)
    pytest.param("argmax_param { top_k: 3 }", (4, 10), (4, 1, 3), id="argmax-flat-2d-k3"),
    pytest.param("argmax_param { top_k: 2 out_max_val: true }", (4, 10), (4, 2, 2), id="argmax-flat-2d-out-max-val"),
    # A: axis 1 -> (N, 1, H, W)
    pytest.param("argmax_param { axis: 1 }", (2, 21, 5, 5), (2, 1, 5, 5), id="argmax-axis1"),
    pytest.param("argmax_param { axis: 1 top_k: 3 }", (2, 21, 5, 5), (2, 3, 5, 5), id="argmax-axis1-k3"),
    # with an axis, out_max_val replaces the indices: no extra axis
    pytest.param("argmax_param { axis: 1 out_max_val: true }", (2, 21, 5, 5), (2, 1, 5, 5),
                 id="argmax-axis1-out-max-val"),
    pytest.param("argmax_param { axis: -1 }", (2, 21, 5, 6), (2, 21, 5, 1), id="argmax-axis-neg1"),
    # axis 0 given explicitly (presence matters: not the flattened mode)
    pytest.param("argmax_param { axis: 0 }", (4, 10), (1, 10), id="argmax-axis0-present"),
])
def test_argmax(params, bottom, expected):
    assert layer_tops("ArgMax", params, [bottom]) == [expected]


@pytest.mark.parametrize("params, bottom, words", [
    pytest.param("argmax_param { axis: 2 top_k: 6 }", (2, 21, 5, 5), "top_k 6 is larger than axis 2 (5)",
                 id="top-k-larger-than-axis"),
    pytest.param("argmax_param { top_k: 11 }", (4, 10), "top_k 11 is larger than the 10 values per item",
                 id="top-k-larger-than-item"),
    pytest.param("argmax_param { top_k: 0 }", (4, 10), "top_k must be >= 1", id="top-k-0"),
])
def test_argmax_errors(params, bottom, words):
    err = layer_error("ArgMax", params, [bottom], exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "ArgMax")


# =============================================================================================
# Tile (tile_layer.cpp): shape[axis] *= tiles; Embed (embed_layer.cpp): shape + (num_output,)

@pytest.mark.parametrize("type_, params, bottom, expected", [
    pytest.param("Tile", "tile_param { tiles: 3 }", (2, 3, 4), (2, 9, 4), id="tile-default-axis1"),
    pytest.param("Tile", "tile_param { axis: -1 tiles: 2 }", (2, 3, 4), (2, 3, 8), id="tile-axis-neg1"),
    pytest.param("Tile", "tile_param { axis: 0 tiles: 1 }", (2, 3, 4), (2, 3, 4), id="tile-once"),
    pytest.param("Embed", "embed_param { num_output: 16 input_dim: 100 }", (5,), (5, 16), id="embed-1d"),
    pytest.param("Embed", "embed_param { num_output: 16 input_dim: 100 }", (2, 7), (2, 7, 16), id="embed-2d"),
])
def test_tile_embed(type_, params, bottom, expected):
    assert layer_tops(type_, params, [bottom]) == [expected]


@pytest.mark.parametrize("type_, params, words", [
    pytest.param("Tile", "tile_param { axis: 1 }", "tiles must be given and >= 1", id="tile-missing-tiles"),
    pytest.param("Embed", "embed_param { input_dim: 10 }", "num_output and input_dim must be given",
                 id="embed-missing-num-output"),
])
def test_tile_embed_errors(type_, params, words):
    err = layer_error(type_, params, [(2, 3)], exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", type_)


# =============================================================================================
# §2.13 losses and Accuracy: top0 is a 0-axis scalar

@pytest.mark.parametrize("type_, params, bottoms, ntops, expected", [
    pytest.param("SoftmaxWithLoss", "", [(10, 21), (10,)], 1, [()], id="softmaxwithloss-scalar"),
    # optional top1 = probabilities, bottom0's shape
    pytest.param("SoftmaxWithLoss", "", [(10, 21), (10,)], 2, [(), (10, 21)], id="softmaxwithloss-2-tops"),
    # outer 2 * inner 25 = 50 labels
    pytest.param("SoftmaxWithLoss", "loss_param { ignore_label: 255 }", [(2, 21, 5, 5), (2, 1, 5, 5)], 1, [()],
                 id="softmaxwithloss-dense"),
    pytest.param("SoftmaxWithLoss", "softmax_param { axis: -1 }", [(2, 5, 4), (2, 5)], 1, [()],
                 id="softmaxwithloss-axis-neg1"),
    pytest.param("EuclideanLoss", "", [(4, 3), (4, 3)], 1, [()], id="euclideanloss"),
    pytest.param("SigmoidCrossEntropyLoss", "", [(4, 3), (4, 3)], 1, [()], id="sigmoidcrossentropyloss"),
    pytest.param("Accuracy", "", [(10, 21), (10,)], 1, [()], id="accuracy-scalar"),
    # optional top1: per-class accuracy (C,)
    pytest.param("Accuracy", "accuracy_param { top_k: 5 }", [(10, 21), (10,)], 2, [(), (21,)],
                 id="accuracy-per-class-top"),
    pytest.param("Accuracy", "", [(2, 21, 5, 5), (2, 1, 5, 5)], 1, [()], id="accuracy-dense"),
    # the other losses of loss_layer.cpp's family: a 0-axis scalar; InfogainLoss's optional top1
    # holds the probabilities (bottom 0's shape)
    pytest.param("ContrastiveLoss", "", [(4, 2, 1, 1), (4, 2, 1, 1), (4, 1, 1, 1)], 1, [()],
                 id="contrastiveloss"),
    pytest.param("HingeLoss", "hinge_loss_param { norm: L2 }", [(4, 10), (4,)], 1, [()], id="hingeloss"),
    pytest.param("InfogainLoss", "", [(4, 10), (4,), (1, 1, 10, 10)], 2, [(), (4, 10)],
                 id="infogainloss-3-bottoms-2-tops"),
    pytest.param("MultinomialLogisticLoss", "", [(4, 10, 1, 1), (4, 1, 1, 1)], 1, [()],
                 id="multinomiallogisticloss"),
    # Fast R-CNN SmoothL1Loss (2 to 4 bottoms: pred, target, inside and outside weights)
    pytest.param("SmoothL1Loss", "", [(128, 84), (128, 84), (128, 84), (128, 84)], 1, [()],
                 id="smoothl1loss-4-bottoms"),
    # SSD MultiBoxLoss: loc, conf, priors, ground truth
    pytest.param("MultiBoxLoss", "multibox_loss_param { num_classes: 21 }",
                 [(8, 34928), (8, 183372), (1, 2, 34928), (1, 1, 5, 8)], 1, [()], id="multiboxloss"),
    # SSD DetectionEvaluate: (1, 1, positive classes + detections, 5); 21 classes with background
    # 0 -> 20 positive, plus the 7 detections of bottom 0
    pytest.param("DetectionEvaluate", "detection_evaluate_param { num_classes: 21 background_label_id: 0 }",
                 [(1, 1, 7, 7), (1, 1, 3, 8)], 1, [(1, 1, 27, 5)], id="detectionevaluate"),
    # HDF5Output writes its bottoms to a file: no tops
    pytest.param("HDF5Output", 'hdf5_output_param { file_name: "out.h5" }', [(4, 3), (4,)], 0, [],
                 id="hdf5output-no-tops"),
])
def test_loss_and_accuracy(type_, params, bottoms, ntops, expected):
    assert layer_tops(type_, params, bottoms, ntops) == expected


def test_loss_without_top_gets_an_automatic_top():
    # net.cpp: loss layers (AutoTopBlobs) get an anonymous top
    text = """layer { name: "in" type: "Input" top: "s" top: "l"
  input_param { shape { dim: 4 dim: 3 } shape { dim: 4 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "s" bottom: "l" }
"""
    ls = infer_text(text).of("loss")
    assert ls.tops == [()]
    assert len(ls.layer.tops) == 1


def test_accuracy_without_top_is_a_graph_error():
    # Accuracy is not a loss layer: no automatic top
    err = layer_error("Accuracy", "", [(10, 21), (10,)], ntops=0, exc=GraphError)
    assert "Accuracy takes 1 to 2 tops, got 0" in str(err) and located(err, "L", "Accuracy")


@pytest.mark.parametrize("type_, params, bottoms, ntops, words", [
    pytest.param("SoftmaxWithLoss", "", [(2, 21, 5, 5), (2, 1, 5, 4)], 1,
                 "must hold one label per position: 2*25 = 50 values for scores (2, 21, 5, 5), got 40",
                 id="softmaxwithloss-label-count"),
    pytest.param("EuclideanLoss", "", [(4, 3), (5, 3)], 1, "must have the same first axis", id="euclidean-batch"),
    pytest.param("Accuracy", "", [(10, 21), (9,)], 1, "must hold 10 values", id="accuracy-label-count"),
    pytest.param("Accuracy", "accuracy_param { top_k: 22 }", [(10, 21), (10,)], 1,
                 "top_k 22 is larger than the 21 classes", id="accuracy-top-k"),
])
def test_loss_and_accuracy_errors(type_, params, bottoms, ntops, words):
    err = layer_error(type_, params, bottoms, ntops, exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", type_)


def test_softmaxwithloss_batch_mismatch_with_matching_count():
    # scores (2, 5, 4), axis 1: outer 2 * inner 4 = 8 = count of labels (4, 2); but 2 != 4
    err = layer_error("SoftmaxWithLoss", "", [(2, 5, 4), (4, 2)], exc=ShapeError)
    assert AT_L in str(err) and located(err, "L", "SoftmaxWithLoss")


# =============================================================================================
# §2.16 Interp (DeepLab v2 / PSPNet, V2 files)

@pytest.mark.parametrize("params, bottoms, expected", [
    # zoom: H_eff + (H_eff - 1)(zoom - 1): 65 + 64*7 = 513
    pytest.param("zoom_factor: 8", [(1, 21, 65, 65)], (1, 21, 513, 513), id="interp-zoom8-65-to-513"),
    # 60 + 59*7 = 473 (PSPNet)
    pytest.param("zoom_factor: 8", [(1, 150, 60, 60)], (1, 150, 473, 473), id="interp-zoom8-60-to-473"),
    # shrink: (H_eff - 1)/shrink + 1 = 512/4 + 1 = 129
    pytest.param("shrink_factor: 4", [(1, 3, 513, 513)], (1, 3, 129, 129), id="interp-shrink4-513-to-129"),
    # shrink then zoom: 513 -> 129 -> 129 + 128*2 = 385 (DeepLab-MSC 0.75)
    pytest.param("shrink_factor: 4 zoom_factor: 3", [(1, 3, 513, 513)], (1, 3, 385, 385),
                 id="interp-shrink4-zoom3-513-to-385"),
    # same with the fields written in the other order: presence decides, not order
    pytest.param("zoom_factor: 3 shrink_factor: 4", [(1, 3, 513, 513)], (1, 3, 385, 385),
                 id="interp-zoom3-shrink4-order-irrelevant"),
    # pads crop: H_eff = 10 - 1 - 1 = 8; 8 + 7*1 = 15
    pytest.param("pad_beg: -1 pad_end: -1 zoom_factor: 2", [(1, 2, 10, 10)], (1, 2, 15, 15),
                 id="interp-pad-neg1-neg1-zoom2-10-to-15"),
    pytest.param("height: 60 width: 80", [(1, 512, 10, 10)], (1, 512, 60, 80), id="interp-height-width"),
    # zoom present (shrink absent) wins over height/width
    pytest.param("zoom_factor: 2 height: 100 width: 100", [(1, 2, 10, 10)], (1, 2, 19, 19),
                 id="interp-zoom-beats-height-width"),
    # non-square: H (513-1)/2+1 = 257, W (257-1)/2+1 = 129
    pytest.param("shrink_factor: 2", [(1, 3, 513, 257)], (1, 3, 257, 129), id="interp-shrink2-non-square"),
    # pad then shrink: H_eff = 9 - 1 = 8 -> (8-1)/2 + 1 = 4
    pytest.param("pad_beg: -1 shrink_factor: 2", [(1, 3, 9, 9)], (1, 3, 4, 4), id="interp-pad-beg-shrink2"),
    # fork extension: size from a second bottom
    pytest.param("", [(1, 21, 10, 10), (1, 3, 40, 30)], (1, 21, 40, 30), id="interp-second-bottom"),
])
def test_interp(params, bottoms, expected):
    assert layer_tops("Interp", f"interp_param {{ {params} }}", bottoms) == [expected]


@pytest.mark.parametrize("params, bottom, words", [
    pytest.param("", (1, 2, 10, 10), "Interp needs zoom_factor, shrink_factor, or height and width",
                 id="no-size"),
    pytest.param("height: 60", (1, 2, 10, 10), "Interp needs zoom_factor, shrink_factor, or height and width",
                 id="height-without-width"),
    pytest.param("pad_beg: 1 zoom_factor: 2", (1, 2, 10, 10), "must be <= 0", id="positive-pad"),
    pytest.param("zoom_factor: 0", (1, 2, 10, 10), "zoom_factor must be >= 1, got 0", id="zoom-0"),
    pytest.param("shrink_factor: 0", (1, 2, 10, 10), "shrink_factor must be >= 1, got 0", id="shrink-0"),
    pytest.param("pad_beg: -5 pad_end: -5 zoom_factor: 2", (1, 2, 10, 10), "leaves nothing", id="pad-crops-all"),
    pytest.param("zoom_factor: 2", (2, 10, 10), "Interp needs a 4-axis bottom", id="bottom-3d"),
])
def test_interp_errors(params, bottom, words):
    err = layer_error("Interp", f"interp_param {{ {params} }}", [bottom], exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "Interp")


@pytest.mark.parametrize("params", ["zoom_factor: 2", "shrink_factor: 2", "height: 5 width: 5"],
                         ids=["zoom", "shrink", "height-width"])
def test_interp_second_bottom_with_a_size_field_is_ambiguous(params):
    # the forks' interp_layer.cpp (PSPNet / DeepLab v2 mirrors): LOG(FATAL) "Interp layer cannot
    # have a second bottom layer if any of its shrink, zoom, height, or width parameters are
    # specified"
    err = layer_error("Interp", f"interp_param {{ {params} }}", [(1, 21, 10, 10), (1, 3, 40, 30)],
                      exc=ShapeError)
    assert "may not be given too" in str(err) and located(err, "L", "Interp")


# DeepLab v1 flavour: V1 file, `type: INTERP`; exactly one of zoom / shrink / height+width
V1_INTERP = """input: "data"
input_dim: 1 input_dim: 21 input_dim: %d input_dim: %d
layers { name: "interp" type: INTERP bottom: "data" top: "interp"
  interp_param { %s } }
"""


@pytest.mark.parametrize("size, params, expected", [
    pytest.param(65, "zoom_factor: 8", (1, 21, 513, 513), id="v1-interp-zoom8-65"),
    pytest.param(513, "shrink_factor: 4", (1, 21, 129, 129), id="v1-interp-shrink4-513"),
    pytest.param(10, "height: 41 width: 43", (1, 21, 41, 43), id="v1-interp-height-width"),
])
def test_interp_deeplab_v1(size, params, expected):
    assert infer_text(V1_INTERP % (size, size, params)).blobs["interp"] == expected


@pytest.mark.parametrize("params", [
    pytest.param("shrink_factor: 4 zoom_factor: 3", id="shrink-and-zoom"),
    pytest.param("zoom_factor: 2 height: 41 width: 41", id="zoom-and-height-width"),
    pytest.param("", id="none"),
])
def test_interp_deeplab_v1_needs_exactly_one_size(params):
    err = text_error(V1_INTERP % (513, 513, params), exc=ShapeError)
    assert "DeepLab v1 Interp takes exactly one of zoom_factor, shrink_factor, height and width" in str(err)
    assert "<string>:" in str(err) and located(err, "interp", "Interp")


DEEPLAB_V1_NET = """name: "deeplab-v1-like"
layers { name: "data" type: IMAGE_SEG_DATA top: "data" top: "label"
  image_data_param { source: "list.txt" batch_size: 2 } transform_param { crop_size: 321 } }
layers { name: "fc8" type: CONVOLUTION bottom: "data" top: "fc8" blobs_lr: 10 blobs_lr: 20
  convolution_param { num_output: 21 kernel_size: 3 stride: 8 pad: 12 hole: 12 } }
layers { name: "shrink" type: INTERP bottom: "label" top: "label_shrink" interp_param { shrink_factor: 8 } }
layers { name: "zoom" type: INTERP bottom: "fc8" top: "fc8_zoom" interp_param { zoom_factor: 8 } }
layers { name: "acc" type: SEG_ACCURACY bottom: "fc8_zoom" bottom: "label" top: "accuracy"
  seg_accuracy_param { ignore_label: 255 } }
"""


def test_deeplab_v1_v1_format_net():
    # fc8: hole 12 -> extent 25; (321 + 24 - 25)/8 + 1 = 41; zoom 8: 41 + 40*7 = 321;
    # label shrink 8: (321 - 1)/8 + 1 = 41; SegAccuracy (1, 1, 1, 3)
    assert infer_text(DEEPLAB_V1_NET).blobs == {
        "data": (2, 3, 321, 321), "label": (2, 1, 321, 321), "fc8": (2, 21, 41, 41),
        "label_shrink": (2, 1, 41, 41), "fc8_zoom": (2, 21, 321, 321), "accuracy": (1, 1, 1, 3)}


# =============================================================================================
# SegNet Upsample (upsample_layer.cpp): upsample_h/w, else H*scale - pad_out_h

@pytest.mark.parametrize("params, bottom, expected", [
    pytest.param("", (1, 64, 45, 60), (1, 64, 90, 120), id="upsample-default-scale2"),
    pytest.param("upsample_param { scale: 3 }", (1, 2, 4, 5), (1, 2, 12, 15), id="upsample-scale3"),
    pytest.param("upsample_param { scale_h: 2 scale_w: 3 }", (1, 2, 4, 5), (1, 2, 8, 15), id="upsample-scale-h-w"),
    # 23*2 - 1 = 45, 30*2 = 60
    pytest.param("upsample_param { scale: 2 pad_out_h: true }", (1, 64, 23, 30), (1, 64, 45, 60),
                 id="upsample-pad-out-h"),
    pytest.param("upsample_param { upsample_h: 45 upsample_w: 61 }", (1, 64, 23, 30), (1, 64, 45, 61),
                 id="upsample-h-w-given"),
])
def test_upsample(params, bottom, expected):
    # bottom 1 is the pooling mask, same shape as the data
    assert layer_tops("Upsample", params, [bottom, bottom]) == [expected]


def test_upsample_mask_must_match():
    err = layer_error("Upsample", "", [(1, 64, 23, 30), (1, 64, 23, 31)], exc=ShapeError)
    assert "the mask bottom 'b1' (1, 64, 23, 31) must have the data's shape (1, 64, 23, 30)" in str(err)
    assert AT_L in str(err) and located(err, "L", "Upsample")


# =============================================================================================
# DeepLab SegAccuracy / MatWrite

def test_seg_accuracy():
    # seg_accuracy_layer.cpp: top (1, 1, 1, 3)
    assert layer_tops("SegAccuracy", "", [(1, 21, 5, 5), (1, 1, 5, 5)]) == [(1, 1, 1, 3)]


def test_mat_write_has_no_tops():
    assert layer_tops("MatWrite", 'mat_write_param { prefix: "out/" }', [(1, 21, 5, 5)], ntops=0) == []


# =============================================================================================
# SSD: Permute, PriorBox (§2.17), DetectionOutput

@pytest.mark.parametrize("params, bottom, expected", [
    pytest.param("permute_param { order: 0 order: 2 order: 3 order: 1 }", (1, 12, 38, 37), (1, 38, 37, 12),
                 id="permute-nhwc"),
    # unlisted axes follow in increasing order: 0, 2, then 1, 3
    pytest.param("permute_param { order: 0 order: 2 }", (1, 12, 38, 37), (1, 38, 12, 37),
                 id="permute-partial-order"),
    pytest.param("", (1, 12, 38, 37), (1, 12, 38, 37), id="permute-identity"),
])
def test_permute(params, bottom, expected):
    assert layer_tops("Permute", params, [bottom]) == [expected]


@pytest.mark.parametrize("params, words", [
    pytest.param("permute_param { order: 0 order: 4 }", "order value 4 is out of range for a 4-axis blob",
                 id="order-out-of-range"),
    pytest.param("permute_param { order: 0 order: 0 }", "order lists axis 0 twice", id="order-duplicate"),
])
def test_permute_errors(params, words):
    err = layer_error("Permute", params, [(1, 2, 3, 4)], exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "Permute")


@pytest.mark.parametrize("params, feature, expected", [
    # §2.17: ars [1, 2, 1/2] -> 3*1 + 1 max = 4 priors; 38*38*4*4 = 23104
    pytest.param("min_size: 30 max_size: 60 aspect_ratio: 2 flip: true", (1, 512, 38, 38), (1, 2, 23104),
                 id="priorbox-ssd-conv4-3"),
    # ars [1, 2, 1/2, 3, 1/3] = 5; 19*19*5*4 = 7220
    pytest.param("min_size: 60 aspect_ratio: 2 aspect_ratio: 3", (1, 1024, 19, 19), (1, 2, 7220),
                 id="priorbox-ar2-ar3-flip-default"),
    # no flip: ars [1, 2] -> 2 + 1 max = 3; 10*10*3*4 = 1200
    pytest.param("min_size: 60 max_size: 111 aspect_ratio: 2 flip: false", (1, 512, 10, 10), (1, 2, 1200),
                 id="priorbox-no-flip"),
    # duplicates dropped: 2 -> [1, 2, 0.5]; 0.5 already there; 1 already there -> 3 + 1 = 4; 3*3*4*4 = 144
    pytest.param("min_size: 30 max_size: 60 aspect_ratio: 2 aspect_ratio: 0.5 aspect_ratio: 1", (1, 8, 3, 3),
                 (1, 2, 144), id="priorbox-duplicate-ars"),
    # two min and two max sizes: 3 ars * 2 + 2 = 8; 5*5*8*4 = 800
    pytest.param("min_size: 30 min_size: 45 max_size: 60 max_size: 70 aspect_ratio: 2", (1, 8, 5, 5), (1, 2, 800),
                 id="priorbox-two-min-two-max"),
    # 1 prior; 4*6*1*4 = 96
    pytest.param("min_size: 30", (1, 8, 4, 6), (1, 2, 96), id="priorbox-min-only-non-square"),
    # aspect ratio 0 with flip: [1, 0, 1/0 = inf] -> 3 priors; 2*2*3*4 = 48
    pytest.param("min_size: 30 aspect_ratio: 0", (1, 8, 2, 2), (1, 2, 48), id="priorbox-aspect-ratio-zero"),
    # legacy height()/width(): a 2-axis map is 1x1 cells (1 prior, 4 values), a 3-axis one H x 1
    pytest.param("min_size: 30", (1, 8), (1, 2, 4), id="priorbox-2-axis-feature"),
    pytest.param("min_size: 30", (1, 8, 5), (1, 2, 20), id="priorbox-3-axis-feature"),
])
def test_prior_box(params, feature, expected):
    tops = layer_tops("PriorBox", f"prior_box_param {{ {params} }}", [feature, (1, 3, 300, 300)])
    assert tops == [expected]


@pytest.mark.parametrize("params, words", [
    pytest.param("aspect_ratio: 2", "min_size is required", id="no-min-size"),
    pytest.param("min_size: 30 min_size: 40 max_size: 60", "1 max_size values for 2 min_size values",
                 id="max-size-count"),
    pytest.param("min_size: 0", "min_size must be positive", id="min-size-zero"),
    pytest.param("min_size: 30 max_size: 30", "each max_size must be greater than its min_size",
                 id="max-size-not-greater"),
    pytest.param("min_size: 30 variance: 0.1 variance: 0.2", "variance takes 1 or 4 values, got 2",
                 id="variance-count"),
    pytest.param("min_size: 30 variance: 0", "variance must be positive", id="variance-zero"),
    pytest.param("min_size: 30 img_h: 300", "img_w must be larger than 0, got 0", id="img-h-without-img-w"),
    pytest.param("min_size: 30 img_size: 300 img_w: 300", "give either img_size or img_h/img_w, not both",
                 id="img-size-and-img-w"),
    pytest.param("min_size: 30 step: 0", "step must be larger than 0", id="step-zero"),
])
def test_prior_box_errors(params, words):
    err = layer_error("PriorBox", f"prior_box_param {{ {params} }}", [(1, 8, 4, 4), (1, 3, 300, 300)],
                      exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "PriorBox")


def test_prior_box_refuses_a_5_axis_feature_map():
    err = layer_error("PriorBox", "prior_box_param { min_size: 30 }", [(1, 8, 4, 4, 2), (1, 3, 300, 300)],
                      exc=ShapeError)
    assert "bottom 0 (1, 8, 4, 4, 2) has 5 axes" in str(err) and located(err, "L", "PriorBox")


@pytest.mark.parametrize("params, bottoms", [
    # VGG SSD300: P = 34928 / 4 = 8732 priors; 8732 * 4 box predictions, 8732 * 21 scores
    pytest.param("num_classes: 21", [(1, 34928), (1, 183372), (1, 2, 34928)], id="ssd300-shared-locations"),
    # share_location false: 10 priors * 3 classes * 4 = 120 box predictions; batch 2; the set-up top
    # does not follow the batch
    pytest.param("num_classes: 3 share_location: false", [(2, 120), (2, 30), (1, 2, 40)], id="per-class-batch2"),
    # a fourth bottom (the image, for visualize) is allowed and not read
    pytest.param("num_classes: 2", [(1, 8), (1, 4), (1, 2, 8), (1, 3, 4, 4)], id="four-bottoms"),
])
def test_detection_output(params, bottoms):
    # detection_output_layer.cpp Reshape: (1, 1, 1, 7) at set-up, whatever the inputs
    assert layer_tops("DetectionOutput", f"detection_output_param {{ {params} }}", bottoms) == [(1, 1, 1, 7)]


@pytest.mark.parametrize("params, bottoms, words", [
    pytest.param("share_location: true", [(1, 8), (1, 4), (1, 2, 8)], "num_classes is required",
                 id="no-num-classes"),
    # 10 priors need 40 box predictions and 10 * 21 = 210 scores
    pytest.param("num_classes: 21", [(1, 36), (1, 210), (1, 2, 40)],
                 "10 priors (bottom 2 (1, 2, 40)) need 40 box predictions and 210 scores per image; got "
                 "channels 36 (1, 36) and 210 (1, 210)", id="box-prediction-count"),
    pytest.param("num_classes: 2", [(1, 8), (2, 4), (1, 2, 8)], "need the same batch", id="batch-mismatch"),
    pytest.param("num_classes: 2 nms_param { nms_threshold: -0.1 }", [(1, 8), (1, 4), (1, 2, 8)],
                 "nms_threshold must be >= 0, got -0.1", id="negative-nms-threshold"),
    pytest.param("num_classes: 2 nms_param { eta: 1.5 }", [(1, 8), (1, 4), (1, 2, 8)],
                 "eta must be in (0, 1], got 1.5", id="eta-above-1"),
])
def test_detection_output_errors(params, bottoms, words):
    err = layer_error("DetectionOutput", f"detection_output_param {{ {params} }}", bottoms, exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "DetectionOutput")


# =============================================================================================
# Fast R-CNN ROIPooling, R-FCN PSROIPooling: (num_rois, C, pooled_h, pooled_w)

@pytest.mark.parametrize("rois", [(128, 5), (1, 5), (3, 5, 1, 1)], ids=["128-rois", "set-up-1-roi", "rois-4d"])
def test_roi_pooling(rois):
    tops = layer_tops("ROIPooling", "roi_pooling_param { pooled_h: 7 pooled_w: 6 spatial_scale: 0.0625 }",
                      [(1, 512, 38, 50), rois])
    assert tops == [(rois[0], 512, 7, 6)]


@pytest.mark.parametrize("params, rois, words", [
    pytest.param("pooled_w: 6", (8, 5), "pooled_h must be > 0, got 0", id="pooled_h-unset"),
    pytest.param("pooled_h: 7 pooled_w: 6", (8, 4), "must hold 5 values per roi", id="rois-4-values"),
])
def test_roi_pooling_errors(params, rois, words):
    err = layer_error("ROIPooling", f"roi_pooling_param {{ {params} }}", [(1, 512, 38, 50), rois], exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "ROIPooling")


def test_psroi_pooling():
    # channels must be output_dim * group_size^2 = 21 * 49 = 1029
    tops = layer_tops("PSROIPooling", "psroi_pooling_param { spatial_scale: 0.0625 output_dim: 21 group_size: 7 }",
                      [(1, 1029, 38, 50), (300, 5)])
    assert tops == [(300, 21, 7, 7)]


@pytest.mark.parametrize("params, channels, words", [
    pytest.param("output_dim: 21 group_size: 7", 1024, "output_dim*group_size^2 = 21*7^2 = 1029 channels, got 1024",
                 id="channels"),
    pytest.param("output_dim: 21 group_size: 0", 1029, "group_size must be > 0, got 0", id="group_size-0"),
])
def test_psroi_pooling_errors(params, channels, words):
    err = layer_error("PSROIPooling", f"psroi_pooling_param {{ spatial_scale: 0.0625 {params} }}",
                      [(1, channels, 38, 50), (300, 5)], exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "PSROIPooling")


# =============================================================================================
# Well-known Python layers, by python_param module / layer

PROPOSAL = "python_param {{ module: 'rpn.proposal_layer' layer: 'ProposalLayer' param_str: \"{}\" }}"
RPN_VGG16 = [(1, 18, 14, 14), (1, 36, 14, 14), (1, 3)]      # 9 anchors: 2 * 9 scores, 4 * 9 deltas


@pytest.mark.parametrize("param_str, bottoms, ntops, expected", [
    # proposal_layer.py setup(): rois (1, 5), scores (1, 1, 1, 1)
    pytest.param("'feat_stride': 16", RPN_VGG16, 1, [(1, 5)], id="faster-rcnn-rois"),
    pytest.param("'feat_stride': 16", RPN_VGG16, 2, [(1, 5), (1, 1, 1, 1)], id="rois-and-scores"),
    pytest.param("feat_stride: 16", RPN_VGG16, 1, [(1, 5)], id="yaml-bare-key"),
    # py-R-FCN's scales: 4 scales x 3 ratios = 12 anchors: 24 scores, 48 deltas
    pytest.param("{'feat_stride': 8, 'scales': [4, 8, 16, 32]}", [(1, 24, 9, 7), (1, 48, 9, 7), (1, 4)], 1,
                 [(1, 5)], id="py-r-fcn-scales"),
])
def test_proposal_layer(param_str, bottoms, ntops, expected):
    assert layer_tops("Python", PROPOSAL.format(param_str), bottoms, ntops) == expected


def test_proposal_layer_is_known_by_module_and_class():
    from protoseg.layers import spec_of
    net = load_net(text=layer_net("Python", PROPOSAL.format("'feat_stride': 16"), RPN_VGG16))
    assert spec_of(net.layers[1]).type == "Python:rpn.proposal_layer.ProposalLayer"


@pytest.mark.parametrize("param_str, bottoms, words", [
    pytest.param("'scales': [8]", RPN_VGG16, "param_str has no 'feat_stride', which the layer's setup() reads",
                 id="no-feat-stride"),
    pytest.param("feat_stride 16", RPN_VGG16, "is not a YAML mapping such as 'feat_stride': 16", id="not-yaml"),
    pytest.param("'feat_stride': 16", [(1, 20, 14, 14), (1, 36, 14, 14), (1, 3)],
                 "with 9 anchors per cell the scores need 18 channels and the box deltas 36", id="anchor-channels"),
    pytest.param("'feat_stride': 16", [(2, 18, 14, 14), (2, 36, 14, 14), (2, 3)],
                 "forward() supports one image", id="batch-2"),
    pytest.param("'feat_stride': 16", [(1, 18, 14, 14), (1, 36, 14, 14), (1, 2)],
                 "im_info must be (N, 3)", id="im-info-2-values"),
])
def test_proposal_layer_errors(param_str, bottoms, words):
    err = layer_error("Python", PROPOSAL.format(param_str), bottoms, exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "Python")


DROPOUT = "python_param {{ module: 'spatial_dropout' layer: 'SpatialDropoutLayer' param_str: \"{}\" }}"


def test_spatial_dropout_keeps_the_shape():
    # spatial_dropout.py reshape(): the bottom's shape
    assert layer_tops("Python", DROPOUT.format("{'phase': 'TEST', 'p': '0.01'}"), [(1, 16, 256, 512)]) == \
        [(1, 16, 256, 512)]
    net = load_net(text=layer_net("Python", DROPOUT.format("{'phase': 'TEST', 'p': 0.1}")))
    from protoseg.layers import spec_of
    assert spec_of(net.layers[1]).type == "Python:spatial_dropout.SpatialDropoutLayer"


@pytest.mark.parametrize("param_str, words", [
    pytest.param("{'phase': 'TEST'}", "param_str has no 'p'", id="no-p"),
    pytest.param("{'phase': 'TEST', 'p': 1}", "'p' must be between 0 and 1 (exclusive), got 1.0", id="p-1"),
    pytest.param("{'phase': 'TEST', 'p': 'half'}", "'p' must be a number, got 'half'", id="p-text"),
    pytest.param("phase: TEST", "is not a Python dict such as {'p': 0.5}", id="not-a-dict"),
])
def test_spatial_dropout_errors(param_str, words):
    err = layer_error("Python", DROPOUT.format(param_str), exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "Python")


def test_unknown_python_layer_with_bottoms_needs_input_and_says_how_to_register():
    err = layer_error("Python", "python_param { module: 'my.layers' layer: 'Custom' }", exc=InputError)
    assert "must be given with --input: 't0' (layer 'L', Python)" in str(err)
    assert "or, for Python layer 'L', register its class as layer type 'Python:my.layers.Custom'" in str(err)
    assert 'README, "A layer type of your own fork"' in str(err)


# =============================================================================================
# CRF-RNN MultiStageMeanfield: the first bottom's shape

def test_multi_stage_meanfield():
    # multi_stage_meanfield.cpp LayerSetUp: top = (num, channels, height, width) of bottom 0
    tops = layer_tops("MultiStageMeanfield", "multi_stage_meanfield_param { num_iterations: 10 theta_alpha: 160 }",
                      [(1, 21, 500, 500), (1, 21, 500, 500), (1, 3, 500, 500)])
    assert tops == [(1, 21, 500, 500)]


@pytest.mark.parametrize("params, bottoms, words", [
    pytest.param("num_iterations: 1", [(1, 21, 8, 8), (1, 21, 8, 8), (1, 3, 8, 8)],
                 "num_iterations must be > 1, got 1", id="one-iteration"),
    pytest.param("num_iterations: 5", [(1, 21, 8, 8), (1, 20, 8, 8), (1, 3, 8, 8)],
                 "the first softmax input (bottom 1) the same", id="softmax-input-shape"),
    pytest.param("num_iterations: 5", [(1, 21, 8, 8), (1, 21, 8, 8), (1, 1, 8, 8)],
                 "the image (bottom 2) must be (N, 3, H, W)", id="grey-image"),
])
def test_multi_stage_meanfield_errors(params, bottoms, words):
    err = layer_error("MultiStageMeanfield", f"multi_stage_meanfield_param {{ {params} }}", bottoms, exc=ShapeError)
    assert words in str(err) and AT_L in str(err) and located(err, "L", "MultiStageMeanfield")


# =============================================================================================
# §6.1/6.2 in-place layers: every version of a blob keeps its shape

IN_PLACE = """layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 4 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" }
layer { name: "scale" type: "Scale" bottom: "c" top: "c" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "c" top: "c" }
layer { name: "reshape" type: "Reshape" bottom: "c" top: "r" reshape_param { shape { dim: 0 dim: -1 } } }
layer { name: "relu2" type: "ReLU" bottom: "r" top: "r" }
layer { name: "flat" type: "Flatten" bottom: "c" top: "f" flatten_param { axis: 2 } }
"""


def test_in_place_layers_keep_every_intermediate_shape():
    s = infer_text(IN_PLACE)
    # conv: (6 - 3) + 1 = 4 -> (1, 2, 4, 4); reshape (0, -1) -> (1, 32); flatten axis 2 -> (1, 2, 16)
    per_layer = {ls.layer.name: (ls.bottoms, ls.tops) for ls in s.layers}
    assert per_layer == {
        "in": ([], [(1, 4, 6, 6)]),
        "conv": ([(1, 4, 6, 6)], [(1, 2, 4, 4)]),
        "bn": ([(1, 2, 4, 4)], [(1, 2, 4, 4)]),
        "scale": ([(1, 2, 4, 4)], [(1, 2, 4, 4)]),
        "relu": ([(1, 2, 4, 4)], [(1, 2, 4, 4)]),
        "reshape": ([(1, 2, 4, 4)], [(1, 32)]),
        "relu2": ([(1, 32)], [(1, 32)]),
        "flat": ([(1, 2, 4, 4)], [(1, 2, 16)]),
    }
    # the blob "c" has 4 versions (conv, bn, scale, relu), "r" has 2; pycaffe shows the last one
    assert sorted(s.values.values()).count((1, 2, 4, 4)) == 4
    assert sorted(s.values.values()).count((1, 32)) == 2
    assert s.blobs == {"x": (1, 4, 6, 6), "c": (1, 2, 4, 4), "r": (1, 32), "f": (1, 2, 16)}


def test_reshape_cannot_run_in_place():
    text = """layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 8 } } }
layer { name: "rs" type: "Reshape" bottom: "x" top: "x" reshape_param { shape { dim: -1 } } }
"""
    err = text_error(text, exc=GraphError)
    assert "Reshape cannot run in place" in str(err) and "<string>:2:" in str(err) and located(err, "rs", "Reshape")


@pytest.mark.parametrize("layer", [
    pytest.param('layer { name: "L" type: "AbsVal" bottom: "x" top: "x" }', id="absval"),
    pytest.param('layer { name: "L" type: "Flatten" bottom: "x" top: "x" }', id="flatten"),
    pytest.param('layer { name: "L" type: "Split" bottom: "x" top: "x" top: "y" }', id="split"),
])
def test_layers_that_refuse_in_place(layer):
    # §6.1: AbsVal, Flatten, Reshape and Split refuse in-place computation
    text = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 8 } } }\n' + layer + "\n"
    err = text_error(text, exc=GraphError)
    assert "cannot run in place (top 'x' == bottom 'x')" in str(err) and AT_L in str(err) and located(err, "L")


def test_in_place_rewrite_by_a_second_producer_is_an_error():
    # §6.1: reusing an existing blob name as a top other than in place is fatal
    text = """layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 2 dim: 8 } } }
layer { name: "L" type: "ReLU" bottom: "y" top: "x" }
"""
    err = text_error(text, exc=GraphError)
    assert "top 'x' is already produced by layer 'in' (line 1)" in str(err) and AT_L in str(err)
    assert located(err, "L", "ReLU")


# =============================================================================================
# §5.4 legacy net inputs -> a layer "input" (type Input) placed first

@pytest.mark.parametrize("text, expected", [
    pytest.param('input: "data"\ninput_dim: 1 input_dim: 3 input_dim: 10 input_dim: 12\n'
                 'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }\n',
                 {"data": (1, 3, 10, 12)}, id="input-dim"),
    pytest.param('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 10 dim: 12 }\n'
                 'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }\n',
                 {"data": (1, 3, 10, 12)}, id="input-shape"),
    pytest.param('input: "data" input: "im_info"\n'
                 'input_shape { dim: 1 dim: 3 dim: 10 dim: 12 } input_shape { dim: 1 dim: 3 }\n'
                 'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }\n',
                 {"data": (1, 3, 10, 12), "im_info": (1, 3)}, id="two-input-shapes"),
    pytest.param('input: "a" input: "b"\ninput_dim: 1 input_dim: 3 input_dim: 10 input_dim: 12 '
                 'input_dim: 2 input_dim: 1 input_dim: 5 input_dim: 5\n'
                 'layer { name: "r" type: "ReLU" bottom: "a" top: "a" }\n',
                 {"a": (1, 3, 10, 12), "b": (2, 1, 5, 5)}, id="two-input-dims"),
])
def test_legacy_net_inputs_become_an_input_layer(text, expected):
    s = infer_text(text)
    first = s.layers[0]
    assert (first.layer.name, first.layer.type) == ("input", "Input")
    assert dict(zip(first.layer.tops, first.tops)) == expected


def test_legacy_input_names_without_shapes_need_inputs():
    # input names without input_dim/input_shape: the shape must come from --input
    text = 'input: "data"\nlayer { name: "r" type: "ReLU" bottom: "data" top: "data" }\n'
    assert infer_text(text, {"data": (1, 3, 7, 7)}).blobs == {"data": (1, 3, 7, 7)}
    err = text_error(text, exc=InputError)
    assert "must be given with --input: 'data' (layer 'input', Input)" in str(err)


def test_legacy_input_dim_count_error():
    err = text_error('input: "data"\ninput_dim: 1 input_dim: 3 input_dim: 10\n')
    assert "1 inputs need 4 input_dim values (N, C, H, W each), got 3" in str(err)
    assert "<string>:2:" in str(err)


# =============================================================================================
# §5.1 / §5.3 V0 and V1 files give the same shapes as their V2 equivalent

V2_NET = """layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 10 dim: 10 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 } convolution_param { num_output: 8 kernel_size: 5 pad: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc" inner_product_param { num_output: 10 } }
"""
V1_NET = """input: "data"
input_dim: 1 input_dim: 3 input_dim: 10 input_dim: 10
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" blobs_lr: 1 blobs_lr: 2
  convolution_param { num_output: 8 kernel_size: 5 pad: 2 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layers { name: "fc" type: INNER_PRODUCT bottom: "pool1" top: "fc" inner_product_param { num_output: 10 } }
"""
# V0: the "padding" layer is folded into the next conv's pad
V0_NET = """input: "data"
input_dim: 1 input_dim: 3 input_dim: 10 input_dim: 10
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 8 kernelsize: 5 blobs_lr: 1 blobs_lr: 2 }
  bottom: "pad1" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: MAX kernelsize: 3 stride: 2 } bottom: "conv1" top: "pool1" }
layers { layer { name: "fc" type: "innerproduct" num_output: 10 } bottom: "pool1" top: "fc" }
"""
# conv (10 + 4 - 5) + 1 = 10; pool ceil((10 - 3)/2) + 1 = 5; fc -> (1, 10)
LEGACY_EXPECTED = [("input", "Input", [(1, 3, 10, 10)]), ("conv1", "Convolution", [(1, 8, 10, 10)]),
                   ("relu1", "ReLU", [(1, 8, 10, 10)]), ("pool1", "Pooling", [(1, 8, 5, 5)]),
                   ("fc", "InnerProduct", [(1, 10)])]


@pytest.mark.parametrize("text, fmt", [
    pytest.param(V2_NET, "V2", id="v2"),
    pytest.param(V1_NET, "V1", id="v1-layers-enum-blobs-lr"),
    pytest.param(V0_NET, "V0", id="v0-nested-layer-padding-folded"),
])
def test_legacy_formats_give_v2_shapes(text, fmt):
    s = infer_text(text)
    assert s.net.format == fmt
    assert [(ls.layer.name, ls.layer.type, ls.tops) for ls in s.layers] == LEGACY_EXPECTED


def test_v1_blobs_lr_become_param_specs():
    # §5.3: blobs_lr[i] -> param[i].lr_mult
    conv = load_net(text=V1_NET).layer("conv1")
    assert [p.get("lr_mult") for p in conv.params.get("param")] == [1, 2]


def test_v0_padding_layer_is_folded_into_conv_pad():
    conv = load_net(text=V0_NET).layer("conv1")
    assert conv.bottoms == ["data"]
    assert list(conv.params.get("convolution_param").get("pad")) == [2]


# =============================================================================================
# §6.4 phases and state filtering

PHASED = """layer { name: "data" type: "Input" top: "data" include { phase: TRAIN }
  input_param { shape { dim: 32 dim: 3 dim: 8 dim: 8 } } }
layer { name: "data" type: "Input" top: "data" include { phase: TEST }
  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "drop" type: "Dropout" bottom: "conv" top: "conv" exclude { phase: TEST } }
layer { name: "deploy_only" type: "Power" bottom: "conv" top: "p" include { stage: "deploy" } }
layer { name: "not_deploy" type: "AbsVal" bottom: "conv" top: "a" include { not_stage: "deploy" } }
layer { name: "lvl" type: "Sigmoid" bottom: "conv" top: "s" include { min_level: 1 max_level: 2 } }
layer { name: "train_phase" type: "TanH" bottom: "conv" top: "t" phase: TRAIN }
"""


@pytest.mark.parametrize("kw, expected", [
    # same layer name "data" in two phases; TEST keeps the batch-1 one, drop is excluded at TEST
    pytest.param({}, {"data": (1, 3, 8, 8), "conv": (1, 4, 6, 6), "a": (1, 4, 6, 6), "t": (1, 4, 6, 6)},
                 id="test"),
    pytest.param({"phase": "TRAIN"},
                 {"data": (32, 3, 8, 8), "conv": (32, 4, 6, 6), "a": (32, 4, 6, 6), "t": (32, 4, 6, 6)},
                 id="train"),
    pytest.param({"stages": ("deploy",)}, {"data": (1, 3, 8, 8), "conv": (1, 4, 6, 6), "p": (1, 4, 6, 6),
                                           "t": (1, 4, 6, 6)}, id="stage-deploy"),
    pytest.param({"level": 1}, {"data": (1, 3, 8, 8), "conv": (1, 4, 6, 6), "a": (1, 4, 6, 6),
                                "s": (1, 4, 6, 6), "t": (1, 4, 6, 6)}, id="level-1"),
    pytest.param({"level": 3}, {"data": (1, 3, 8, 8), "conv": (1, 4, 6, 6), "a": (1, 4, 6, 6),
                                "t": (1, 4, 6, 6)}, id="level-3-above-max"),
])
def test_phase_stage_level_filtering(kw, expected):
    assert infer_text(PHASED, **kw).blobs == expected


@pytest.mark.parametrize("kw, kept", [
    pytest.param({}, ["data", "conv", "not_deploy", "train_phase"], id="test"),
    pytest.param({"phase": "TRAIN"}, ["data", "conv", "drop", "not_deploy", "train_phase"], id="train"),
])
def test_phase_filtering_keeps_layers(kw, kept):
    assert [l.name for l in load_net(text=PHASED, **kw).layers] == kept


def test_net_state_in_the_file_adds_stages_and_level():
    # §6.4: NetParameter.state gives the stages (added to the caller's) and the level
    text = 'state { stage: "deploy" level: 1 }\n' + PHASED
    assert infer_text(text).blobs == {"data": (1, 3, 8, 8), "conv": (1, 4, 6, 6), "p": (1, 4, 6, 6),
                                      "s": (1, 4, 6, 6), "t": (1, 4, 6, 6)}


def test_layer_level_phase_overrides_net_phase_without_filtering():
    # §6.4: a layer's own `phase:` sets its phase; it is not a filter
    net = load_net(text=PHASED)
    assert (net.phase, net.layer("train_phase").phase, net.layer("conv").phase) == ("TEST", "TRAIN", "TEST")


RULES = """layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "L" type: "ReLU" bottom: "x" top: "y" %s }
"""


@pytest.mark.parametrize("rules, kw, kept", [
    # include: kept if ANY rule matches
    pytest.param('include { phase: TRAIN } include { stage: "s" }', {}, False, id="include-none-match"),
    pytest.param('include { phase: TRAIN } include { stage: "s" }', {"stages": ("s",)}, True,
                 id="include-second-rule-matches"),
    # a rule matches only if ALL its stages are in the state
    pytest.param('include { stage: "a" stage: "b" }', {"stages": ("a",)}, False, id="include-needs-all-stages"),
    pytest.param('include { stage: "a" stage: "b" }', {"stages": ("a", "b")}, True, id="include-all-stages"),
    pytest.param('include { phase: TEST min_level: 2 }', {"level": 1}, False, id="include-phase-and-level"),
    # exclude: dropped if ANY rule matches
    pytest.param('exclude { phase: TRAIN } exclude { not_stage: "keep" }', {}, False, id="exclude-not-stage"),
    pytest.param('exclude { phase: TRAIN } exclude { not_stage: "keep" }', {"stages": ("keep",)}, True,
                 id="exclude-none-match"),
])
def test_state_rules(rules, kw, kept):
    assert ("y" in infer_text(RULES % rules, **kw).blobs) is kept


def test_include_and_exclude_together_is_an_error():
    err = text_error(RULES % 'include { phase: TEST } exclude { stage: "x" }')
    assert "a layer may have include rules or exclude rules, not both" in str(err)
    assert AT_L in str(err) and located(err, "L", "ReLU")


def test_bottom_from_a_filtered_layer_is_explained():
    text = """layer { name: "data" type: "Input" top: "data" include { phase: TRAIN }
  input_param { shape { dim: 1 dim: 3 } } }
layer { name: "r" type: "ReLU" bottom: "data" top: "r" }
"""
    err = text_error(text, exc=GraphError)
    assert "bottom 'data' comes only from layer 'data' (line 1)" in str(err)
    assert "<string>:3:" in str(err) and located(err, "r", "ReLU")


# =============================================================================================
# §8 FCN-8s (prototxts/fcn8s.prototxt) and Appendix A's other input sizes

FCN8S_500 = {
    # §8 table, input 1x3x500x500
    "data": (1, 3, 500, 500),
    "conv1_1": (1, 64, 698, 698), "conv1_2": (1, 64, 698, 698), "pool1": (1, 64, 349, 349),
    "conv2_1": (1, 128, 349, 349), "conv2_2": (1, 128, 349, 349), "pool2": (1, 128, 175, 175),
    "conv3_1": (1, 256, 175, 175), "conv3_2": (1, 256, 175, 175), "conv3_3": (1, 256, 175, 175),
    "pool3": (1, 256, 88, 88),
    "conv4_1": (1, 512, 88, 88), "conv4_2": (1, 512, 88, 88), "conv4_3": (1, 512, 88, 88),
    "pool4": (1, 512, 44, 44),
    "conv5_1": (1, 512, 44, 44), "conv5_2": (1, 512, 44, 44), "conv5_3": (1, 512, 44, 44),
    "pool5": (1, 512, 22, 22),
    "fc6": (1, 4096, 16, 16), "fc7": (1, 4096, 16, 16), "score_fr": (1, 21, 16, 16),
    "upscore2": (1, 21, 34, 34), "score_pool4": (1, 21, 44, 44), "score_pool4c": (1, 21, 34, 34),
    "fuse_pool4": (1, 21, 34, 34), "upscore_pool4": (1, 21, 70, 70), "score_pool3": (1, 21, 88, 88),
    "score_pool3c": (1, 21, 70, 70), "fuse_pool3": (1, 21, 70, 70), "upscore8": (1, 21, 568, 568),
    "score": (1, 21, 500, 500),
}


def test_fcn8s_500_every_blob():
    s = infer_shapes(load_net(str(FCN8S)), {"data": (1, 3, 500, 500)})
    assert s.blobs == FCN8S_500


def test_fcn8s_file_default_input_is_500():
    assert infer_shapes(load_net(str(FCN8S))).blobs == FCN8S_500


@pytest.mark.parametrize("h, expected", [
    # A: H=1: conv1_1 199, pools 100/50/25/13/7, fc6 1, upscore2 4, upscore_pool4 10, upscore8 88, score 1
    pytest.param(1, {"conv1_1": (1, 64, 199, 199), "pool1": (1, 64, 100, 100), "pool2": (1, 128, 50, 50),
                     "pool3": (1, 256, 25, 25), "pool4": (1, 512, 13, 13), "pool5": (1, 512, 7, 7),
                     "fc6": (1, 4096, 1, 1), "upscore2": (1, 21, 4, 4), "upscore_pool4": (1, 21, 10, 10),
                     "upscore8": (1, 21, 88, 88), "score": (1, 21, 1, 1)}, id="fcn8s-H1"),
    # A: H=224: conv1_1 422, pools 211/106/53/27/14, fc6 8, upscore2 18, upscore_pool4 38, upscore8 312
    pytest.param(224, {"conv1_1": (1, 64, 422, 422), "pool1": (1, 64, 211, 211), "pool2": (1, 128, 106, 106),
                       "pool3": (1, 256, 53, 53), "pool4": (1, 512, 27, 27), "pool5": (1, 512, 14, 14),
                       "fc6": (1, 4096, 8, 8), "upscore2": (1, 21, 18, 18), "upscore_pool4": (1, 21, 38, 38),
                       "upscore8": (1, 21, 312, 312), "score": (1, 21, 224, 224)}, id="fcn8s-H224"),
    # A: H=512: conv1_1 710, pools 355/178/89/45/23, fc6 17, upscore2 36, upscore_pool4 74, upscore8 600
    pytest.param(512, {"conv1_1": (1, 64, 710, 710), "pool1": (1, 64, 355, 355), "pool2": (1, 128, 178, 178),
                       "pool3": (1, 256, 89, 89), "pool4": (1, 512, 45, 45), "pool5": (1, 512, 23, 23),
                       "fc6": (1, 4096, 17, 17), "upscore2": (1, 21, 36, 36), "upscore_pool4": (1, 21, 74, 74),
                       "upscore8": (1, 21, 600, 600), "score": (1, 21, 512, 512)}, id="fcn8s-H512"),
])
def test_fcn8s_other_input_sizes(h, expected):
    blobs = infer_shapes(load_net(str(FCN8S)), {"data": (1, 3, h, h)}).blobs
    assert {k: blobs[k] for k in expected} == expected
