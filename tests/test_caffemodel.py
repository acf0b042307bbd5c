"""protoseg.caffemodel: the wire-level .caffemodel reader.

Every model is built inside the test with protobuf message classes made at test time (tests/caffe_pb.py)
or, for broken and unusual encodings, with raw wire bytes. Values are compared exactly.
"""
from __future__ import annotations

import gzip
import os
import pathlib

import numpy as np
import pytest

import protoseg.caffemodel as cm
from protoseg.caffemodel import Blob, CaffeModel, load_caffemodel, read_caffemodel
from protoseg.cli.inspect import format_inspect
from protoseg.errors import WeightsError

import caffe_pb as pb

SEED = 1234
SCHEMAS = [pytest.param(pb.PACKED, id="packed"), pytest.param(pb.UNPACKED, id="unpacked")]


def values(shape, seed: int = SEED, dtype=np.float32) -> np.ndarray:
    """Seeded random values of a shape (float64 values are not representable in float32)."""
    rng = np.random.default_rng(seed)
    if dtype == np.float64:
        return rng.standard_normal(shape) / 3.0
    return rng.standard_normal(shape).astype(np.float32)


def write(tmp_path: pathlib.Path, data, name: str = "model.caffemodel") -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.SerializeToString())
    return path


def v2_net(schema, layers, name: str = "net"):
    """layers: [(name, type, [BlobProto, ...])]"""
    net = schema.NetParameter(name=name)
    for lname, ltype, blobs in layers:
        layer = net.layer.add(name=lname, type=ltype)
        layer.blobs.extend(blobs)
    return net


def read_error(path) -> str:
    with pytest.raises(WeightsError) as info:
        read_caffemodel(path)
    return str(info.value)


def assert_blob(blob: Blob, expected: np.ndarray, *, legacy: bool = False) -> None:
    assert blob.shape == expected.shape
    assert blob.legacy is legacy
    assert blob.data.dtype == expected.dtype
    assert blob.data.shape == expected.shape
    np.testing.assert_array_equal(blob.data, expected)


# -- blobs in current (V2) files ------------------------------------------------------------------
BLOB_CASES = {
    "conv_weight_and_bias": [(64, 3, 3, 3), (64,)],
    "deconvolution_weight": [(21, 21, 4, 4)],                # (C_in, num_output/g, kh, kw)
    "grouped_conv_weight": [(256, 48, 5, 5), (256,)],        # AlexNet conv2: 96 inputs, group 2
    "inner_product_2d": [(10, 20), (10,)],
    "batchnorm_three_blobs": [(32,), (32,), (1,)],           # mean_sum, var_sum, factor
    "prelu_channel_shared_0_axis": [()],
    "five_axes": [(2, 3, 2, 2, 2)],
    "empty_dimension": [(0, 3)],
}


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("shapes", list(BLOB_CASES.values()), ids=list(BLOB_CASES))
def test_v2_blobs_read_exactly(tmp_path, schema, shapes):
    arrays = [values(s, seed=i) for i, s in enumerate(shapes)]
    net = v2_net(schema, [("layer1", "Convolution", [pb.blob(schema, a) for a in arrays])])
    model = read_caffemodel(write(tmp_path, net))
    assert model.format == "V2"
    assert [(layer.name, layer.type) for layer in model.layers] == [("layer1", "Convolution")]
    assert len(model.layers[0].blobs) == len(arrays)
    for blob, expected in zip(model.layers[0].blobs, arrays):
        assert_blob(blob, expected)


LEGACY_SHAPES = {
    "conv_weight": (64, 3, 3, 3),
    "inner_product_weight_1x1xNxK": (1, 1, 10, 20),
    "bias_1x1x1xN": (1, 1, 1, 10),
}


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("shape", list(LEGACY_SHAPES.values()), ids=list(LEGACY_SHAPES))
def test_legacy_num_channels_height_width_shape(tmp_path, schema, shape):
    expected = values(shape)
    net = v2_net(schema, [("fc", "InnerProduct", [pb.blob(schema, expected, legacy=True)])])
    (blob,) = read_caffemodel(write(tmp_path, net)).layers[0].blobs
    assert_blob(blob, expected, legacy=True)


@pytest.mark.parametrize(("present", "shape"), [
    ({"height": 2, "width": 3}, (0, 0, 2, 3)),
    ({"num": 5}, (5, 0, 0, 0)),
    ({"width": 0}, (0, 0, 0, 0)),
], ids=["height_width_only", "num_only", "width_zero"])
def test_legacy_fields_absent_are_zero(tmp_path, present, shape):
    blob = pb.PACKED.BlobProto(**present)
    net = v2_net(pb.PACKED, [("x", "Scale", [blob])])
    (got,) = read_caffemodel(write(tmp_path, net)).layers[0].blobs
    assert (got.shape, got.legacy, got.data.size) == (shape, True, 0)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_legacy_fields_win_over_shape(tmp_path, schema):
    b = pb.blob(schema, values((1, 1, 2, 3)), legacy=True)
    b.shape.dim.extend([6])
    (got,) = read_caffemodel(write(tmp_path, v2_net(schema, [("x", "X", [b])]))).layers[0].blobs
    assert (got.shape, got.legacy) == ((1, 1, 2, 3), True)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_double_data_gives_float64(tmp_path, schema):
    expected = values((4, 3), dtype=np.float64)
    net = v2_net(schema, [("ip", "InnerProduct", [pb.blob(schema, expected, double=True)])])
    (blob,) = read_caffemodel(write(tmp_path, net)).layers[0].blobs
    assert_blob(blob, expected)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_double_data_wins_over_float_data(tmp_path, schema):
    expected = values((5,), dtype=np.float64)
    b = pb.blob(schema, expected, double=True)
    b.data.extend([9.0] * 5)
    (blob,) = read_caffemodel(write(tmp_path, v2_net(schema, [("x", "X", [b])]))).layers[0].blobs
    assert_blob(blob, expected)


@pytest.mark.parametrize("shape_field", [False, True], ids=["no_shape_field", "empty_shape_field"])
def test_blob_without_dims_is_0_axis_scalar(tmp_path, shape_field):
    b = pb.PACKED.BlobProto(data=[0.25])
    if shape_field:
        b.shape.SetInParent()
    (blob,) = read_caffemodel(write(tmp_path, v2_net(pb.PACKED, [("prelu", "PReLU", [b])]))).layers[0].blobs
    assert_blob(blob, np.array(0.25, np.float32))


@pytest.mark.parametrize("schema", SCHEMAS)
def test_diff_blobs_are_skipped(tmp_path, schema):
    expected = values((3, 4))
    b = pb.blob(schema, expected, with_diff=True)
    b.double_diff.extend([1.5] * 12)
    (blob,) = read_caffemodel(write(tmp_path, v2_net(schema, [("x", "X", [b])]))).layers[0].blobs
    assert_blob(blob, expected)


# -- layers, names, offsets -----------------------------------------------------------------------
def three_layer_net(schema):
    return v2_net(schema, [
        ("conv1", "Convolution", [pb.blob(schema, values((4, 3, 3, 3), 1)), pb.blob(schema, values((4,), 2))]),
        ("relu1", "ReLU", []),
        ("fc", "InnerProduct", [pb.blob(schema, values((10, 36), 3))]),
    ], name="tiny")


@pytest.mark.parametrize("schema", SCHEMAS)
def test_read_keeps_every_layer_in_order(tmp_path, schema):
    path = write(tmp_path, three_layer_net(schema))
    model = read_caffemodel(path)
    assert isinstance(model, CaffeModel)
    assert (model.path, model.name, model.format, model.size) == (str(path), "tiny", "V2", path.stat().st_size)
    assert [(x.name, x.type, len(x.blobs)) for x in model.layers] == [
        ("conv1", "Convolution", 2), ("relu1", "ReLU", 0), ("fc", "InnerProduct", 1)]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_layer_offsets_point_at_their_field_tags(tmp_path, schema):
    path = write(tmp_path, three_layer_net(schema))
    raw = path.read_bytes()
    model = read_caffemodel(path)
    offsets = [x.offset for x in model.layers]
    assert offsets == sorted(offsets)
    assert all(raw[o:o + 2] == b"\xa2\x06" for o in offsets)   # tag of NetParameter.layer (100)
    assert all(raw[o:].find(x.name.encode()) < 10 for o, x in zip(offsets, model.layers))


@pytest.mark.parametrize("schema", SCHEMAS)
def test_load_caffemodel_omits_layers_without_blobs(tmp_path, schema):
    weights = load_caffemodel(write(tmp_path, three_layer_net(schema)))
    assert list(weights) == ["conv1", "fc"]
    np.testing.assert_array_equal(weights["conv1"][0], values((4, 3, 3, 3), 1))
    np.testing.assert_array_equal(weights["conv1"][1], values((4,), 2))
    np.testing.assert_array_equal(weights["fc"][0], values((10, 36), 3))


def test_load_caffemodel_duplicate_layer_name_keeps_the_later(tmp_path):
    net = v2_net(pb.PACKED, [("x", "Scale", [pb.blob(pb.PACKED, values((2,), 1))]),
                             ("x", "Scale", [pb.blob(pb.PACKED, values((3,), 2))])])
    weights = load_caffemodel(write(tmp_path, net))
    np.testing.assert_array_equal(weights["x"][0], values((3,), 2))


@pytest.mark.parametrize("as_type", [str, pathlib.Path], ids=["str", "pathlib"])
def test_path_types(tmp_path, as_type):
    path = write(tmp_path, three_layer_net(pb.PACKED))
    model = read_caffemodel(as_type(path))
    assert model.path == str(path)
    assert [x.name for x in model.layers] == ["conv1", "relu1", "fc"]


def test_arrays_are_writable_and_independent_of_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cm, "_MMAP_MIN", 64)        # also the memory-map allocation path
    path = write(tmp_path, three_layer_net(pb.PACKED))
    weights = load_caffemodel(path)
    path.unlink()
    weights["fc"][0][0, 0] = 42.0
    assert weights["fc"][0][0, 0] == 42.0
    np.testing.assert_array_equal(weights["conv1"][0], values((4, 3, 3, 3), 1))


# -- legacy formats ---------------------------------------------------------------------------------
def v1_net(schema, layers):
    """layers: [(name, V1 enum number, [BlobProto])]"""
    net = schema.NetParameter(name="old")
    for name, type_, blobs in layers:
        layer = net.layers.add(name=name, type=type_)
        layer.blobs.extend(blobs)
    return net


@pytest.mark.parametrize("schema", SCHEMAS)
def test_v1_layers(tmp_path, schema):
    w, b = values((8, 3, 5, 5), 1), values((1, 1, 1, 8), 2)
    net = v1_net(schema, [("data", pb.V1.DATA, []),
                          ("conv1", pb.V1.CONVOLUTION, [pb.blob(schema, w, legacy=True),
                                                        pb.blob(schema, b, legacy=True)]),
                          ("relu1", pb.V1.RELU, [])])
    path = write(tmp_path, net)
    model = read_caffemodel(path)
    assert model.format == "V1"
    assert [(x.name, x.type) for x in model.layers] == [
        ("data", "Data"), ("conv1", "Convolution"), ("relu1", "ReLU")]
    assert_blob(model.layers[1].blobs[0], w, legacy=True)
    assert_blob(model.layers[1].blobs[1], b, legacy=True)
    assert path.read_bytes()[model.layers[1].offset] == 0x12      # tag of NetParameter.layers (2)


@pytest.mark.parametrize(("number", "type_"), [
    (4, "Convolution"), (14, "InnerProduct"), (39, "Deconvolution"), (21, "SoftmaxWithLoss"),
    (35, "AbsVal"), (0, ""), (41, "Interp"), (40, "Crop"), (999, "V1_TYPE_999"),
], ids=["CONVOLUTION", "INNER_PRODUCT", "DECONVOLUTION", "SOFTMAX_LOSS", "ABSVAL", "NONE",
        "deeplab_v1_INTERP", "fcn_fork_CROP_over_deeplab_SEG_ACCURACY", "unknown_999"])
def test_v1_type_enum_becomes_v2_type_string(tmp_path, number, type_):
    model = read_caffemodel(write(tmp_path, v1_net(pb.PACKED, [("x", number, [])])))
    assert model.layers[0].type == type_


@pytest.mark.parametrize("schema", SCHEMAS)
def test_v0_nested_layers(tmp_path, schema):
    w, b = values((4, 3, 3, 3), 1), values((1, 1, 1, 4), 2)
    net = schema.NetParameter(name="v0")
    conv = net.layers.add(bottom=["data"], top=["conv1"])
    conv.layer.name = "conv1"
    conv.layer.type = "conv"
    conv.layer.num_output = 4
    conv.layer.blobs.extend([pb.blob(schema, w, legacy=True), pb.blob(schema, b, legacy=True)])
    conv.layer.blobs_lr.extend([1.0, 2.0])
    pad = net.layers.add()
    pad.layer.name = "pad1"
    pad.layer.type = "padding"
    model = read_caffemodel(write(tmp_path, net))
    assert model.format == "V0"
    assert [(x.name, x.type, len(x.blobs)) for x in model.layers] == [
        ("conv1", "Convolution", 2), ("pad1", "padding", 0)]
    assert_blob(model.layers[0].blobs[0], w, legacy=True)
    assert_blob(model.layers[0].blobs[1], b, legacy=True)


def test_v0_nested_layer_wins_over_v1_fields(tmp_path):
    net = pb.PACKED.NetParameter()
    layer = net.layers.add(name="outer", type=pb.V1.RELU)
    layer.blobs.append(pb.blob(pb.PACKED, values((2,), 1)))
    layer.layer.name = "inner"
    layer.layer.type = "innerproduct"
    layer.layer.blobs.append(pb.blob(pb.PACKED, values((3,), 2)))
    (got,) = read_caffemodel(write(tmp_path, net)).layers
    assert (got.name, got.type) == ("inner", "InnerProduct")
    assert_blob(got.blobs[0], values((3,), 2))


# -- fields added by forks, unknown fields, unusual encodings ---------------------------------------
def fork_layer_net(variant: str):
    s = pb.PACKED
    w = pb.blob(s, values((3, 2)))
    if variant.startswith("v1_"):
        net = v1_net(s, [("interp", pb.V1.INTERP_DEEPLAB_V1, []), ("fc", pb.V1.INNER_PRODUCT, [w])])
        net.layers[0].interp_param.zoom_factor = 8                    # DeepLab v1: field 43
        pb.with_raw(net.layers[1], pb.unknown_fields(2000))
        return net
    net = v2_net(s, [("interp", "Interp", []), ("fc", "InnerProduct", [w])])
    first, fc = net.layer
    if variant == "deeplab_v2_interp_param_143":
        first.interp_param.zoom_factor = 8
        first.interp_param.height = 65
    elif variant == "ssd_permute_prior_box_norm_202_203_206":
        first.permute_param.order.extend([0, 2, 3, 1])
        first.prior_box_param.min_size.append(30.0)
        first.prior_box_param.aspect_ratio.extend([2.0, 3.0])
        fc.norm_param.channel_shared = False
        fc.norm_param.eps = 1e-10
    elif variant == "pspnet_bn_param_152":
        fc.bn_param.momentum = 0.95
    elif variant == "unknown_fields_in_layer":
        pb.with_raw(fc, pb.unknown_fields(300))
    elif variant == "unknown_fields_in_blob":
        pb.with_raw(fc.blobs[0], pb.unknown_fields(20))
    elif variant == "unknown_fields_in_blob_shape":
        pb.with_raw(fc.blobs[0].shape, pb.unknown_fields(2))
    elif variant == "unknown_fields_and_legacy_inputs_in_net":
        net.input.append("data")
        net.input_dim.extend([1, 3, 224, 224])
        net.input_shape.add().dim.extend([1, 3, 224, 224])
        pb.with_raw(net, pb.unknown_fields(5000))
    elif variant == "layer_params_and_conv_param":
        fc.bottom.append("data")
        fc.top.append("fc")
        fc.param.add(lr_mult=1.0)
        fc.convolution_param.num_output = 3
        fc.convolution_param.hole = 2
        fc.loss_weight.append(1.0)
    else:
        raise AssertionError(variant)
    return net


FORK_VARIANTS = ["deeplab_v2_interp_param_143", "ssd_permute_prior_box_norm_202_203_206",
                 "pspnet_bn_param_152", "unknown_fields_in_layer", "unknown_fields_in_blob",
                 "unknown_fields_in_blob_shape", "unknown_fields_and_legacy_inputs_in_net",
                 "layer_params_and_conv_param", "v1_deeplab_interp_param_43"]


@pytest.mark.parametrize("variant", FORK_VARIANTS)
def test_fork_and_unknown_fields_are_skipped(tmp_path, variant):
    model = read_caffemodel(write(tmp_path, fork_layer_net(variant)))
    assert [(x.name, len(x.blobs)) for x in model.layers] == [("interp", 0), ("fc", 1)]
    assert_blob(model.layers[1].blobs[0], values((3, 2)))


def test_unknown_fields_before_name_and_between_blobs(tmp_path):
    s = pb.PACKED
    first = pb.blob(s, values((2, 2), 1))
    second = pb.blob(s, values((5,), 2))
    layer = (pb.unknown_fields(143) + pb.field_len(1, b"mixed") + pb.unknown_fields(300)
             + pb.field_len(7, first.SerializeToString()) + pb.unknown_fields(202)
             + pb.field_len(2, b"Scale") + pb.field_len(7, second.SerializeToString()))
    data = pb.unknown_fields(50) + pb.field_len(1, b"n") + pb.field_len(100, layer)
    (got,) = read_caffemodel(write(tmp_path, data)).layers
    assert (got.name, got.type) == ("mixed", "Scale")
    assert_blob(got.blobs[0], values((2, 2), 1))
    assert_blob(got.blobs[1], values((5,), 2))


def shape_field(*dims) -> bytes:
    return pb.field_len(7, pb.field_len(1, b"".join(pb.varint(d) for d in dims)))


def unpacked(field: int, array: np.ndarray) -> bytes:
    wire, fmt = (5, "<f4") if field == 5 else (1, "<f8")
    return b"".join(pb.tag(field, wire) + np.array([v], fmt).tobytes() for v in array)


def split_encodings(case: str) -> tuple[bytes, np.ndarray]:
    a = values((2, 5), 7)
    flat = a.ravel()
    if case == "two_packed_chunks":
        body = pb.field_len(5, flat[:3].tobytes()) + shape_field(2, 5) + pb.field_len(5, flat[3:].tobytes())
    elif case == "packed_then_unpacked":
        body = pb.field_len(5, flat[:4].tobytes()) + unpacked(5, flat[4:]) + shape_field(2, 5)
    elif case == "unpacked_interrupted_by_unknown_field":
        body = unpacked(5, flat[:6]) + pb.unknown_fields(40) + unpacked(5, flat[6:]) + shape_field(2, 5)
    elif case == "unpacked_interrupted_by_shape":
        body = unpacked(5, flat[:1]) + shape_field(2, 5) + unpacked(5, flat[1:])
    elif case == "overlong_tag_encoding":
        odd = b"\xad\x00" + flat[2:3].tobytes()      # field 5, wire type 5, tag padded to 2 bytes
        body = unpacked(5, flat[:2]) + odd + unpacked(5, flat[3:]) + shape_field(2, 5)
    elif case == "dims_unpacked_and_split_over_two_shape_fields":
        body = pb.field_len(5, flat.tobytes()) + pb.field_len(7, pb.field_varint(1, 2)) \
            + pb.field_len(7, pb.field_varint(1, 5))
    elif case == "double_unpacked_then_packed":
        d = values((2, 5), 8, np.float64)
        body = unpacked(8, d.ravel()[:7]) + pb.field_len(8, d.ravel()[7:].astype("<f8").tobytes()) \
            + shape_field(2, 5)
        return body, d
    else:
        raise AssertionError(case)
    return body, a


SPLIT_CASES = ["two_packed_chunks", "packed_then_unpacked", "unpacked_interrupted_by_unknown_field",
               "unpacked_interrupted_by_shape", "overlong_tag_encoding",
               "dims_unpacked_and_split_over_two_shape_fields", "double_unpacked_then_packed"]


@pytest.mark.parametrize("case", SPLIT_CASES)
def test_data_split_over_several_fields_concatenates(tmp_path, case):
    body, expected = split_encodings(case)
    data = pb.field_len(100, pb.field_len(1, b"x") + pb.field_len(7, body))
    (blob,) = read_caffemodel(write(tmp_path, data)).layers[0].blobs
    assert_blob(blob, expected)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_tiny_buffers_and_chunks_give_the_same_result(tmp_path, monkeypatch, schema):
    """Every buffer refill, chunked readinto and unpacked-run chunk boundary."""
    net = v2_net(schema, [
        (f"layer{i}", "Convolution", [pb.blob(schema, values((i + 1, 3, 3, 3), i)),
                                      pb.blob(schema, values((i + 1,), 100 + i), double=i % 2 == 1),
                                      pb.blob(schema, values((1, 1, i + 1, 2), 200 + i), legacy=True)])
        for i in range(6)])
    path = write(tmp_path, net)
    reference = load_caffemodel(path)
    monkeypatch.setattr(cm, "_BUF", 7)
    monkeypatch.setattr(cm, "_CHUNK", 12)
    monkeypatch.setattr(cm, "_RUN_CHUNK", 23)
    monkeypatch.setattr(cm, "_MMAP_MIN", 40)
    small = load_caffemodel(path)
    assert list(small) == list(reference)
    for name in reference:
        for got, want in zip(small[name], reference[name], strict=True):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(small["layer3"][0], values((4, 3, 3, 3), 3))
    np.testing.assert_array_equal(small["layer3"][1], values((4,), 103).astype(np.float64))


# -- progress bar -------------------------------------------------------------------------------
@pytest.mark.parametrize(("progress", "shown"), [(True, True), (False, False), (None, False)],
                         ids=["forced_on", "off", "auto_small_file_not_a_tty"])
def test_progress_bar_on_stderr(tmp_path, capsys, progress, shown):
    read_caffemodel(write(tmp_path, three_layer_net(pb.PACKED)), progress=progress)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert ("model.caffemodel" in captured.err) is shown


# -- files that are not caffemodels -----------------------------------------------------------------
def test_missing_file(tmp_path):
    message = read_error(tmp_path / "nope.caffemodel")
    assert "nope.caffemodel" in message and "no such file" in message


def test_directory(tmp_path):
    assert "is a directory" in read_error(tmp_path)


def test_unopenable_path(tmp_path):
    message = read_error(str(tmp_path / "a\0b.caffemodel"))
    assert "cannot open" in message


def test_empty_file(tmp_path):
    message = read_error(write(tmp_path, b""))
    assert "model.caffemodel" in message and "empty file" in message


SIGNATURES = {
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(40), "a PNG image"),
    "jpeg": (b"\xff\xd8\xff\xe0" + bytes(40), "a JPEG image"),
    "zip_pytorch_checkpoint": (b"PK\x03\x04" + bytes(40), "a zip archive"),
    "hdf5_caffemodel_h5": (b"\x89HDF\r\n\x1a\n" + bytes(40), "an HDF5 file"),
    "gzip": (gzip.compress(b"\n\x03net"), "gzip-compressed"),
    "numpy_npy": (b"\x93NUMPY\x01\x00" + bytes(40), "NumPy .npy"),
    "pickle": (b"\x80\x04\x95" + bytes(40), "Python pickle"),
    "onnx_or_solverstate": (b"\x08\x07\x12\x07pytorch", "not a Caffe NetParameter"),
}


@pytest.mark.parametrize(("data", "what"), list(SIGNATURES.values()), ids=list(SIGNATURES))
def test_other_file_kinds_are_named(tmp_path, data, what):
    message = read_error(write(tmp_path, data))
    assert "model.caffemodel: byte 0:" in message
    assert "not a caffemodel" in message
    assert what in message


TEXTS = {
    "prototxt": 'name: "FCN"\nlayer {\n  name: "data"\n  type: "Input"\n  top: "data"\n}\n',
    "prototxt_v1_with_comment": '# VGG\nlayers {\n  name: "conv1"\n  type: CONVOLUTION\n}\n',
    "utf8_text": "name: \"réseau\"\t# commentaire ünïcödé\r\n",
    "json": '{"layers": []}',
}


@pytest.mark.parametrize("text", list(TEXTS.values()), ids=list(TEXTS))
def test_text_file_is_recognised(tmp_path, text):
    message = read_error(write(tmp_path, text.encode("utf-8")))
    assert "this looks like a text file (a .prototxt?), not a binary .caffemodel" in message
    assert "model.caffemodel: byte 0:" in message


# -- broken caffemodels -------------------------------------------------------------------------
def two_layer_bytes() -> tuple[bytes, int]:
    """A valid two-layer V2 model and the offset of its second layer's tag."""
    s = pb.PACKED
    first = s.NetParameter(name="n")
    first.layer.add(name="conv1", type="Convolution").blobs.append(pb.blob(s, values((4, 3, 3, 3))))
    second = s.NetParameter()
    second.layer.add(name="conv2", type="Convolution").blobs.append(pb.blob(s, values((8, 4, 3, 3))))
    a = first.SerializeToString()
    return a + second.SerializeToString(), len(a)


@pytest.mark.parametrize("cut", ["inside_blob_data", "after_layer_name", "one_byte_short"])
def test_truncated_file_names_layer_and_offset(tmp_path, cut):
    data, second = two_layer_bytes()
    end = {"inside_blob_data": second + 100, "after_layer_name": second + 12,
           "one_byte_short": len(data) - 1}[cut]
    message = read_error(write(tmp_path, data[:end]))
    assert f"model.caffemodel: byte {second}: layer 'conv2': truncated file" in message
    assert f"but the file has only {end - second - 4} left (file size {end})" in message
    assert "hint:" in message


@pytest.mark.parametrize(("cut", "where"), [(1, ""), (2, "layer #1: "), (3, "layer #1: ")],
                         ids=["inside_tag", "after_tag", "inside_length"])
def test_truncated_inside_layer_header(tmp_path, cut, where):
    data, second = two_layer_bytes()
    message = read_error(write(tmp_path, data[:second + cut]))
    tag_or_length = second if cut == 1 else second + 2     # the layer tag is 2 bytes (field 100)
    assert f"model.caffemodel: byte {tag_or_length}: {where}truncated file: the file ends inside a varint" \
        in message


@pytest.mark.parametrize("fmt", ["V1", "V0"])
def test_truncated_legacy_layer_is_named(tmp_path, fmt):
    s = pb.PACKED
    net = s.NetParameter()
    layer = net.layers.add(bottom=["data", "label"], top=["conv1"])
    if fmt == "V1":
        layer.name, layer.type = "conv1", pb.V1.CONVOLUTION
        layer.blobs.append(pb.blob(s, values((4, 3, 3, 3)), legacy=True))
    else:
        layer.layer.name, layer.layer.type = "conv1", "conv"
        layer.layer.blobs.append(pb.blob(s, values((4, 3, 3, 3)), legacy=True))
    data = net.SerializeToString()
    message = read_error(write(tmp_path, data[:-10]))
    assert "byte 0: layer 'conv1': truncated file: the layer declares" in message


@pytest.mark.parametrize("length", [2**31 + 5, 2**32 + 1, 2**63, 2**64 - 1],
                         ids=["2GiB_plus", "4GiB_plus", "2_pow_63", "2_pow_64_minus_1"])
def test_huge_layer_length_is_truncated_not_a_crash(tmp_path, length):
    data, second = two_layer_bytes()
    bad = data[:second] + pb.tag(100, 2) + pb.varint(length) + pb.field_len(1, b"big")
    message = read_error(write(tmp_path, bad))
    assert f"byte {second}: layer 'big': truncated file: the layer declares {length} bytes" in message


@pytest.mark.parametrize("length", [2**31 + 5, 2**64 - 1], ids=["2GiB_plus", "2_pow_64_minus_1"])
def test_huge_nested_length_is_truncated(tmp_path, length):
    inner = pb.field_len(1, b"conv9") + pb.tag(7, 2) + pb.varint(length)
    data = pb.field_len(100, inner + bytes(8))
    message = read_error(write(tmp_path, data))
    start = len(pb.field_len(100, inner + bytes(8))) - len(inner + bytes(8))
    assert f"byte {start + 7}: layer 'conv9': truncated file: field 7 declares {length} bytes" in message


def test_blob_count_disagrees_with_shape(tmp_path):
    b = pb.PACKED.BlobProto(data=values((1700,)).tolist())
    b.shape.dim.extend([64, 3, 3, 3])
    net = v2_net(pb.PACKED, [("data", "Input", []), ("conv1", "Convolution", [b])])
    path = write(tmp_path, net)
    blob_offset = path.read_bytes().index(b"\x0bConvolution") + 12     # the blob's field tag
    message = read_error(path)
    assert message == (f"{path}: byte {blob_offset}: layer 'conv1' blob 0: shape (64, 3, 3, 3) needs 1728 "
                       "values, the file has 1700")


@pytest.mark.parametrize(("schema", "legacy"), [(pb.PACKED, True), (pb.UNPACKED, False)],
                         ids=["v1_legacy_packed", "v1_shape_unpacked"])
def test_blob_count_mismatch_in_v1_layer_and_second_blob(tmp_path, schema, legacy):
    bias = pb.blob(schema, values((1, 1, 1, 4)), legacy=legacy)
    del bias.data[-1]
    net = v1_net(schema, [("conv7", pb.V1.CONVOLUTION, [pb.blob(schema, values((4, 2, 1, 1))), bias])])
    message = read_error(write(tmp_path, net))
    assert "layer 'conv7' blob 1: shape (1, 1, 1, 4) needs 4 values, the file has 3" in message


def test_data_without_shape_is_a_count_error(tmp_path):
    b = pb.PACKED.BlobProto(data=[1.0, 2.0])
    message = read_error(write(tmp_path, v2_net(pb.PACKED, [("s", "Scale", [b])])))
    assert "layer 's' blob 0: shape () needs 1 values, the file has 2" in message


def test_shape_without_data(tmp_path):
    b = pb.PACKED.BlobProto()
    b.shape.dim.extend([3])
    message = read_error(write(tmp_path, v2_net(pb.PACKED, [("s", "Scale", [b])])))
    assert "layer 's' blob 0: shape (3) needs 3 values, the file has 0" in message


@pytest.mark.parametrize("legacy", [False, True], ids=["shape_dim", "legacy_num"])
def test_negative_dimension(tmp_path, legacy):
    b = pb.PACKED.BlobProto(num=-1, channels=1, height=1, width=1) if legacy else pb.PACKED.BlobProto()
    if not legacy:
        b.shape.dim.extend([2, -3])
    message = read_error(write(tmp_path, v2_net(pb.PACKED, [("neg", "X", [b])])))
    assert "layer 'neg' blob 0: shape" in message and "negative dimension" in message


def layer_with(raw_after_name: bytes) -> tuple[bytes, int]:
    """A V2 file with one layer 'bad' whose name is followed by raw bytes; offset of those bytes."""
    prefix = pb.field_len(1, b"net")
    inner = pb.field_len(1, b"bad") + raw_after_name
    data = prefix + pb.field_len(100, inner)
    return data, len(data) - len(raw_after_name)


CORRUPT = {
    "varint_longer_than_10_bytes": (b"\xff" * 11, "a varint longer than 10 bytes"),
    "group_wire_type_3": (pb.tag(9, 3) + b"\x00", "field 9 uses a group (wire type 3)"),
    "end_group_wire_type_4": (pb.tag(9, 4), "field 9 uses a group (wire type 4)"),
    "wire_type_6": (pb.tag(9, 6), "invalid wire type 6 (field 9)"),
    "wire_type_7": (pb.tag(12, 7), "invalid wire type 7 (field 12)"),
    "field_number_0": (b"\x02\x00", "invalid field number 0"),
    "packed_floats_not_multiple_of_4": (pb.field_len(7, pb.field_len(5, b"\x00" * 6)),
                                        "packed field 5 holds 6 bytes, not a multiple of 4"),
    "packed_doubles_not_multiple_of_8": (pb.field_len(7, pb.field_len(8, b"\x00" * 12)),
                                         "packed field 8 holds 12 bytes, not a multiple of 8"),
}


@pytest.mark.parametrize(("raw", "what"), list(CORRUPT.values()), ids=list(CORRUPT))
def test_corrupt_wire_data(tmp_path, raw, what):
    data, offset = layer_with(raw)
    message = read_error(write(tmp_path, data))
    assert "model.caffemodel: byte " in message and "layer 'bad'" in message
    assert "corrupt data: " + what in message
    assert "hint: the file is damaged, or it is not a binary Caffe .caffemodel" in message
    if not raw.startswith(b"\x3a"):     # errors inside a blob point at the inner field
        assert f"byte {offset}:" in message


def test_nested_length_past_enclosing_message(tmp_path):
    shape = pb.tag(7, 2) + pb.varint(5) + pb.field_varint(1, 2)   # BlobShape claims 5 bytes, has 2
    data, offset = layer_with(pb.field_len(7, shape) + pb.field_len(2, b"Scale"))
    message = read_error(write(tmp_path, data))
    assert f"byte {offset + 2}: layer 'bad' blob 0: corrupt data: field 7 declares 5 bytes, running " \
           f"past the end of its enclosing message at byte {offset + 6}" in message


def test_varint_past_enclosing_message(tmp_path):
    data = pb.field_len(100, pb.field_len(1, b"v") + pb.field_len(7, b"\x08\x96")) + pb.field_len(1, b"n")
    message = read_error(write(tmp_path, data))
    assert "layer 'v' blob 0: corrupt data: a varint runs past the end of its message" in message


@pytest.mark.parametrize(("wire", "payload"), [(5, b"\x00\x00"), (1, b"\x00" * 5)], ids=["fixed32", "fixed64"])
def test_fixed_width_field_past_end_of_file(tmp_path, wire, payload):
    data, offset = layer_with(b"")
    data = data + pb.tag(33, wire) + payload
    message = read_error(write(tmp_path, data))
    assert f"byte {len(data) - len(payload) - 2}: truncated file: field 33 needs" in message


def test_fixed_width_field_past_enclosing_message(tmp_path):
    blob = pb.field_len(5, values((1,)).tobytes()) + pb.tag(40, 5) + b"\x00\x00"     # 2 of 4 bytes
    data, offset = layer_with(pb.field_len(7, blob) + pb.field_len(2, b"Scale"))
    message = read_error(write(tmp_path, data))
    assert f"byte {offset + 2 + 6}: layer 'bad' blob 0: corrupt data: field 40 runs past the end of its " \
           f"message at byte {offset + 2 + len(blob)}" in message


def test_data_field_with_an_unexpected_wire_type_is_skipped(tmp_path):
    body = pb.field_varint(5, 7) + pb.field_len(5, values((2,)).tobytes()) + pb.field_varint(8, 1) \
        + shape_field(2)
    data = pb.field_len(100, pb.field_len(1, b"x") + pb.field_len(7, body))
    (blob,) = read_caffemodel(write(tmp_path, data)).layers[0].blobs
    assert_blob(blob, values((2,)))


@pytest.mark.parametrize("big", [False, True], ids=["buffered_read", "direct_readinto"])
def test_file_shrinking_while_read(tmp_path, monkeypatch, big):
    """The sizes are checked against fstat once; a file cut afterwards still gives a clean error."""
    n = 100_000 if big else 10
    net = v2_net(pb.PACKED, [("fc", "InnerProduct", [pb.blob(pb.PACKED, values((n,)))])])
    data = net.SerializeToString()
    path = write(tmp_path, data[:len(data) // 2])
    real_fstat = cm.os.fstat

    class Grown:
        def __init__(self, st):
            self.st_size = len(data)

    monkeypatch.setattr(cm.os, "fstat", lambda fd: Grown(real_fstat(fd)))
    message = read_error(path)
    assert "layer 'fc' blob 0: truncated file: the file ended while reading (did it change?)" in message


def test_file_without_layers(tmp_path):
    message = read_error(write(tmp_path, pb.PACKED.NetParameter(name="empty_net", input=["data"])))
    assert "model.caffemodel: byte 0: no layers" in message


def test_file_with_both_layer_and_layers(tmp_path):
    net = v2_net(pb.PACKED, [("new", "ReLU", [])])
    net.layers.add(name="old", type=pb.V1.RELU)
    assert "both 'layer' (1) and legacy 'layers' (1)" in read_error(write(tmp_path, net))


def test_random_bytes_give_a_weights_error_not_a_traceback(tmp_path):
    rng = np.random.default_rng(SEED)
    garbage = bytes([0xa2, 0x06]) + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    with pytest.raises(WeightsError):
        read_caffemodel(write(tmp_path, garbage))


# -- inspect ----------------------------------------------------------------------------------------
def test_format_inspect(tmp_path):
    s = pb.PACKED
    net = v2_net(s, [
        ("conv1", "Convolution", [pb.blob(s, values((64, 3, 3, 3))), pb.blob(s, values((64,)))]),
        ("relu1", "ReLU", []),
        ("fc8", "InnerProduct", [pb.blob(s, values((1, 1, 10, 20)), legacy=True),
                                 pb.blob(s, values((10,), dtype=np.float64), double=True)]),
        ("prelu", "PReLU", [pb.blob(s, values(()))]),
    ], name="demo")
    text = format_inspect(read_caffemodel(write(tmp_path, net)))
    lines = text.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'model.caffemodel'}: format V2, net 'demo', ")
    header = next(line for line in lines if line.startswith("layer"))
    assert header.split() == ["layer", "type", "blobs", "dtype", "params"]
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 2:lines.index(header) + 6]}
    assert list(rows) == ["conv1", "relu1", "fc8", "prelu"]
    assert "64x3x3x3, 64" in rows["conv1"] and rows["conv1"].endswith(" 1,792")
    assert "float32" in rows["conv1"]
    assert rows["relu1"].split()[1:] == ["ReLU", "-", "-", "0"]
    assert "1x1x10x20*, 10" in rows["fc8"] and "float32/float64" in rows["fc8"]
    assert rows["fc8"].endswith(" 210")
    assert "scalar" in rows["prelu"] and rows["prelu"].endswith(" 1")
    type_column = header.index("type")
    assert all(rows[name][type_column - 2:type_column] == "  " for name in rows)
    assert all(rows[name][type_column] != " " for name in rows)
    assert "total: 4 layers (3 with blobs), 5 blobs, 2,003 parameters" in text
    assert text.splitlines()[-1] == "* legacy num/channels/height/width shape"


def test_format_inspect_v1_without_legacy_note(tmp_path):
    net = v1_net(pb.PACKED, [("ip", pb.V1.INNER_PRODUCT, [pb.blob(pb.PACKED, values((3, 4)))])])
    text = format_inspect(read_caffemodel(write(tmp_path, net)))
    assert "format V1" in text and "InnerProduct" in text and "3x4" in text
    assert "legacy" not in text
    assert "1 layers (1 with blobs), 1 blobs, 12 parameters" in text


# -- protoseg's own writer, read back by protobuf itself and by the reader -------------------------

@pytest.mark.parametrize("packed", [True, False], ids=["packed", "unpacked"])
def test_write_caffemodel_is_what_protobuf_reads(tmp_path, packed):
    from protoseg.caffemodel import write_caffemodel
    rng = np.random.default_rng(7)
    layers = [("conv1", "Convolution", [rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                                        rng.standard_normal(4).astype(np.float32)]),
              ("relu1", "ReLU", []),
              ("prelu", "PReLU", [np.array(0.25, np.float32)])]       # a 0-axis blob
    path = tmp_path / "w.caffemodel"
    size = write_caffemodel(path, iter(layers), name="tiny", packed=packed)
    assert size == path.stat().st_size
    msg = (pb.PACKED if packed else pb.UNPACKED).NetParameter()
    msg.ParseFromString(path.read_bytes())
    assert msg.name == "tiny" and [l.name for l in msg.layer] == ["conv1", "relu1", "prelu"]
    assert [l.type for l in msg.layer] == ["Convolution", "ReLU", "PReLU"]
    assert list(msg.layer[0].blobs[0].shape.dim) == [4, 3, 3, 3]
    np.testing.assert_array_equal(np.array(msg.layer[0].blobs[0].data, np.float32), layers[0][2][0].ravel())
    assert list(msg.layer[2].blobs[0].shape.dim) == [] and list(msg.layer[2].blobs[0].data) == [0.25]
    model = read_caffemodel(str(path))
    np.testing.assert_array_equal(model.layers[0].blobs[0].data, layers[0][2][0])
    assert model.layers[2].blobs[0].data.shape == ()
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []
