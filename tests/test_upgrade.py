"""`protoseg upgrade` and `protoseg fmt` (protoseg/textwriter.py, net.upgrade_net).

Expected texts are written by hand from Caffe's rules: upgrade_proto.cpp for what an upgrade does
(UpgradeV0PaddingLayers, UpgradeV1LayerParameter, UpgradeNetDataTransformation, UpgradeNetInput,
UpgradeNetBatchNorm) and protobuf's text_format.cc / strutil.cc for how values are written
(SimpleFtoa: %.6g, %.9g when that does not read back; CEscape). On the corpus: every file
upgraded loads to the same layers (their parameters included) and the same blob shapes as the
original, and formatting is idempotent and keeps every comment and the meaning; the reference
Caffe builds the upgraded legacy nets to the same net as the originals.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import caffe_ref
from protoseg.cli import main
from protoseg.errors import ProtosegError, SchemaError
from protoseg.net import load_net
from protoseg.schema import bind, msg_data
from protoseg.shapes import infer_shapes
from protoseg.textformat import parse_text
from protoseg.textwriter import format_prototxt
from test_corpus import BROKEN, CORPUS, FILES, RUNS, TEMPLATES

ROOT = Path(__file__).resolve().parents[1]
LENET_V1 = ROOT / "prototxts" / "legacy" / "lenet_v1.prototxt"


def upgraded(text: str) -> str:
    return format_prototxt(text=text, upgrade=True)


# ---------------------------------------------------------------------------------------------
# what an upgrade writes

def test_v1_layer_becomes_v2_with_param_specs():
    text = '''layers {
  name: "fc"  # the classifier
  type: INNER_PRODUCT
  bottom: "x"
  top: "fc"
  blobs_lr: 1
  blobs_lr: 2
  weight_decay: 1
  weight_decay: 0
  inner_product_param { num_output: 10 }
}
'''
    assert upgraded(text) == '''layer {
  name: "fc"  # the classifier
  type: "InnerProduct"
  bottom: "x"
  top: "fc"
  param {
    lr_mult: 1
    decay_mult: 1
  }
  param {
    lr_mult: 2
    decay_mult: 0
  }
  inner_product_param {
    num_output: 10
  }
}
'''


def test_v1_param_names_and_share_modes_join_the_specs():
    text = 'layers { name: "a" type: CONVOLUTION bottom: "x" top: "a" param: "w" param: "b" ' \
           'blob_share_mode: PERMISSIVE blobs_lr: 0.5 convolution_param { num_output: 1 kernel_size: 1 } }'
    got = upgraded(text)
    assert 'param {\n    name: "w"\n    share_mode: PERMISSIVE\n    lr_mult: 0.5\n  }\n' \
           '  param {\n    name: "b"\n  }\n' in got


def test_net_inputs_become_an_input_layer_placed_first():
    text = '''name: "n"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 8
input_dim: 8
layer { name: "r" type: "ReLU" bottom: "data" top: "r" }
'''
    assert upgraded(text) == '''name: "n"
layer {
  name: "input"
  type: "Input"
  top: "data"
  input_param {
    shape {
      dim: 1
      dim: 3
      dim: 8
      dim: 8
    }
  }
}
layer {
  name: "r"
  type: "ReLU"
  bottom: "data"
  top: "r"
}
'''


def test_input_shape_blocks_become_the_input_layer_shapes():
    text = 'input: "a" input_shape { dim: 2 dim: 5 } input: "b" input_shape { dim: 7 }'
    assert upgraded(text) == '''layer {
  name: "input"
  type: "Input"
  top: "a"
  top: "b"
  input_param {
    shape {
      dim: 2
      dim: 5
    }
    shape {
      dim: 7
    }
  }
}
'''


def test_v0_padding_layer_folds_into_the_convolution():
    text = '''layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers {
  layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 5 stride: 1 blobs_lr: 1 }
  bottom: "pad1"
  top: "conv1"
}
input: "data"
input_dim: 1 input_dim: 1 input_dim: 12 input_dim: 12
'''
    got = upgraded(text)
    conv = got[got.index('  name: "conv1"'):]
    assert conv == '''  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  param {
    lr_mult: 1
  }
  convolution_param {
    num_output: 4
    kernel_size: 5
    stride: 1
    pad: 2
  }
}
'''
    assert "pad1" not in got


def test_v1_data_layer_transformation_fields_move_to_transform_param():
    text = '''layers {
  name: "d" type: DATA top: "data" top: "label"
  data_param { source: "db" batch_size: 4 scale: 0.00390625 crop_size: 24 mirror: true }
}'''
    assert upgraded(text) == '''layer {
  name: "d"
  type: "Data"
  top: "data"
  top: "label"
  data_param {
    source: "db"
    batch_size: 4
  }
  transform_param {
    scale: 0.00390625
    crop_size: 24
    mirror: true
  }
}
'''


def test_old_batch_norm_param_specs_get_zero_learning_rates():
    text = '''layer {
  name: "bn" type: "BatchNorm" bottom: "x" top: "x"
  param { lr_mult: 1 } param { lr_mult: 1 } param { lr_mult: 1 }
}'''
    assert upgraded(text).count("param {\n    lr_mult: 0\n    decay_mult: 0\n  }") == 3


def test_v2_net_without_inputs_upgrades_to_its_canonical_form():
    text = 'name: "n"\nlayer { name: "i" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
    assert upgraded(text) == format_prototxt(text=text)


def test_deeplab_v1_hole_is_kept_as_written():
    """upgrade_proto.cpp copies convolution_param whole (CopyFrom): the fork's `hole` stays, and
    the upgraded net still needs DeepLab v1's Caffe, as the original did."""
    text = 'layers { name: "c" type: CONVOLUTION bottom: "x" top: "c" ' \
           'convolution_param { num_output: 2 kernel_size: 3 hole: 2 } }'
    assert "    hole: 2\n" in upgraded(text)


def test_net_with_both_layer_and_layers_is_refused():
    with pytest.raises(SchemaError, match="`layer` .* or `layers` .*not both"):
        upgraded('layer { name: "a" type: "ReLU" } layers { name: "b" type: RELU }')


# ---------------------------------------------------------------------------------------------
# the canonical form

@pytest.mark.parametrize("written,canonical", [
    ("lr_mult: 0.1", "lr_mult: 0.1"),                # float: %.6g reads back
    ("lr_mult: 1.0", "lr_mult: 1"),
    ("lr_mult: 1e-5", "lr_mult: 1e-05"),
    ("lr_mult: 2000000", "lr_mult: 2e+06"),
    ("lr_mult: 0.333333343", "lr_mult: 0.333333343"),  # %.6g gives 0.333333, another float
    ("lr_mult: 16777217", "lr_mult: 16777216"),      # the float nearest, exactly
    ("lr_mult: -inf", "lr_mult: -inf"),
    ("lr_mult: NaN", "lr_mult: nan"),
    ("lr_mult: -0", "lr_mult: -0"),
], ids=["decimal", "integral", "small", "large", "nine-digits", "rounded-to-float", "inf", "nan",
        "negative-zero"])
def test_float_values_as_simple_ftoa_writes_them(written, canonical):
    text = f'layer {{ name: "a" param {{ {written} }} }}'
    assert format_prototxt(text=text).splitlines()[3].strip() == canonical


@pytest.mark.parametrize("written,canonical", [
    ('name: \'say "hi"\'', r'name: "say \"hi\""'),
    ("name: \"it's\"", r'name: "it\'s"'),
    (r'name: "tab\there"', r'name: "tab\there"'),
    (r'name: "back\\slash"', r'name: "back\\slash"'),
    ('name: "caf\u00e9"', r'name: "caf\303\251"'),   # UTF-8 bytes in octal (CEscape)
    (r'name: "\x01"', r'name: "\001"'),
    ('name: "a" "b"', 'name: "ab"'),
], ids=["double-quote", "single-quote", "tab", "backslash", "utf8", "control", "concatenated"])
def test_strings_as_c_escape_writes_them(written, canonical):
    assert format_prototxt(text=f"layer {{ {written} }}").splitlines()[1].strip() == canonical


@pytest.mark.parametrize("written,canonical", [
    ("num_output: 0x10", "num_output: 16"),
    ("num_output: 010", "num_output: 8"),
    ("bias_term: 0", "bias_term: false"),
    ("bias_term: True", "bias_term: true"),
    ("engine: 1", "engine: CAFFE"),
], ids=["hex", "octal", "bool-0", "bool-True", "enum-number"])
def test_other_values_canonical(written, canonical):
    text = f"layer {{ convolution_param {{ {written} }} }}"
    assert format_prototxt(text=text).splitlines()[2].strip() == canonical


def test_fmt_layout_and_comments():
    text = '''# header

# second block
name: "n"   # the net
layer { name: "a"  type: "ReLU"  # inline
  bottom: "x" top: "x"
  # left out: top: "y"
}  # end of a
# the end
'''
    assert format_prototxt(text=text) == '''# header

# second block
name: "n"  # the net
layer {
  name: "a"
  type: "ReLU"  # inline
  bottom: "x"
  top: "x"
  # left out: top: "y"
}  # end of a
# the end
'''


def test_comment_marks_inside_strings_are_text():
    text = 'layer { name: "a#b" type: "ReLU" }  # c\n'
    assert format_prototxt(text=text) == 'layer {\n  name: "a#b"\n  type: "ReLU"\n}  # c\n'


def test_format_prototxt_checks_its_arguments():
    with pytest.raises(TypeError, match="upgrade must be a bool"):
        format_prototxt(text="", upgrade="yes")
    with pytest.raises(TypeError, match="format_prototxt takes a path"):
        format_prototxt(3)


# ---------------------------------------------------------------------------------------------
# the whole corpus

def _text(rel: str) -> str:
    text = (CORPUS / rel).read_text()
    return text.replace("${NUM_LABELS}", "21") if rel in TEMPLATES else text


def _layers(net) -> list:
    return [(l.name, l.type, l.bottoms, l.tops, l.phase, msg_data(l.params)) for l in net.layers]


@pytest.mark.parametrize("rel", FILES)
def test_corpus_upgrade_gives_the_same_layers_and_shapes(rel):
    text = _text(rel)
    new = upgraded(text)
    fields = {e.name for e in parse_text(new).entries}
    assert not fields & {"layers", "input", "input_dim", "input_shape"}
    phase, stages, inputs = RUNS.get(rel, ("TRAIN" if rel in TEMPLATES and "_train" in rel else "TEST",
                                           (), {}))
    if rel in BROKEN:
        for t in (text, new):
            with pytest.raises(ProtosegError, match=f"bottom '{BROKEN[rel][0]}'"):
                load_net(text=t, phase=phase, stages=stages)
        return
    old_net = load_net(text=text, phase=phase, stages=stages)
    new_net = load_net(text=new, phase=phase, stages=stages)
    assert new_net.format == "V2"
    assert _layers(new_net) == _layers(old_net)
    old_shapes, new_shapes = infer_shapes(old_net, inputs), infer_shapes(new_net, inputs)
    assert new_shapes.blobs == old_shapes.blobs


@pytest.mark.parametrize("rel", FILES)
def test_corpus_fmt_is_idempotent_and_keeps_meaning_and_comments(rel):
    text = _text(rel)
    once = format_prototxt(text=text)
    assert format_prototxt(text=once) == once
    assert msg_data(bind(parse_text(once), "NetParameter")) == \
        msg_data(bind(parse_text(text), "NetParameter"))
    if '#' not in "".join(re.findall(r'"[^"\n]*"', text)):      # no '#' inside a string
        comments = sorted(c.rstrip() for c in re.findall(r"#[^\n]*", text))
        assert sorted(re.findall(r"#[^\n]*", once)) == comments


@pytest.mark.parametrize("rel", FILES)
def test_corpus_upgrade_is_stable(rel):
    new = upgraded(_text(rel))
    assert upgraded(new) == new


# ---------------------------------------------------------------------------------------------
# the commands

def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_upgrade_command_writes_the_file(capsys, tmp_path):
    out_path = tmp_path / "lenet_v2.prototxt"
    code, out, _ = run(capsys, "upgrade", LENET_V1, "-o", out_path)
    assert code == 0
    assert out == f"wrote {out_path}: V1 -> V2, 5 layers\n"
    written = out_path.read_text()
    assert written.startswith("# A LeNet-style")
    assert '    lr_mult: 2  # bias\n' in written
    assert '  # a ReLU used to follow here\n}' in written
    code, out, _ = run(capsys, "shapes", out_path, "--format", "json")
    assert code == 0 and '"prob"' in out


def test_upgrade_command_prints_without_output(capsys):
    code, out, _ = run(capsys, "upgrade", LENET_V1)
    assert code == 0 and out == format_prototxt(LENET_V1, upgrade=True)


def test_upgrade_refuses_to_overwrite_its_input(capsys, tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text(LENET_V1.read_text())
    code, _, err = run(capsys, "upgrade", path, "-o", path)
    assert code == 2 and "refusing to overwrite an input file" in err
    assert path.read_text() == LENET_V1.read_text()


def test_upgrade_in_place(capsys, tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text(LENET_V1.read_text())
    code, _, _ = run(capsys, "upgrade", path, "--in-place")
    assert code == 0 and path.read_text() == format_prototxt(LENET_V1, upgrade=True)


def test_fmt_in_place_then_unchanged(capsys, tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text('layer { name: "a" type: "ReLU" bottom: "x" top: "x" }  # one\n')
    assert run(capsys, "fmt", path, "--in-place")[:2] == (0, f"wrote {path}: 6 lines\n")
    first = path.read_text()
    assert first == 'layer {\n  name: "a"\n  type: "ReLU"\n  bottom: "x"\n  top: "x"\n}  # one\n'
    run(capsys, "fmt", path, "--in-place")
    assert path.read_text() == first


def test_comment_bytes_that_are_not_utf8_are_kept(capsys, tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_bytes(b'name: "n"  # caf\xe9 in Latin-1\n')
    assert run(capsys, "fmt", path, "-o", tmp_path / "out.prototxt")[0] == 0
    assert (tmp_path / "out.prototxt").read_bytes() == b'name: "n"  # caf\xe9 in Latin-1\n'


@pytest.mark.parametrize("command", ["fmt", "upgrade"])
def test_bad_prototxt_gives_a_located_error_and_no_file(command, capsys, tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer {\n  name: "a"\n  kernel_size 3\n}\n')
    out_path = tmp_path / "out.prototxt"
    code, _, err = run(capsys, command, bad, "-o", out_path)
    assert code == 2
    assert f"{bad}:3:15" in err and "expected ':'" in err
    assert not out_path.exists() and list(tmp_path.iterdir()) == [bad]


def test_unknown_field_error_names_the_layer(capsys, tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layers {\n  name: "c"\n  type: CONVOLUTION\n  kernelsize: 3\n}\n')
    code, _, err = run(capsys, "upgrade", bad)
    assert code == 2 and f"{bad}:4:3" in err and "kernelsize" in err and "'c'" in err


def test_output_folder_must_exist(capsys, tmp_path):
    code, _, err = run(capsys, "fmt", LENET_V1, "-o", tmp_path / "no" / "x.prototxt")
    assert code == 2 and "does not exist" in err


def test_output_and_in_place_exclude_each_other(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["fmt", str(LENET_V1), "-o", str(tmp_path / "x"), "--in-place"])
    assert e.value.code == 2


def test_fmt_and_upgrade_import_no_torch(tmp_path):
    code = ("import sys\nfrom protoseg.cli import main\n"
            f"main(['upgrade', {str(LENET_V1)!r}, '-o', {str(tmp_path / 'x.prototxt')!r}])\n"
            f"main(['fmt', {str(LENET_V1)!r}])\n"
            "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# ---------------------------------------------------------------------------------------------
# the reference Caffe reads the upgraded legacy nets to the same nets

def _legacy_cases():
    if not CORPUS.is_dir():
        return []
    from test_caffe_corpus import BUILDS
    legacy = {"layers", "input", "input_dim", "input_shape"}
    return [(rel, stages) for rel, stages in BUILDS
            if legacy & {e.name for e in parse_text(_text(rel)).entries}]


@pytest.fixture(scope="module")
def caffe_built():
    """{(rel, stages): (Caffe's Result for the original, for the upgraded text)}."""
    import dataclasses

    from test_caffe_corpus import _job
    jobs = {}
    for rel, stages in _legacy_cases():
        job = _job(rel, stages, forward=False)
        jobs[rel, stages] = (job, dataclasses.replace(job, id=job.id + "(upgraded)",
                                                      prototxt=upgraded(_text(rel))))
    results = caffe_ref.run([j for pair in jobs.values() for j in pair])
    return {case: (results[a.id], results[b.id]) for case, (a, b) in jobs.items()}


@pytest.mark.caffe
@caffe_ref.skip_unless_available()
@pytest.mark.parametrize("rel, stages", _legacy_cases(), ids=[r for r, _ in _legacy_cases()])
def test_caffe_builds_the_upgraded_net_as_the_original(rel, stages, caffe_built):
    original, new = (r.check() for r in caffe_built[rel, stages])
    assert new.layers == original.layers
    assert new.shapes == original.shapes
