"""The contract every registered layer type keeps: shape-rule cases, numeric cases (or a reason
to have none), a row in docs/layers.md; and what the structure promises: the plan and the
standalone-file backend need no torch, names avoid torch's attributes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from protoseg.cli.layers import layer_types
from protoseg.layers import builtin

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
TYPES = sorted(builtin())


def _mentions(type_: str, files) -> bool:
    """Is the type named as a string ("Type" or 'Type', also inside `type: "Type"`) in the files?"""
    pattern = re.compile(r"""["']""" + re.escape(type_) + r"""\\?["']""")
    return any(pattern.search(f.read_text()) for f in files)


@pytest.mark.parametrize("type_", TYPES)
def test_every_type_has_shape_rule_cases(type_):
    assert _mentions(type_, [TESTS / "test_shape_rules.py"]), \
        f"{type_}: add hand-derived cases to tests/test_shape_rules.py"


def _numeric_files():
    return [TESTS / "test_numerics.py", TESTS / "test_opencv.py", *TESTS.glob("test_caffe_*.py")]


@pytest.mark.parametrize("type_", [t for t in TYPES if builtin()[t].lower is not None])
def test_every_compiled_type_has_numeric_cases(type_):
    assert _mentions(type_, _numeric_files()), \
        f"{type_}: add numeric cases (tests/test_numerics.py, test_opencv.py or a reference-Caffe test)"


@pytest.mark.parametrize("type_", [t for t in TYPES if builtin()[t].lower is None])
def test_every_shape_only_type_says_why(type_):
    # no lowering: a data layer (its tops are the module's inputs), a layer with no inference
    # meaning (left out), or one whose spec says why it is not compiled; anything else would be
    # a type that silently cannot compile
    row = next(t for t in layer_types() if t["type"] == type_)
    assert row["compile"] in ("module input", "left out (no inference meaning)",
                              builtin()[type_].uncompiled or None)


# a type without one shows '?' in `protoseg shapes --cost`: a Python layer's cost is unknowable
# (it runs code of its own), and so is CRF-RNN's (its lattice depends on the image's colours)
UNKNOWN_COST = {"Python", "MultiStageMeanfield"}


@pytest.mark.parametrize("type_", [t for t in TYPES if t not in UNKNOWN_COST])
def test_every_type_has_a_cost_rule(type_):
    assert builtin()[type_].cost is not None, \
        f"{type_}: give its LayerSpec a `cost` (protoseg.layers.Cost; `free` when it has none)"


def test_docs_layers_is_current():
    proc = subprocess.run([sys.executable, "-m", "protoseg", "layers", "--format", "markdown"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    assert (ROOT / "docs" / "layers.md").read_text() == proc.stdout, \
        "docs/layers.md is stale: run `protoseg layers --format markdown > docs/layers.md`"


def test_torch_attribute_names_are_all_reserved():
    # in a fresh interpreter: torch.compile, run by other tests, adds attributes to nn.Module
    code = ("import torch.fx as fx, torch.nn as nn; print(' '.join(n for n in set(dir(fx.GraphModule)) "
            "| set(dir(nn.Module)) if not (n.startswith('__') and n.endswith('__'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from protoseg.plan import TORCH_ATTRS
    names = set(proc.stdout.split())
    assert names <= TORCH_ATTRS, f"add to protoseg.plan.TORCH_ATTRS: {sorted(names - TORCH_ATTRS)}"


# torch made unimportable: a meta path finder that refuses it
NO_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked for this test")
sys.meta_path.insert(0, _NoTorch())
"""


@pytest.mark.parametrize("argv", [
    ["compile", "prototxts/fcn8s.prototxt", "--print-code"],
    ["compile", "prototxts/fcn8s.prototxt", "-o", "{tmp}"],
    ["shapes", "prototxts/fcn8s.prototxt", "--explain"],
    ["shapes", "prototxts/fcn8s.prototxt", "--cost", "--rf"],
    ["check", "prototxts/fcn8s.prototxt"],
    ["sizes", "prototxts/fcn8s.prototxt", "--range", "1:64"],
    ["layers"],
], ids=["compile-print-code", "compile-o", "shapes", "shapes-cost-rf", "check", "sizes", "layers"])
def test_runs_with_torch_unimportable(argv, tmp_path):
    argv = [a.format(tmp=tmp_path) for a in argv]
    code = NO_TORCH + f"from protoseg.cli import main\nsys.exit(main({argv!r}))\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr


def test_plan_imports_no_torch():
    code = NO_TORCH + ("import protoseg\n"
                       "plan = protoseg.plan_net('prototxts/fcn8s.prototxt', {'data': (1, 3, 64, 64)})\n"
                       "assert plan.steps[-1].call.code() == 'CaffeCrop(axis=2, offset=(31, 31))'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
