"""Hostile input beyond the parser (issue 12): the API's argument types, paths that look like
text, carets on the exact token, Caffe's int limits, --input on train_val nets, output files
(transactions, modes, places that cannot be written), memory, and the CLI's contract (exit 0 /
2 / 1, stderr for diagnostics, --debug, --version). Each case failed before it was fixed."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import protoseg
from protoseg.caffemodel import write_caffemodel
from protoseg.cli import main
from protoseg.errors import GraphError, InputError, ResourceError, SchemaError, ShapeError
from protoseg.net import load_net
from protoseg.shapes import infer_shapes

ROOT = Path(__file__).resolve().parents[1]
FCN8S = str(ROOT / "prototxts" / "fcn8s.prototxt")
SMALL = ('name: "small"\n'
         'layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
         'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }\n')


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- the Python API checks its arguments (they used to be used as given) ------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.prototxt"
    path.write_text(SMALL)
    return path


@pytest.mark.parametrize("inputs, exc, words", [
    ({"data": (1, 3, 8.5, 8)}, TypeError, "must be a tuple of ints"),      # gave float shapes
    ({"data": (1, 3, True, 8)}, TypeError, "must be a tuple of ints"),     # True was a dim
    ({"data": (1, 3, 0, 8)}, ValueError, "between 1 and"),
    ({"data": ()}, ValueError, "one or more dimensions"),
    ({1: (1, 3, 8, 8)}, TypeError, "input names must be str"),
    ([("data", (1, 3, 8, 8))], TypeError, "inputs must be a dict"),
], ids=["float-dim", "bool-dim", "zero-dim", "no-dims", "int-name", "list"])
def test_infer_shapes_checks_inputs(small, inputs, exc, words):
    with pytest.raises(exc, match=words):
        infer_shapes(load_net(small), inputs)


@pytest.mark.parametrize("call, exc, words", [
    (lambda p: load_net(1), TypeError, "not int"),         # opened fd 1 and closed stdout
    (lambda p: load_net(0), TypeError, "not int"),         # read stdin
    (lambda p: load_net(p, stages="abc"), TypeError, "stages must be a list of str"),
    (lambda p: load_net(p, phase="DEPLOY"), ValueError, "phase must be 'TEST' or 'TRAIN'"),
    (lambda p: load_net(p, level="1"), TypeError, "level must be an int"),
    (lambda p: load_net(p, text=SMALL), TypeError, "not both"),
    (lambda p: infer_shapes(str(p)), TypeError, "takes a Net"),
    (lambda p: protoseg.plan_net(3.5), TypeError, "not float"),
    (lambda p: protoseg.plan_net(p, outputs=[1]), TypeError, "outputs must be a blob name"),
    (lambda p: protoseg.read_caffemodel(1), TypeError, "must be a str or os.PathLike"),
], ids=["load_net-fd-1", "load_net-fd-0", "stages-str", "phase", "level-str", "path-and-text",
        "infer-path", "plan-float", "outputs-ints", "caffemodel-int"])
def test_api_refuses_wrong_argument_types(small, call, exc, words):
    with pytest.raises(exc, match=words):
        call(small)


def test_load_net_of_an_int_leaves_stdout_open(small):
    with pytest.raises(TypeError):
        load_net(1)
    os.fstat(1)                 # still open


# --- paths are paths, text is text= (a path with "{" or a newline was parsed as text) ------------

@pytest.mark.parametrize("folder", ["exp_{1}", "two\nlines"], ids=["brace", "newline"])
def test_paths_that_look_like_text(tmp_path, folder, capsys):
    d = tmp_path / folder
    d.mkdir()
    (d / "net.prototxt").write_text(SMALL)
    assert infer_shapes(load_net(d / "net.prototxt")).blobs["conv"] == (1, 4, 6, 6)
    assert protoseg.plan_net(str(d / "net.prototxt")).class_name == "Small"
    code, out, err = run(capsys, "compile", d / "net.prototxt", "-o", tmp_path / "out")
    assert code == 0, err


def test_compile_net_takes_a_pathlike(small):
    import torch
    model = protoseg.compile_net(small)
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 6, 6)


# --- carets on the exact token ------------------------------------------------------------------

def _error(text, exc=Exception, inputs=None):
    with pytest.raises(exc) as info:
        infer_shapes(load_net(text=text, file="t.prototxt"), inputs)
    return info.value


HEAD = 'layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'


@pytest.mark.parametrize("body, where, words", [
    # bottom 1 is the unknown one: the caret on it (it was on bottom 0)
    ('layer { name: "e" type: "Eltwise" bottom: "data"\n  bottom: "nope" top: "e" }\n', "3:11",
     "bottom 'nope' (bottom 1)"),
    # top 1 reuses a name: the caret on top 1
    ('layer { name: "s" type: "Slice" bottom: "data" top: "a"\n  top: "data" slice_param { axis: 1 } }\n',
     "3:8", "top 'data' is already produced"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p"\n  pooling_param { pool: MAX kernel_size: 2 } }\n'
     'layer { name: "f" type: "Flatten" bottom: "p" top: "f"\n  flatten_param { axis: 7 } }\n', "5:19",
     "axis 7 is out of range"),
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
     '  convolution_param { num_output: 2 kernel_size: 1 kernel_size: 2 kernel_size: 3 } }\n', "3:37",
     "kernel_size has 3 values"),
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
     '  convolution_param { num_output: 2 kernel_size: 3 kernel_h: 3 kernel_w: 3 } }\n', "3:52",
     "give either kernel_size or kernel_h/kernel_w"),
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
     '  convolution_param { num_output: 2 kernel_h: 3 } }\n', "3:37", "kernel_h and kernel_w must be given together"),
], ids=["bottom-1", "top-1", "axis", "three-kernel-sizes", "kernel-size-and-h", "kernel-h-alone"])
def test_caret_on_the_field(body, where, words):
    err = _error(HEAD + body, (GraphError, ShapeError))
    assert f"t.prototxt:{where}:" in str(err) and words in str(err)


def test_input_dim_error_points_at_the_dim():
    err = _error('layer { name: "in" type: "Input" top: "x"\n'
                 '  input_param { shape { dim: 1 dim: -5 dim: 4 } } }\n', ShapeError)
    assert "t.prototxt:2:37: layer 'in' (Input): dim -5: a blob dimension must be between 1" in str(err)
    assert "bottoms )" not in str(err)


# --- Caffe's int limits -------------------------------------------------------------------------

@pytest.mark.parametrize("dims", ["dim: 1 dim: 3 dim: 3000000000 dim: 1",
                                  "dim: 1 dim: 3 dim: 99999999999999999 dim: 1"],
                         ids=["dim-over-int-max", "dim-huge"])
def test_dims_past_int_max_are_refused(dims):
    # BlobShape.dim is int64, but Blob::Reshape reads it into a C int: refused where it is read
    err = _error(f'layer {{ name: "in" type: "Input" top: "x" input_param {{ shape {{ {dims} }} }} }}\n',
                 SchemaError)
    assert "Caffe reads dim into a C int" in str(err)


def test_count_past_int_max_is_refused_with_exact_integers():
    err = _error('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 64 dim: 65536 dim: 65536 } } }\n',
                 ShapeError)
    assert "274,877,906,944 elements" in str(err) and "INT_MAX = 2,147,483,647" in str(err)
    assert "e+" not in str(err)                 # no float artefacts


def test_input_count_past_int_max(small):
    with pytest.raises(InputError, match="30,000,000,000 elements"):
        infer_shapes(load_net(small), {"data": (1, 3, 100000, 100000)})


# --- --input on a train_val net: the label keeps the data layer's batch ---------------------------

TRAIN_VAL = '''
layer { name: "d" type: "Data" top: "data" top: "label" data_param { source: "db" batch_size: 50 } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 10 } }
layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" }
'''


def test_input_batch_change_hints_the_other_top():
    err = _error(TRAIN_VAL, ShapeError, inputs={"data": (10, 3, 8, 8)})
    assert err.hint == ("--input gave 'data' of layer 'd' batch 10, but its top 'label' keeps the "
                        "layer's batch 50: also give --input label=10")


# --- output files -----------------------------------------------------------------------------

def test_outputs_get_the_mode_open_would_give(tmp_path, small, capsys):
    assert run(capsys, "compile", small, "-o", tmp_path)[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "small.py").st_mode) == 0o666 & ~umask


def test_a_net_named_torch_does_not_shadow_torch(tmp_path, capsys):
    src = tmp_path / "n.prototxt"
    src.write_text(SMALL.replace('name: "small"', 'name: "torch"'))
    assert run(capsys, "compile", src, "-o", tmp_path)[0] == 0
    assert (tmp_path / "torch_net.py").exists() and not (tmp_path / "torch.py").exists()


@pytest.mark.parametrize("argv", [
    ["compile", FCN8S, "-o", "/sys/protoseg-test"],
    ["compile", FCN8S, "-o", "/proc/self/protoseg-test"],
], ids=["sys", "proc"])
def test_unwritable_places_are_user_errors(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2 and "protoseg: error:" in err and "Traceback" not in err


@pytest.fixture
def wide(tmp_path):
    """SMALL with 64 outputs: its module file is ~1.5 KB, its weights ~7 KB."""
    path = tmp_path / "wide.prototxt"
    path.write_text(SMALL.replace("num_output: 4", "num_output: 64"))
    return path


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "wide.caffemodel"
    rng = np.random.default_rng(0)
    write_caffemodel(path, [("conv", "Convolution", [rng.standard_normal((64, 3, 3, 3)).astype(np.float32),
                                                    np.zeros(64, np.float32)])])
    return path


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # writes past the limit fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from protoseg.cli import main
sys.exit(main({argv!r}))
"""


def test_a_full_disk_writes_neither_file(tmp_path, wide, weights):
    # the module file fits under the limit, the weights do not: before, the .py stayed alone
    # and the command died with a SafetensorError traceback
    out = tmp_path / "out"
    code = FULL_DISK.format(limit=4000, argv=["compile", str(wide), "--weights", str(weights), "-o", str(out)])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert "cannot write" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(os.listdir(out)) == []


def test_port_on_a_full_disk(tmp_path, wide, weights):
    code = FULL_DISK.format(limit=4000, argv=["port", str(weights), "--prototxt", str(wide), "-o",
                                              str(tmp_path / "w.safetensors")])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["wide.caffemodel", "wide.prototxt"]


# --- memory: estimated before anything is allocated ----------------------------------------------

def test_check_refuses_what_does_not_fit(capsys):
    code, _, err = run(capsys, "compile", FCN8S, "--check", "--input", "data=1,3,64,64", "--max-memory", "100M")
    assert code == 2
    assert "needs about 546.6 MiB (parameters 513.0 MiB" in err and "more than the 100.0 MiB allowed" in err


def test_plan_memory_counts_parameters_and_the_peak():
    # FCN-8s: 134,489,759 float32 parameters; at 500x500 the peak is at conv1_2, where
    # conv1_1's ReLU output (1x64x698x698, in place) and conv1_2's own output are alive, with
    # the input: 2 * 64*698*698 + 3*500*500 floats
    params, peak, at = protoseg.plan_net(FCN8S).memory()
    assert params == 134_489_759 * 4
    assert (peak, at) == ((2 * 64 * 698 * 698 + 3 * 500 * 500) * 4, "conv1_2")


def test_compile_net_refuses_parameters_past_max_memory(small):
    with pytest.raises(ResourceError, match="more than the 100 B allowed"):
        protoseg.compile_net(small, max_memory=100)


# --- files that are not files -------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["inspect", "/dev/zero"], ["inspect", "/dev/null"]],
                         ids=["inspect-dev-zero", "inspect-dev-null"])
def test_devices_are_not_caffemodels(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2 and "not a regular file" in err


def test_inspect_a_fifo_does_not_block(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "inspect", fifo)
    assert code == 2 and "not a regular file" in err


# --- the CLI contract ----------------------------------------------------------------------------

def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"protoseg {protoseg.__version__}"


def test_bad_input_exit_2_on_stderr(capsys, tmp_path):
    code, out, err = run(capsys, "shapes", tmp_path / "missing.prototxt")
    assert code == 2 and out == "" and err.startswith("protoseg: error:")


def test_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["shapes"])
    assert info.value.code == 2


BUG = textwrap.dedent("""
    import sys
    import protoseg.cli.shapes as shapes
    def broken(args):
        raise RuntimeError("simulated bug")
    shapes.run = broken
    from protoseg.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_bug_exits_1_and_asks_for_a_report(debug):
    argv = (["--debug"] if debug else []) + ["shapes", FCN8S]
    proc = subprocess.run([sys.executable, "-c", BUG, *argv], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1 and proc.stdout == ""
    assert "simulated bug" in proc.stderr
    if debug:
        assert "Traceback" in proc.stderr
    else:
        assert "Traceback" not in proc.stderr and "please report it" in proc.stderr


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "protoseg", "--debug", "shapes", str(tmp_path / "missing")],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ProtosegError" in proc.stderr


def test_wide_names_line_up(tmp_path, capsys):
    src = tmp_path / "cjk.prototxt"
    src.write_text(HEAD + 'layer { name: "卷积层" type: "Convolution" bottom: "data" top: "c" '
                          'convolution_param { num_output: 2 kernel_size: 3 } }\n', encoding="utf-8")
    code, out, _ = run(capsys, "shapes", src)
    lines = out.splitlines()
    # the type column starts at the same terminal column on every row (CJK characters take 2)
    from protoseg.cli.output import width
    starts = {width(line[:line.index(t)]) for line, t in zip(lines[2:], ("Input", "Convolution"))}
    assert code == 0 and len(starts) == 1


# --- a 100,000-character name is named, not printed (found by fuzzing the parser) -------------

LONG = "b" * 100_000
HEAD = 'input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'


@pytest.mark.parametrize("text, expected", [
    pytest.param(HEAD + f'layer {{ name: "c" type: "ReLU" bottom: "{LONG}" top: "x" }}\n',
                 f"bottom '{'b' * 80}…' (bottom 0) is not produced", id="unknown-bottom"),
    pytest.param(HEAD + f'layer {{ name: "c" type: "{LONG}" bottom: "data" top: "x" }}\n',
                 f"unknown layer type '{'b' * 80}…'", id="unknown-type"),
    pytest.param(HEAD + f'layer {{ name: "c" type: "ReLU" bottom: "data" top: "{LONG}" }}\n'
                 f'layer {{ name: "d" type: "ReLU" bottom: "data" top: "{LONG}" }}\n',
                 f"top '{'b' * 80}…' is already produced by layer 'c'", id="top-twice"),
])
def test_long_names_are_clipped_in_messages(text, expected):
    with pytest.raises(protoseg.errors.ProtosegError) as e:
        infer_shapes(load_net(text=text))
    assert expected in str(e.value)
    assert len(str(e.value)) < 1000
