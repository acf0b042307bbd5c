"""Hostile input at the parser and schema level (issue 12): values are the ones protobuf's text
parser gives, every bad input gets a clear error at its token, and odd files stay bounded.

Expected values come from protobuf's own Python text parser (`google.protobuf.text_format`, run
here on a message built from a descriptor) wherever it agrees with the C++ parser Caffe links.
Where the two differ, the C++ rule is written out by hand, with where it comes from
(src/google/protobuf/text_format.cc and io/tokenizer.cc).
"""
from __future__ import annotations

import os
import re
import threading
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

import caffe_pb
from protoseg import errors, textformat
from protoseg.errors import InputError, ProtosegError, PrototxtSyntaxError, SchemaError
from protoseg.net import load_net
from protoseg.schema import CAFFE_READS_AS_INT, bind, caffe_schema, load_schema_text
from protoseg.shapes import infer_shapes
from protoseg.textformat import parse_text

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*/*.prototxt")) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus is not present")

# --- one small message, as protobuf and as protoseg's schema -------------------------------------

_F = descriptor_pb2.FieldDescriptorProto
FIELDS = [("i32", "int32", _F.TYPE_INT32), ("u32", "uint32", _F.TYPE_UINT32),
          ("i64", "int64", _F.TYPE_INT64), ("u64", "uint64", _F.TYPE_UINT64),
          ("f", "float", _F.TYPE_FLOAT), ("d", "double", _F.TYPE_DOUBLE), ("b", "bool", _F.TYPE_BOOL),
          ("s", "string", _F.TYPE_STRING), ("e", "E", _F.TYPE_ENUM)]
ENUM = {"A": 0, "B": 1, "NEG": -1}


def _protobuf_message_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="hostile.proto", package="hostile", syntax="proto2")
    enum = fdp.enum_type.add(name="E")
    for name, number in ENUM.items():
        enum.value.add(name=name, number=number)
    m = fdp.message_type.add(name="M")
    for number, (name, _, type_) in enumerate(FIELDS, 1):
        f = m.field.add(name=name, number=number, label=_F.LABEL_OPTIONAL, type=type_)
        if type_ == _F.TYPE_ENUM:
            f.type_name = ".hostile.E"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("hostile.M"))


PB_M = _protobuf_message_class()
SCHEMA = load_schema_text("enum E { " + " ".join(f"{k} = {v};" for k, v in ENUM.items()) + " }\n"
                          "message M { " + " ".join(f"optional {t} {n} = {i};" for i, (n, t, _)
                                                    in enumerate(FIELDS, 1)) + " }\n")


def protobuf_reads(text: str):
    """{field: value} as protobuf's text parser reads `text` (enum values by name), or None if it
    refuses the text."""
    try:
        with warnings.catch_warnings():     # its unescaping warns about what it then refuses
            warnings.simplefilter("ignore", DeprecationWarning)
            msg = text_format.Parse(text, PB_M())
    except text_format.ParseError:
        return None
    names = {v: k for k, v in ENUM.items()}
    return {f.name: names[v] if f.name == "e" else v for f, v in msg.ListFields()}


def protoseg_reads(text: str) -> dict:
    return dict(bind(parse_text(text, "t.prototxt"), "M", SCHEMA).fields())


def same(a: dict, b: dict) -> bool:
    """Equal values of equal types; floats compared by repr (so -0.0 != 0.0 and nan == nan)."""
    return a.keys() == b.keys() and all(type(a[k]) is type(b[k]) and repr(a[k]) == repr(b[k]) for k in a)


# --- numbers: protobuf's Python and C++ parsers agree here ---------------------------------------

SYNTAX, SCHEMA_ERR = PrototxtSyntaxError, SchemaError
LONG = "1" * 5000           # more digits than Python's int() converts (4,300)

# (text, None) when protobuf reads it, or (text, error class, words): the error is at the value.
NUMBERS = [
    ("i32: 010", None), ("i32: -010", None), ("i32: 00", None), ("i32: 0", None),
    ("i32: 0x1F", None), ("i32: 0X1f", None), ("i32: -0x10", None), ("i32: -0", None),
    ("i32: -2147483648", None), ("i32: -0x80000000", None), ("u32: 4294967295", None),
    ("u32: 0x7fffffff", None), ("i64: 9223372036854775807", None), ("i64: -9223372036854775808", None),
    ("u64: 18446744073709551615", None), ("u64: 0xFFFFFFFFFFFFFFFF", None),
    ("u64: 01777777777777777777777", None),
    ("f: 1f", None), ("f: 0f", None), ("f: 1e5", None), ("f: 1e+5", None), ("f: 1E-5F", None),
    ("f: 1.5f", None), ("f: .5", None), ("f: 5.", None), ("f: 0.5", None), ("f: 0", None),
    ("f: -0", None), ("d: -0", None), ("f: 0.1", None), ("d: 0.1", None),
    ("f: inf", None), ("f: -inf", None), ("f: INF", None), ("f: Infinity", None),
    ("f: -INFINITY", None), ("f: nan", None), ("f: -nan", None), ("f: NaN", None),
    ("f: 1e500", None), ("d: -1e500", None), ("f: 3.5e38", None), ("f: 3.4028234e38", None),
    ("f: 1e-50", None), ("d: 18446744073709551616", None),
    ("d: 123456789012345678901234567890", None), (f"d: {LONG}", None),
    ("b: 1", None), ("b: 0", None), ("b: t", None), ("b: True", None), ("b: f", None),
    ("e: 1", None), ("e: -1", None), ("e: B", None), ("e: 0x1", None),
    ("i32: 08", SYNTAX, "8 and 9 are not octal digits"),
    ("i32: 09", SYNTAX, "8 and 9 are not octal digits"),
    ("i32: 0x", SYNTAX, "'0x' must be followed by hex digits"),
    ("i32: 1a", SYNTAX, "followed by a space or a symbol"),
    ("f: 1e", SYNTAX, "'e' must be followed by an exponent"),
    ("f: 1.5.3", SYNTAX, "at most one decimal point"),
    ("f: 00.5", SYNTAX, "hex and octal numbers must be integers"),
    ("i32: 1e5", SCHEMA_ERR, "is int32: expected an integer, got 1e5"),
    ("i32: 1f", SCHEMA_ERR, "expected an integer, got 1f"),
    ("i32: 1.0", SCHEMA_ERR, "expected an integer, got 1.0"),
    ("i32: 2147483648", SCHEMA_ERR, "2147483648 is out of range [-2147483648, 2147483647]"),
    ("i32: -2147483649", SCHEMA_ERR, "out of range"),
    ("i32: 0x80000000", SCHEMA_ERR, "out of range"),
    ("u32: 4294967296", SCHEMA_ERR, "4294967296 is out of range [0, 4294967295]"),
    ("i64: 9223372036854775808", SCHEMA_ERR, "out of range"),
    ("u64: 18446744073709551616", SCHEMA_ERR, "out of range [0, 18446744073709551615]"),
    ("u64: 0x10000000000000000", SCHEMA_ERR, "out of range"),
    (f"i32: {LONG}", SCHEMA_ERR, "is out of range"),
    ("f: 010", SCHEMA_ERR, "expected a decimal number, got 010"),
    ("f: 00", SCHEMA_ERR, "expected a decimal number"),
    ("f: 0x10", SCHEMA_ERR, "expected a decimal number, got 0x10"),
    ("b: T", SCHEMA_ERR, "is a bool: expected true or false"),
    ("b: 2", SCHEMA_ERR, "is a bool"),
    ("b: -0", SCHEMA_ERR, "is a bool"),
    ("e: 2", SCHEMA_ERR, "has no value 2; allowed values of E: A, B, NEG"),
]


def _id(text: str) -> str:
    return text if len(text) <= 30 else f"{text[:8]}...{len(text)}-chars"


@pytest.mark.parametrize("case", NUMBERS, ids=[_id(c[0]) for c in NUMBERS])
def test_number_reads_as_protobuf_reads_it(case):
    text, error = case[0], case[1]
    expected = protobuf_reads(text)
    if error is None:
        assert expected is not None, "protobuf refuses this text: the table is wrong"
        assert same(protoseg_reads(text), expected)
        return
    assert expected is None, "protobuf reads this text: the table is wrong"
    with pytest.raises(error) as e:
        protoseg_reads(text)
    value_col = text.index(":") + 3
    assert (e.value.span.line, e.value.span.col) == (1, value_col)
    assert case[2] in e.value.message and len(e.value.message) < 200


@pytest.mark.parametrize("text,value", [("f: 0.1", 13421773 * 2**-27), ("f: 1e-5", 10995116 * 2**-40),
                                        ("f: 16777217", 2.0**24), ("d: 0.1", 0.1)],
                         ids=["0.1", "1e-5", "2**24+1", "double"])
def test_a_float_field_holds_a_c_float(text, value):
    """The nearest C floats, worked out by hand (24-bit mantissa 0xCCCCCD for 0.1, 0xA7C5AC for
    1e-5; 2**24 + 1 has no C float of its own); a double field keeps the double."""
    (got,) = protoseg_reads(text).values()
    assert type(got) is float and got == value


# --- numbers where Caffe's C++ parser and protobuf's Python parser differ: C++ rules -------------

CPP_NUMBERS = [
    # ConsumeSignedInteger: '-' is a token of its own, so a space (or a comment) may follow it.
    ("i32: - 5", {"i32": -5}), ("d: - 5", {"d": -5.0}), ("i32: -  # sign\n 7", {"i32": -7}),
    # ConsumeUnsignedInteger: an unsigned field takes no '-' at all ("Expected integer, got: -").
    ("u32: -0", (SCHEMA_ERR, "takes no sign")),
    # '+' is a symbol to the tokenizer, not part of a number.
    ("i32: +5", (SYNTAX, "unexpected character '+'")),
    # ConsumeDouble: only inf, infinity and nan (any case); no 'f' suffix on them.
    ("f: inff", (SCHEMA_ERR, "expected a number, got inff")),
    ("f: nanf", (SCHEMA_ERR, "expected a number, got nanf")),
    # bool: any integer token up to 1 (ConsumeUnsignedInteger(&value, 1)), octal and hex too.
    ("b: 0x1", {"b": True}), ("b: 01", {"b": True}), ("b: 00", {"b": False}),
]


@pytest.mark.parametrize("text,expected", CPP_NUMBERS, ids=[c[0].replace("\n", " ") for c in CPP_NUMBERS])
def test_number_reads_as_caffes_cpp_protobuf_reads_it(text, expected):
    if isinstance(expected, dict):
        assert same(protoseg_reads(text), expected)
        return
    error, words = expected
    with pytest.raises(error) as e:
        protoseg_reads(text)
    assert (e.value.span.line, e.value.span.col) == (1, text.index(":") + 3)
    assert words in e.value.message


# --- strings and escapes -------------------------------------------------------------------------

# (text, None) when protobuf reads it, else (text, error class, column of the error, words).
STRINGS = [
    (r's: "\303\251"', None), (r's: "\xc3\xa9"', None), (r's: "\xc3" "\xa9"', None),
    (r's: "\u00e9"', None), (r's: "\U0001F600"', None), (r's: "\0"', None), (r's: "\1234"', None),
    (r's: "\x4g"', None), (r"s: 'a\'b'", None), (r's: "\a\b\f\v\t\n\r\\\"\'"', None),
    ('s: "caf\u00e9 \u5377\u79ef"', None),
    (r's: "\ud800"', SYNTAX, 5, r"invalid escape \ud800: a lone UTF-16 surrogate"),
    (r's: "a\ud800b"', SYNTAX, 6, r"invalid escape \ud800"),
    (r's: "\udc00"', SYNTAX, 5, r"invalid escape \udc00"),
    (r's: "\U00110000"', SYNTAX, 5, r"invalid escape \U00110000: beyond U+10FFFF"),
    (r's: "ab\400"', SYNTAX, 7, r"invalid escape \400: octal escapes go up to \377"),
    (r's: "\777"', SYNTAX, 5, r"invalid escape \777"),
    (r's: "x\x"', SYNTAX, 6, r"invalid escape \x"),
    (r's: "\u12"', SYNTAX, 5, r"invalid escape \u12"),
    (r's: "ok" "\xff"', SYNTAX, 10, "not valid UTF-8: its escapes give byte 0xff"),
    (r's: "ab\xc3" "\x41"', SYNTAX, 7, "its escapes give byte 0xc3"),
]


@pytest.mark.parametrize("case", STRINGS, ids=[c[0] for c in STRINGS])
def test_string_reads_as_protobuf_reads_it(case):
    text, error = case[0], case[1]
    expected = protobuf_reads(text)
    if error is None:
        assert expected is not None and same(protoseg_reads(text), expected)
        return
    assert expected is None, "protobuf reads this text: the table is wrong"
    with pytest.raises(error) as e:
        protoseg_reads(text)
    assert (e.value.span.line, e.value.span.col) == (1, case[2])
    assert case[3] in e.value.message


CPP_STRINGS = [
    # FetchUnicodePoint joins a \u head surrogate and a \u trail surrogate into one character
    # (Python's parser refuses the pair).
    (r's: "\ud83d\ude00"', "\U0001F600"), (r's: "<\uD83D\uDE00>"', "<\U0001F600>"),
    # TranslateEscape knows \? and \X (hex); Python keeps them as written.
    (r's: "\?"', "?"), (r's: "\X41"', "A"),
    # Any other escape is "Invalid escape sequence in string literal." (Python keeps it).
    (r's: "\q"', (5, r"invalid escape \q")), (r's: "ab\8"', (7, r"invalid escape \8")),
    (r's: "\N{DIGIT ONE}"', (5, r"invalid escape \N")), (r's: "\e"', (5, r"invalid escape \e")),
]


@pytest.mark.parametrize("text,expected", CPP_STRINGS, ids=[c[0] for c in CPP_STRINGS])
def test_string_reads_as_caffes_cpp_protobuf_reads_it(text, expected):
    if isinstance(expected, str):
        assert protoseg_reads(text) == {"s": expected}
        return
    with pytest.raises(PrototxtSyntaxError) as e:
        protoseg_reads(text)
    assert (e.value.span.col, e.value.message) == expected


def test_every_string_of_a_loaded_net_can_be_printed():
    """A name made of escapes is real text, never a lone surrogate that fails when printed."""
    net = load_net(file="t.prototxt", text=(
        r'layer { name: "\u5165\ud83d\ude00" type: "Input" top: "d\303\251" '
        r'input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }'))
    layer = net.layers[0]
    assert (layer.name, layer.tops) == ("\u5165\U0001F600", ["d\u00e9"])
    assert (layer.name + layer.tops[0]).encode("utf-8")


# --- values Caffe would read wrapped around ------------------------------------------------------

INPUT = 'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'

WRAPS = [("pad", 4294967295, -1), ("kernel_size", 2147483648, -2147483648), ("stride", 4294967294, -2),
         ("num_output", 3000000000, -1294967296), ("group", 2147483649, -2147483647)]


@pytest.mark.parametrize("field,value,wrapped", WRAPS, ids=[f"{w[0]}-{w[1]}" for w in WRAPS])
def test_uint32_that_caffe_reads_into_int_is_refused(field, value, wrapped):
    caffe_pb_read = text_format.Parse(f"{field}: {value}", caffe_pb.PACKED.ConvolutionParameter())
    assert getattr(caffe_pb_read, field) in (value, [value])        # protobuf accepts it
    text = INPUT + ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                    f'convolution_param {{ {field}: {value} }} }}\n')
    with pytest.raises(SchemaError) as e:
        load_net(text=text, file="t.prototxt")
    assert f"Caffe reads {field} into a C int, where it becomes {wrapped}" in e.value.message
    assert e.value.layer == "c" and e.value.span.line == 2


@pytest.mark.parametrize("dim,wrapped", [(4294967297, 1), (-2147483649, 2147483647), (2**62, 0)])
def test_int64_blob_dim_that_caffe_truncates_is_refused(dim, wrapped):
    caffe_pb_read = text_format.Parse(f"dim: {dim}", caffe_pb.PACKED.BlobShape())
    assert list(caffe_pb_read.dim) == [dim]
    text = f'layer {{ name: "in" type: "Input" top: "data" input_param {{ shape {{ dim: 1 dim: {dim} }} }} }}\n'
    with pytest.raises(SchemaError) as e:
        load_net(text=text, file="t.prototxt")
    assert f"where it becomes {wrapped}" in e.value.message


def test_int_max_itself_is_read():
    text = INPUT + ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                    'convolution_param { num_output: 2147483647 kernel_size: 1 } }\n')
    conv = load_net(text=text, file="t.prototxt").layers[1]
    assert conv.params.get("convolution_param").get("num_output") == 2**31 - 1


@pytest.mark.parametrize("message,field", sorted((m, f) for m, fs in CAFFE_READS_AS_INT.items() for f in fs),
                         ids=lambda x: x)
def test_the_read_as_int_list_names_integer_fields_of_the_schema(message, field):
    assert caffe_schema().message(message).fields[field].type in ("uint32", "int64")


# --- bytes that are not UTF-8 ---------------------------------------------------------------------

NET = ('layer { name: "in" type: "Input" top: "data"  @COMMENT\n'
       '  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
       'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n')


@pytest.mark.parametrize("comment", ["# 卷积层 (GBK)".encode("gbk"), "# Größe (Latin-1)".encode("latin-1"),
                                     b"# \xff\xfe\x80 stray bytes", "# 中文 UTF-8".encode("utf-8")],
                         ids=["gbk", "latin-1", "stray", "utf-8"])
def test_comment_bytes_are_skipped_as_protobuf_skips_them(tmp_path, comment):
    """tokenizer.cc's ConsumeLineComment skips every byte up to the newline. (Python's parser
    decodes the whole text as UTF-8 first, so it refuses all but the last case.)"""
    p = tmp_path / "n.prototxt"
    p.write_bytes(NET.encode().replace(b"@COMMENT", comment))
    assert infer_shapes(load_net(str(p))).blobs["r"] == (1, 3, 8, 8)


@pytest.mark.parametrize("line,col,words", [
    (b'layer { name: "in\xd6t" }', 18, "not valid UTF-8: it holds byte 0xd6"),
    (b'layer { name: "\xe4\xb8\xad\xff" }', 17, "it holds byte 0xff"),
    (b"layer { \xff name: 'x' }", 9, "byte 0xff is not UTF-8 text"),
    (b"\xef\xbb\xbflayer { }", 1, "byte-order mark"),
], ids=["latin1-in-string", "after-utf8-char", "outside-strings", "bom"])
def test_bytes_that_are_not_utf8_elsewhere_are_an_error_at_their_column(tmp_path, line, col, words):
    p = tmp_path / "n.prototxt"
    p.write_bytes(line + b"\n")
    with pytest.raises(PrototxtSyntaxError) as e:
        load_net(str(p))
    assert (e.value.span.line, e.value.span.col) == (1, col) and words in e.value.message
    assert str(e.value).encode("utf-8")         # printable: the bad byte shows as U+FFFD


def test_a_caffemodel_is_sent_to_weights(tmp_path):
    p = tmp_path / "x.prototxt"
    net = caffe_pb.PACKED.NetParameter(name="n")
    net.layer.add(name="c", type="Convolution").blobs.append(caffe_pb.blob(caffe_pb.PACKED, [[[[0.0, 1.0]]]]))
    p.write_bytes(net.SerializeToString())
    with pytest.raises(PrototxtSyntaxError, match=r"binary file.*\.caffemodel goes to --weights"):
        load_net(str(p))


def test_utf16_text_is_named(tmp_path):
    p = tmp_path / "x.prototxt"
    p.write_bytes('name: "n"\n'.encode("utf-16"))
    with pytest.raises(PrototxtSyntaxError, match="UTF-16 text"):
        load_net(str(p))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_refused_at_once():
    with pytest.raises(PrototxtSyntaxError, match="binary file"):
        load_net("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_read_up_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(textformat, "MAX_FILE_BYTES", 1 << 20)
    fifo = tmp_path / "endless.prototxt"
    os.mkfifo(fifo)

    def write_forever():
        try:
            with open(fifo, "w") as f:
                while True:
                    f.write("name: 'x'\n" * 1000)
        except BrokenPipeError:
            pass
    writer = threading.Thread(target=write_forever, daemon=True)
    writer.start()
    with pytest.raises(ProtosegError, match="more than 1 MiB: too large for a .prototxt"):
        load_net(str(fifo))
    writer.join(timeout=60)


# --- nesting, long literals, long lines -----------------------------------------------------------

def nested(depth: int) -> str:
    return "a { " * depth + "}" * depth


def test_100_nested_messages_parse():
    tree = parse_text(nested(100))
    for _ in range(100):
        (entry,) = tree.entries
        tree = entry.value
    assert tree.entries == []


@pytest.mark.parametrize("depth", [101, 300, 5000])
def test_nesting_beyond_100_is_an_error_at_the_101st_brace(depth):
    with pytest.raises(PrototxtSyntaxError) as e:
        parse_text(nested(depth))
    assert e.value.span.col == 100 * 4 + 3 and "nested more than 100 deep" in e.value.message


def test_a_5000_digit_integer_is_out_of_range_at_its_token():
    text = INPUT + f'layer {{ name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param {{ num_output: {LONG} }} }}\n'
    with pytest.raises(SchemaError) as e:
        load_net(text=text, file="t.prototxt")
    assert (e.value.span.line, e.value.span.col) == (2, text.splitlines()[1].index(LONG) + 1)
    assert "is out of range" in e.value.message and len(str(e.value)) < 1000


def test_a_long_line_is_cut_around_the_caret():
    line = "name: \"" + "x" * 650_000 + "\" @ " + "y" * 650_000
    with pytest.raises(PrototxtSyntaxError) as e:
        parse_text(line, "t.prototxt")
    printed = str(e.value).splitlines()
    assert printed[0] == "t.prototxt:1:650010: unexpected character '@'"
    shown, caret = printed[1][2:], printed[2].index("^") - 2
    assert shown.startswith("…") and shown.endswith("…") and len(shown) <= errors.EXCERPT + 2
    assert shown[caret] == "@"


def test_control_characters_never_reach_the_terminal():
    text = 'layer { name: "\\033[2J\\033]0;owned\\007" type: "NoSuchType" }\n'
    with pytest.raises(ProtosegError) as e:
        load_net(text=text, file="t.prototxt")
    assert "\x1b" not in str(e.value) and "\x07" not in str(e.value)


# --- the catalogue of syntax errors: class, position, words, caret under the token ----------------

# (text, line, col, words): the caret goes under the character at line:col.
SYNTAX_ERRORS = [
    ('layer {\n  name: "a"\n', 1, 7, "'{' is never closed"),
    ('a < b: 1 }', 1, 10, "'}' does not close the '<' of line 1, column 3; expected '>'"),
    ('a: [1, 2', 1, 4, "'[' is never closed"),
    ('a: [1 2]', 1, 7, "unexpected '2' in a list; expected ',' or ']'"),
    ('a: [1, }', 1, 8, "unexpected '}'; expected a value"),
    ('a [1, 2]', 1, 3, "expected ':' before a list of values"),
    ('a: 1 ]', 1, 6, "']' closes nothing"),
    ('a: 1;;', 1, 6, "unexpected ';'; expected a field name"),
    ('a: :', 1, 4, "unexpected ':'; expected a value"),
    ('a: {', 1, 4, "'{' is never closed"),
    ('a b', 1, 3, "expected ':' between the field name and its value, got 'b'"),
    ('a ,', 1, 3, "unexpected ',' after field name 'a'; expected ':' or '{'"),
    ('a: - -1', 1, 4, "'-' must be followed by a number, not '-'"),
    ('a: -"x"', 1, 4, "'-' must be followed by a number"),
    ('3: 4', 1, 1, "unexpected '3'; expected a field name"),
    ('a: 1.5.3', 1, 4, "invalid number '1.5.3'"),
    ('a: "x\\\ny"', 1, 4, "unterminated string"),
    ("a: 'x\"", 1, 4, "unterminated string"),
    ('a: 1 .', 1, 6, "unexpected character '.'"),
    ('a: 1 \x00', 1, 6, "unexpected character '\\x00'"),
    ('a:\t\t1 @', 1, 7, "unexpected character '@'"),
    ('# c\n\n  a { b: ${X} }', 3, 10, "unfilled template variable '${X}'"),
    ('a: 1 ：', 1, 6, "unexpected character '：'"),
    ('a: 0x1g', 1, 4, "invalid number '0x1g'"),
    ('a: 1ex', 1, 4, "'e' must be followed by an exponent"),
    ("a: " + "1" * 200_000 + "G1", 1, 4, "invalid number '" + "1" * 40 + "…': a number must be followed"),
]


@pytest.mark.parametrize("text,line,col,words", SYNTAX_ERRORS, ids=[_id(repr(c[0])[1:-1]) for c in SYNTAX_ERRORS])
def test_syntax_error_points_at_its_token(text, line, col, words):
    with pytest.raises(PrototxtSyntaxError) as e:
        parse_text(text, "t.prototxt")
    printed = str(e.value).splitlines()
    assert printed[0].startswith(f"t.prototxt:{line}:{col}: ") and words in printed[0]
    shown, caret = printed[1][2:], printed[2].index("^") - 2
    source = text.split("\n")[line - 1]
    assert source[:col - 1].isascii()       # the wide-character case is below
    assert caret == col - 1 and shown[:caret] == errors.printable(source[:col - 1])


def test_the_caret_counts_wide_characters_twice():
    """A terminal shows CJK characters two columns wide; the caret must still meet the token."""
    with pytest.raises(PrototxtSyntaxError) as e:
        parse_text('name: "卷积层" @', "t.prototxt")
    assert str(e.value).splitlines()[2] == "  " + " " * (7 + 3 * 2 + 2) + "^"


@pytest.mark.parametrize("text,line,col", [("b", 1, 2), ("b:\n", 1, 3), ("b:\n\n", 2, 1),
                                           ("a: 1\nb: # c", 2, 7), ("a {\n", 1, 3)],
                         ids=["name", "newline", "blank-line", "comment", "open-brace"])
def test_unexpected_end_is_at_the_end_of_the_last_line(text, line, col):
    with pytest.raises(PrototxtSyntaxError) as e:
        parse_text(text, "t.prototxt")
    assert (e.value.span.line, e.value.span.col) == (line, col)


# --- the hand-written parser against grammars/prototxt.lark -------------------------------------

def _shape(node):
    """What both parsers must agree on: fields in order, lists, and each scalar as written."""
    if isinstance(node, textformat.TextMessage):
        return [(e.name, _shape(e.value)) for e in node.entries]
    if isinstance(node, textformat.TextList):
        return ("list", [_shape(i) for i in node.items])
    return "string" if node.kind == "string" else node.text


@pytest.fixture(scope="module")
def lark_parser():
    lark = pytest.importorskip("lark")
    from protoseg.resources import grammar_path

    class Shape(lark.Transformer):
        def start(self, children):
            return [c for c in children if isinstance(c, tuple)]
        message = start

        def scalar_field(self, children):
            return (str(children[0]), children[2])

        def message_field(self, children):
            return (str(children[0]), children[-1])
        list_field = message_field

        def list(self, children):
            return ("list", [c for c in children if not isinstance(c, lark.Token)])
        message_list = list

        def string(self, children):
            return "string"

        def number(self, children):
            return "".join(children)

        def name(self, children):
            return str(children[0])

    with open(grammar_path("prototxt.lark"), encoding="utf-8") as f:
        return lark.Lark(f.read(), parser="lalr", lexer="contextual", transformer=Shape())


def _smallest_per_folder():
    """One net of each corpus folder (the smallest that is not a ${VAR} template)."""
    smallest = {}
    for p in CORPUS_FILES:
        if "${" not in p.read_text(encoding="utf-8") and (
                p.parent.name not in smallest or p.stat().st_size < smallest[p.parent.name].stat().st_size):
            smallest[p.parent.name] = p
    return [smallest[k] for k in sorted(smallest)]


ODD_BUT_VALID = ["a: - # sign\n 5", "a [ {b: 1}, <c: 2> ]", "a: [ ]", "a <> b: [{}]", "x: 0x1F y: 010 z: .5e3f",
                 "a: -inf b: -NaN c: 1f;", "s: 'a' \"b\" 'c'", "a { b { } } , c: d ;"]


@pytest.mark.parametrize("text", [p.read_text(encoding="utf-8") for p in _smallest_per_folder()] + ODD_BUT_VALID,
                         ids=[p.parent.name for p in _smallest_per_folder()] + [repr(t)[1:-1] for t in ODD_BUT_VALID])
def test_the_parser_reads_what_the_grammar_reads(lark_parser, text):
    assert _shape(parse_text(text)) == lark_parser.parse(text)


@pytest.mark.parametrize("text", [c[0] for c in SYNTAX_ERRORS], ids=[_id(repr(c[0])[1:-1]) for c in SYNTAX_ERRORS])
def test_the_grammar_refuses_what_the_parser_refuses(lark_parser, text):
    lark = pytest.importorskip("lark")
    with pytest.raises(lark.exceptions.LarkError):
        lark_parser.parse(text)


# --- fuzzing: mutated corpus nets fail only with a ProtosegError --------------------------------

EXTREMES = [b"0", b"1", b"2", b"3", b"7", b"100", b"65536", b"-0", b"-1", b"2147483647", b"2147483648",
            b"4294967295", b"4294967296", b"-2147483649", b"9223372036854775808", b"18446744073709551616",
            b"010", b"08", b"0x7fffffff", b"0x", b"1e39", b"1e-50", b".5", b"5.", b"1f", b"nan", b"-inf",
            b"infinity", LONG.encode(), LONG.encode() + b"G1", b"- 3", b"1.5.3"]
ESCAPES = [b"\\ud800", b"\\ud83d\\ude00", b"\\udc00x", b"\\xff", b"\\xc3", b"\\400", b"\\u00e9", b"\\q", b"\\",
           b"\\x", b"\\U00110000", b"\\0", "\u5377".encode(), "\u00e9".encode("latin-1")]
NUMBER = re.compile(rb"(?<![\w.])-?[0-9]+(?:\.[0-9]+)?(?![\w.])")
QUOTED = re.compile(rb'"[^"\n]*"')
FIELD = re.compile(rb"\s*[A-Za-z_]\w*\s*:[^{}<>\[\]]*")        # a line holding one scalar field
LAYER = re.compile(rb"^layers?\s*\{", re.M)                      # a top-level layer block starts


def _field_lines(lines: list) -> list:
    return [i for i, line in enumerate(lines) if FIELD.fullmatch(line)] or list(range(len(lines)))


def drop_field(rng, data):
    lines = data.split(b"\n")
    del lines[rng.choice(_field_lines(lines))]
    return b"\n".join(lines)


def duplicate_field(rng, data):
    lines = data.split(b"\n")
    i = rng.choice(_field_lines(lines))
    return b"\n".join(lines[:i + 1] + lines[i:])


def swap_fields(rng, data):
    lines = data.split(b"\n")
    i, j = rng.choice(_field_lines(lines)), rng.choice(_field_lines(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _layer_blocks(data: bytes) -> list:
    """(start, end) of each top-level `layer { ... }` block, found by counting braces."""
    blocks = []
    for m in LAYER.finditer(data):
        depth, i = 0, m.end() - 1
        while i < len(data):
            depth += {ord("{"): 1, ord("}"): -1}.get(data[i], 0)
            i += 1
            if depth == 0:
                blocks.append((m.start(), i))
                break
    return blocks


def drop_layer(rng, data):
    blocks = _layer_blocks(data)
    if not blocks:
        return data
    start, end = rng.choice(blocks)
    return data[:start] + data[end:]


def duplicate_layer(rng, data):
    blocks = _layer_blocks(data)
    if not blocks:
        return data
    start, end = rng.choice(blocks)
    return data[:end] + b"\n" + data[start:end] + data[end:]


def move_layer(rng, data):
    blocks = _layer_blocks(data)
    if not blocks:
        return data
    start, end = rng.choice(blocks)
    rest = data[:start] + data[end:]
    at = rng.choice([b[0] for b in _layer_blocks(rest)] or [len(rest)])
    return rest[:at] + data[start:end] + b"\n" + rest[at:]


def _spot(rng, pattern, data):
    """One match of `pattern` in `data`, at random; None if there is none."""
    spots = list(pattern.finditer(data))
    return rng.choice(spots) if spots else None


def extreme_number(rng, data):
    m = _spot(rng, NUMBER, data)
    return data if m is None else data[:m.start()] + rng.choice(EXTREMES) + data[m.end():]


def bytes_in_comment(rng, data):
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    lines[i] += b" # " + rng.randbytes(rng.randrange(1, 12)).replace(b"\n", b"")
    return b"\n".join(lines)


def bytes_in_string(rng, data):
    m = _spot(rng, QUOTED, data)
    if m is None:
        return data
    at = rng.randrange(m.start() + 1, m.end())
    junk = rng.choice(ESCAPES) if rng.random() < 0.6 else rng.randbytes(rng.randrange(1, 6))
    return data[:at] + junk.replace(b"\n", b"").replace(b'"', b"") + data[at:]


def deep_nesting(rng, data):
    depth = rng.choice([1, 2, 50, 99, 100, 101, 300])
    at = rng.randrange(len(data) + 1)
    closes = b"}" * depth if rng.random() < 0.8 else b""
    return data[:at] + b"\nx { " * depth + closes + data[at:]


def truncate(rng, data):
    return data[:rng.randrange(len(data) + 1)]


def flip_byte(rng, data):
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]


def stray_symbol(rng, data):
    at = rng.randrange(len(data) + 1)
    return data[:at] + bytes([rng.choice(b"{}<>[]:;,-\"'#\\$.")]) + data[at:]


# Values change more often than the structure breaks, so that many mutated nets reach the shapes.
MUTATIONS = [drop_field, duplicate_field, swap_fields, drop_layer, duplicate_layer, move_layer,
             extreme_number, extreme_number, extreme_number, bytes_in_comment, bytes_in_string,
             deep_nesting, truncate, flip_byte, stray_symbol]


def mutate(rng, data: bytes) -> bytes:
    """One to three structure-aware mutations of a prototxt's bytes."""
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(MUTATIONS)(rng, data)
    return data


def load_and_infer(path: Path, data: bytes):
    """The property: the net loads and gets its shapes, or a ProtosegError says why; whatever
    protoseg holds or prints is text that can be written out."""
    path.write_bytes(data)
    try:
        net = load_net(str(path))
        try:
            infer_shapes(net)
        except InputError:      # data layers: give every top of a layer without bottoms a shape
            infer_shapes(net, {top: (2, 3, 24, 24) for layer in net.layers if not layer.bottoms
                               for top in layer.tops})
        for layer in net.layers:
            "".join([layer.name, layer.type, *layer.bottoms, *layer.tops]).encode("utf-8")
    except ProtosegError as e:
        str(e).encode("utf-8")


SMALL_CORPUS = [p for p in CORPUS_FILES if p.stat().st_size < 20_000]


@needs_corpus
@settings(derandomize=True, max_examples=int(os.environ.get("PROTOSEG_FUZZ_EXAMPLES", 400)),
          deadline=timedelta(seconds=10), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(source=st.sampled_from(SMALL_CORPUS or [Path(__file__)]), rng=st.randoms(use_true_random=False))
def test_mutated_corpus_nets_fail_only_with_a_protoseg_error(tmp_path_factory, source, rng):
    load_and_infer(tmp_path_factory.getbasetemp() / "fuzz.prototxt", mutate(rng, source.read_bytes()))


def campaign(cases: int, seed: int) -> None:
    """The long run: every corpus file, `cases` mutations from `seed`; prints every exception
    that is not a ProtosegError (one line each, grouped) and the slowest cases.

        python tests/test_hostile_parse.py CASES SEED
    """
    import collections
    import random
    import tempfile
    import time
    import traceback
    rng = random.Random(seed)
    sources = [(p, p.read_bytes()) for p in CORPUS_FILES]
    found, slow = collections.defaultdict(list), []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.prototxt"
        for case in range(cases):
            source, data = rng.choice(sources)
            data = mutate(rng, data)
            start = time.perf_counter()
            try:
                load_and_infer(path, data)
            except Exception as e:      # noqa: BLE001 -- what the campaign is looking for
                where = traceback.extract_tb(e.__traceback__)[-1]
                key = f"{type(e).__name__} at {Path(where.filename).name}:{where.lineno}: {str(e)[:120]}"
                found[key].append((case, source.name))
                (Path(d).parent / f"protoseg-fuzz-{seed}-{case}.prototxt").write_bytes(data)
            slow.append((time.perf_counter() - start, case, source.name, len(data)))
            if case % 10_000 == 0:
                print(f"{case} cases, {len(found)} kinds of failure", flush=True)
    print(f"{cases} cases from seed {seed}: {sum(map(len, found.values()))} failures, {len(found)} kinds")
    for key, hits in sorted(found.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(hits)}x {key}  (first: case {hits[0][0]}, {hits[0][1]})")
    print("slowest:", [f"{t:.2f}s case {c} {name} {n} bytes" for t, c, name, n in sorted(slow)[-5:]])


if __name__ == "__main__":
    import sys
    campaign(int(sys.argv[1]), int(sys.argv[2]))
