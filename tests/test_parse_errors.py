"""Parser, schema, graph and --input: what protoseg accepts, and the error for each bad input
(message, file:line:col, layer)."""
from __future__ import annotations

import math

import pytest

from protoseg.errors import (GraphError, InputError, PrototxtSyntaxError, SchemaError,
                             UnsupportedLayerError)
from protoseg.net import load_net
from protoseg.schema import bind
from protoseg.shapes import infer_shapes, parse_input_spec
from protoseg.textformat import parse_text

INPUT = 'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'


def net_of(body: str, **kw):
    return load_net(text=INPUT + body, file="t.prototxt", **kw)


def err_of(exc_type, text: str, **kw) -> str:
    with pytest.raises(exc_type) as e:
        load_net(text=text, file="t.prototxt", **kw)
    return str(e.value)


# --- the text format as real files use it -----------------------------------------------------

def values(text):
    return {e.name: e.value for e in parse_text(text).entries}


@pytest.mark.parametrize("text,name,expected", [
    ("a: 1", "a", 1),
    ("a: -3", "a", -3),
    ("a: 0x1F", "a", 31),
    ("a: 1.5", "a", 1.5),
    ("a: 1e-4", "a", 1e-4),
    ("a: 2.f", "a", 2.0),
    ("a: 0.5F", "a", 0.5),
    ("a: .25", "a", 0.25),
    ("a: inf", "a", "inf"),
    ("a: MAX", "a", "MAX"),
    ("a: true", "a", "true"),
    ('a: "x\\"y"', "a", 'x"y'),
    ("a: 'single \\'q\\''", "a", "single 'q'"),
    ('a: "adj" "acent" \'parts\'', "a", "adjacentparts"),
    ('a: "\\n\\t\\x41\\101"', "a", "\n\tAA"),
], ids=["int", "negative", "hex", "float", "exponent", "trailing-f", "trailing-F", "leading-dot",
        "inf-name", "enum", "bool", "dq-escape", "sq-escape", "adjacent-concat", "escapes"])
def test_scalar_values(text, name, expected):
    assert values(text)[name].value == expected


def test_negative_inf_and_nan():
    v = values("a: -inf b: nan c: -nan")
    assert v["a"].value == -math.inf and math.isnan(v["c"].value)
    assert (v["b"].kind, v["b"].value) == ("name", "nan")     # the schema makes it a float


@pytest.mark.parametrize("text", [
    "m { a: 1 }", "m: { a: 1 }", "m < a: 1 >", "m: < a: 1 >",
], ids=["brace", "colon-brace", "angle", "colon-angle"])
def test_message_delimiters(text):
    (entry,) = parse_text(text).entries
    assert entry.name == "m" and entry.value.entries[0].value.value == 1


def test_lists_separators_comments_crlf():
    text = "# head\r\nm: [1, 2, 3]  # tail\r\nn: 4, o: 5; p: 6#glued\r\nq: [ {a: 1}, {a: 2} ]\r\nr: []\r\n"
    v = values(text)
    assert [s.value for s in v["m"].items] == [1, 2, 3]
    assert v["n"].value == 4 and v["o"].value == 5 and v["p"].value == 6
    assert [m.entries[0].value.value for m in v["q"].items] == [1, 2]
    assert v["r"].items == []


def test_every_value_keeps_its_position():
    tree = parse_text('name: "x"\nlayer {\n  top:   "t"\n}\n', "f.prototxt")
    layer = tree.entries[1]
    assert (layer.span.line, layer.span.col) == (2, 1)
    top = layer.value.entries[0]
    assert (top.span.line, top.span.col) == (3, 3)
    assert (top.value.span.line, top.value.span.col) == (3, 10)
    assert str(top.span) == "f.prototxt:3:3"


# --- syntax errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,words,line,col", [
    ('layer {\n  name: "a"\n  top: "b"\n', "'{' is never closed", 1, 7),
    ('layer {\n  convolution_param { num_output: 3\n}\n', "'{' is never closed", 1, 7),
    ('layer {\n  num_output: ${NUM_LABELS}\n}\n', "unfilled template variable '${NUM_LABELS}'", 2, 15),
    ('name "x"\n', "expected ':'", 1, 6),
    ('}\n', "closes nothing", 1, 1),
    ('name: "abc\n', "unterminated string", 1, 7),
    ('a: "\\q"\n', "invalid escape \\q", 1, 5),
    ('a: -foo\n', "must be followed by a number", 1, 4),
    ('a: 1 @\n', "unexpected character '@'", 1, 6),
    ('a: \n', "unexpected end of file", 1, 4),
], ids=["unclosed-eof", "unclosed-inner", "template", "missing-colon", "stray-close",
        "unterminated-string", "bad-escape", "minus-name", "bad-char", "eof-after-colon"])
def test_syntax_errors(text, words, line, col):
    with pytest.raises(PrototxtSyntaxError) as e:
        parse_text(text, "bad.prototxt")
    msg = str(e.value)
    assert words in msg
    assert f"bad.prototxt:{line}:{col}:" in msg
    assert "\n  " in msg and ("^" in msg)   # the source line and a caret


def test_syntax_error_shows_source_line_and_caret(tmp_path):
    p = tmp_path / "n.prototxt"
    p.write_text('name: "n"\nlayer {\n  num_output: ${N}\n}\n')
    with pytest.raises(PrototxtSyntaxError) as e:
        load_net(str(p))
    lines = str(e.value).splitlines()
    assert lines[0].startswith(f"{p}:3:15: unfilled template variable")
    assert lines[1] == "    num_output: ${N}"
    assert lines[2] == "  " + " " * 14 + "^"


def test_binary_file_is_not_a_prototxt(tmp_path):
    p = tmp_path / "x.prototxt"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    with pytest.raises(PrototxtSyntaxError, match="binary file"):
        load_net(str(p))


def test_missing_file_is_a_clear_error(tmp_path):
    from protoseg.errors import ProtosegError
    with pytest.raises(ProtosegError, match="cannot read"):
        load_net(str(tmp_path / "nope.prototxt"))


# --- schema --------------------------------------------------------------------------------------

def test_unknown_fields_are_all_listed_with_did_you_mean():
    text = INPUT + ('layer { name: "pool2" type: "Pooling" bottom: "data" top: "p"\n'
                    '  pooling_param { pool: MAX kernal_size: 2 strid: 2 } }\n'
                    'layer { name: "r" type: "ReLU" bottom: "p" top: "p" negative_slop: 0.1 }\n')
    with pytest.raises(SchemaError) as e:         # one error of its kind, grouping all three
        load_net(text=text, file="t.prototxt")
    msg = str(e.value)
    assert [x.kind for x in e.value.errors] == ["unknown field"] * 3
    assert msg.startswith("3 schema errors (3 unknown fields):")
    assert "t.prototxt:3:29: layer 'pool2' (Pooling): unknown field 'kernal_size' in pooling_param" in msg
    assert "hint: did you mean 'kernel_size'" in msg
    assert "unknown field 'strid'" in msg and "did you mean 'stride'" in msg
    assert "t.prototxt:4:53: layer 'r' (ReLU): unknown field 'negative_slop' in LayerParameter" in msg


@pytest.mark.parametrize("body,words", [
    ('pooling_param { pool: MAXIMUM kernel_size: 2 }', "allowed values of PoolMethod: MAX, AVE, STOCHASTIC"),
    ('pooling_param { kernel_size: "2" }', "is uint32: expected a non-negative integer"),
    ('pooling_param { kernel_size: -2 }', "out of range"),
    ('pooling_param { global_pooling: maybe }', "is a bool: expected true or false"),
    ('pooling_param { kernel_size: 2 kernel_size: 3 }', "is not repeated but is given twice"),
    ('pooling_param { kernel_size: [2, 3] }', "takes one value, not a [list]"),
    ('pooling_param: 3', "is a message (PoolingParameter)"),
    ('transform_param { mean_file: meanfile }', "is a string: expected a quoted value"),
], ids=["bad-enum", "string-for-int", "negative-uint", "bad-bool", "twice", "list-for-scalar",
        "scalar-for-message", "unquoted-string"])
def test_wrong_types(body, words):
    text = INPUT + f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" {body} }}\n'
    msg = err_of(SchemaError, text)
    assert words in msg
    assert "t.prototxt:2:" in msg


def test_fork_fields_are_known():
    net = net_of('layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
                 '  convolution_param { num_output: 2 kernel_size: 3 hole: 2 pad: 2 } }\n'
                 'layer { name: "p" type: "Pooling" bottom: "c" top: "p"\n'
                 '  pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false } }\n'
                 'layer { name: "i" type: "Interp" bottom: "p" top: "i" interp_param { zoom_factor: 2 } }\n')
    s = infer_shapes(net)
    assert s.blobs["c"] == (1, 2, 8, 8)       # hole 2 = dilation 2: extent 5, pad 2
    assert s.blobs["p"] == (1, 2, 3, 3)       # floor((8-3)/2)+1 = 3
    assert s.blobs["i"] == (1, 2, 5, 5)       # 3 + 2*(2-1)


# --- graph ---------------------------------------------------------------------------------------

def test_unknown_bottom_suggests_a_name():
    msg = err_of(GraphError, INPUT + 'layer { name: "r" type: "ReLU" bottom: "dat" top: "r" }\n')
    # the caret on the value that names the unknown blob
    assert "t.prototxt:2:40: layer 'r' (ReLU): bottom 'dat' (bottom 0) is not produced by any layer" in msg
    assert "did you mean 'data'?" in msg


def test_top_produced_twice():
    msg = err_of(GraphError, INPUT + 'layer { name: "a" type: "ReLU" bottom: "data" top: "x" }\n'
                                     'layer { name: "b" type: "Sigmoid" bottom: "data" top: "x" }\n')
    assert "layer 'b' (Sigmoid): top 'x' is already produced by layer 'a' (line 2)" in msg


def test_cycle():
    msg = err_of(GraphError, INPUT + 'layer { name: "a" type: "Eltwise" bottom: "data" bottom: "y" top: "x" }\n'
                                     'layer { name: "b" type: "ReLU" bottom: "x" top: "y" }\n')
    assert "layer 'a' (Eltwise): bottom 'y' comes from layer 'b' (line 3)" in msg and "cycle" in msg


def test_bottom_produced_only_later():
    msg = err_of(GraphError, INPUT + 'layer { name: "a" type: "ReLU" bottom: "z" top: "x" }\n'
                                     'layer { name: "b" type: "ReLU" bottom: "data" top: "z" }\n')
    assert "bottom 'z' is produced only later, by layer 'b' (line 3)" in msg


@pytest.mark.parametrize("body,words", [
    ('layer { name: "e" type: "Eltwise" bottom: "data" top: "e" }', "Eltwise takes at least 2 bottoms, got 1"),
    ('layer { name: "c" type: "Crop" bottom: "data" top: "c" }', "Crop takes exactly 2 bottoms, got 1"),
    ('layer { name: "r" type: "ReLU" bottom: "data" top: "a" top: "b" }', "ReLU takes exactly 1 top, got 2"),
    ('layer { name: "f" type: "Flatten" bottom: "data" top: "data" }', "Flatten cannot run in place"),
], ids=["eltwise-1-bottom", "crop-1-bottom", "relu-2-tops", "flatten-in-place"])
def test_wrong_bottom_or_top_count(body, words):
    assert words in err_of(GraphError, INPUT + body + "\n")


def test_unknown_layer_types_are_all_listed():
    msg = err_of(UnsupportedLayerError, INPUT + 'layer { name: "a" type: "Convolutoin" bottom: "data" top: "a" }\n'
                                     'layer { name: "b" type: "MyCustom" bottom: "a" top: "b" }\n'
                                     'layer { name: "c" type: "MyCustom" bottom: "b" top: "c" }\n')
    assert msg.startswith("3 layers of unknown types: Convolutoin (1 layer), MyCustom (2 layers)")
    assert "t.prototxt:2:19: layer 'a' (Convolutoin): unknown layer type 'Convolutoin'" in msg
    assert "did you mean 'Convolution'" in msg


def test_one_unknown_layer_type():
    msg = err_of(UnsupportedLayerError, INPUT + 'layer { name: "a" type: "Foo" bottom: "data" top: "a" }\n')
    assert "layer 'a' (Foo): unknown layer type 'Foo'" in msg
    assert "hint: `protoseg layers` (docs/layers.md) lists every supported type" in msg


# caffe.proto marks the fork-only parameter fields: DeepLab v2's dense_crf_param, R-FCN's
# box_annotator_ohem_param. The type's name calls for its field, or the layer sets it.
@pytest.mark.parametrize("body,fork", [
    ('layer { name: "a" type: "DenseCRF" bottom: "data" top: "a" }', "deeplab-v2, pspnet"),
    ('layer { name: "a" type: "OHEM" bottom: "data" top: "a" box_annotator_ohem_param { } }', "rfcn"),
], ids=["by-type-name", "by-param-field"])
def test_an_unknown_fork_layer_names_its_fork(body, fork):
    msg = err_of(UnsupportedLayerError, INPUT + body + "\n")
    assert f"(defined in a Caffe fork: {fork})" in msg
    assert "docs/layers.md" in msg


def test_in_place_layers_keep_every_shape():
    net = net_of('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 1 } }\n'
                 'layer { name: "r" type: "ReLU" bottom: "c" top: "c" }\n'
                 'layer { name: "d" type: "Dropout" bottom: "c" top: "c" }\n'
                 'layer { name: "f" type: "Flatten" bottom: "c" top: "f" }\n')
    s = infer_shapes(net)
    assert [l.top_values for l in net.layers[1:]] == [["c"], ["c@r"], ["c@d"], ["f"]]
    assert s.values["c"] == s.values["c@r"] == s.values["c@d"] == (1, 4, 8, 8)
    assert s.blobs["f"] == (1, 256)


def test_same_layer_name_in_two_phases():
    body = ('layer { name: "d" type: "Dropout" bottom: "data" top: "x" include { phase: TRAIN } dropout_param { dropout_ratio: 0.5 } }\n'
            'layer { name: "d" type: "ReLU" bottom: "data" top: "x" include { phase: TEST } }\n')
    assert [l.type for l in net_of(body).layers] == ["Input", "ReLU"]
    assert [l.type for l in net_of(body, phase="TRAIN").layers] == ["Input", "Dropout"]


@pytest.mark.parametrize("rule,stages,level,kept", [
    ("include { stage: 'deploy' }", (), 0, False),
    ("include { stage: 'deploy' }", ("deploy",), 0, True),
    ("exclude { not_stage: 'x' }", (), 0, False),
    ("include { min_level: 1 }", (), 0, False),
    ("include { min_level: 1 }", (), 1, True),
    ("include { max_level: 0 }", (), 1, False),
    ("include { phase: TRAIN } include { phase: TEST }", (), 0, True),
    ("exclude { phase: TEST }", (), 0, False),
], ids=["stage-missing", "stage-given", "not-stage-excluded", "min-level-low", "min-level-ok",
        "max-level-high", "any-include-matches", "exclude-test"])
def test_state_rules(rule, stages, level, kept):
    net = net_of(f'layer {{ name: "r" type: "ReLU" bottom: "data" top: "r" {rule} }}\n', stages=stages,
                 level=level)
    assert ("r" in [l.name for l in net.layers]) == kept


def test_include_and_exclude_together_is_an_error():
    msg = err_of(SchemaError, INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" '
                                      'include { phase: TEST } exclude { stage: "x" } }\n')
    assert "include rules or exclude rules, not both" in msg


# --- inputs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,words", [
    ("data", "expected NAME=N,C,H,W"),
    ("data=1,a,3", "'a' is not a dimension"),
    ("data=1,0,3", "every dimension must be between 1 and 2,147,483,647"),
    ("=1,3", "expected NAME=N,C,H,W"),
    # these were accepted as 3-D shapes, the bad fields dropped (a silently wrong input)
    ("data=1,,32,32", "an empty dimension is not a dimension"),
    ("data=1,3,x", "an empty dimension is not a dimension"),
    ("data=1,3,32,x32xx", "an empty dimension is not a dimension"),
    ("data=1,3,32,32.5", "'32.5' is not a dimension"),
    ("data=1,3,-2,32", "'-2' is not a dimension"),
    ("data=1,3,2147483648,1", "every dimension must be between 1 and 2,147,483,647"),
    ("data=1,3," + "9" * 5000, "is not a dimension"),
], ids=["no-shape", "not-int", "zero", "no-name", "empty-field", "trailing-x", "letters-x",
        "float", "negative", "over-int-max", "5000-digits"])
def test_bad_input_spec(spec, words):
    with pytest.raises(InputError, match=words):
        parse_input_spec(spec)


def test_input_spec_accepts_x_separator():
    assert parse_input_spec("data=1x3x224x224") == ("data", (1, 3, 224, 224))


def test_input_naming_no_net_input():
    with pytest.raises(InputError) as e:
        infer_shapes(net_of(""), {"image": (1, 3, 4, 4)})
    assert "--input names 'image', which is not an input of this net (its inputs and data-layer tops: data)" in str(e.value)


def test_missing_inputs_are_listed_exactly():
    text = ('layer { name: "d" type: "Python" top: "data" top: "label" python_param { module: "m" layer: "L" } }\n'
            'layer { name: "h" type: "HDF5Data" top: "x" hdf5_data_param { source: "s" batch_size: 2 } }\n'
            'layer { name: "i" type: "ImageData" top: "img" top: "lbl" image_data_param { source: "s" new_height: 8 new_width: 9 } }\n')
    net = load_net(text=text, file="t.prototxt")
    with pytest.raises(InputError) as e:
        infer_shapes(net, {"label": (1, 1, 4, 4)})
    msg = str(e.value)
    assert "'data' (layer 'd', Python), 'x' (layer 'h', HDF5Data)" in msg
    assert "'label'" not in msg.split("hint:")[0] and "'img'" not in msg
    assert "hint: e.g. --input data=N,C,H,W --input x=N,C,H,W" in msg


def test_input_overrides_a_declared_shape():
    s = infer_shapes(net_of('layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n'),
                     {"data": (2, 3, 5, 7)})
    assert s.blobs["r"] == (2, 3, 5, 7) and s.inputs == {"data": (2, 3, 5, 7)}


def test_bind_rejects_unknown_top_level_field():
    with pytest.raises(SchemaError, match="unknown field 'layerz' in NetParameter"):
        bind(parse_text("layerz { }"), "NetParameter")


# --- legacy formats --------------------------------------------------------------------------------

def test_v0_unknown_layer_type():
    msg = err_of(SchemaError, 'input: "data" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4\n'
                              'layers { layer { name: "x" type: "warp" } bottom: "data" top: "x" }\n')
    assert "t.prototxt:2:" in msg and "layer 'x'" in msg and "unknown V0 layer type 'warp'" in msg
    assert "known V0 types:" in msg and "conv" in msg


def test_v0_padding_folded_into_conv():
    net = load_net(file="t.prototxt", text=(
        'input: "data" input_dim: 1 input_dim: 1 input_dim: 8 input_dim: 8\n'
        'layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }\n'
        'layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 5 } bottom: "pad1" top: "conv1" }\n'))
    assert [l.name for l in net.layers] == ["input", "conv1"]
    assert infer_shapes(net).blobs["conv1"] == (1, 4, 8, 8)    # (8 + 2*2 - 5) + 1


def test_v0_padding_must_feed_conv_or_pool():
    msg = err_of(SchemaError, 'input: "data" input_dim: 1 input_dim: 1 input_dim: 8 input_dim: 8\n'
                              'layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }\n'
                              'layers { layer { name: "r" type: "relu" } bottom: "pad1" top: "r" }\n')
    assert "padding layer may only feed a conv or pool layer" in msg and "layer 'r'" in msg


def test_v1_unknown_enum_lists_the_allowed_types():
    msg = err_of(SchemaError, 'layers { name: "x" type: CONVOLUTON top: "x" }\n')
    assert "t.prototxt:1:26:" in msg and "has no value CONVOLUTON" in msg and "CONVOLUTION" in msg


def test_v1_and_v2_layers_together():
    msg = err_of(SchemaError, INPUT + 'layers { name: "x" type: RELU bottom: "data" top: "x" }\n')
    assert "`layer` (current) or `layers` (legacy V1), not both" in msg


def test_input_dim_count_must_be_four_per_input():
    msg = err_of(SchemaError, 'input: "data" input_dim: 1 input_dim: 3 input_dim: 4\n')
    assert "t.prototxt:1:15:" in msg and "1 inputs need 4 input_dim values (N, C, H, W each), got 3" in msg


@pytest.mark.parametrize("body", [
    'layer { name: "s" type: "Sigmoid" bottom: "data" top: "a" }\n'
    'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }\n',
    'layer { name: "e" type: "Eltwise" bottom: "data" bottom: "data" top: "data" }\n',
], ids=["earlier-reader", "read-twice"])
def test_in_place_on_a_blob_someone_else_reads_is_refused_as_caffe_does(body):
    # insert_splits.cpp gives a blob version read twice a Split: the in-place layer then reads a
    # split top, its top is no longer in place, and Net::AppendTop stops: "Top blob 'data'
    # produced by multiple sources"
    msg = err_of(GraphError, INPUT + body)
    assert "rewrites its bottom in place" in msg and "produced by multiple sources" in msg
