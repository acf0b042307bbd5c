"""Fuzzing the weights path: damaged caffemodels (flipped bytes, truncation, edited length
fields, inserted bytes) through the reader, the strict matching to a net and `protoseg
inspect`/`port` in a subprocess. Only a ProtosegError may come out; nothing may hang or run away
with memory (a length field claiming gigabytes is checked against the file before anything is
allocated). A short seeded run in the default suite; bench/fuzz.py runs the long campaign
(docs/robustness.md)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import caffe_pb as pb
from protoseg.caffemodel import read_caffemodel, write_caffemodel
from protoseg.errors import ProtosegError
from protoseg.plan import plan_net
from protoseg.weights import state_dict

ROOT = Path(__file__).resolve().parents[1]
NET = """name: "f"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" }
layer { name: "sc" type: "Scale" bottom: "c" top: "c" scale_param { bias_term: true } }
layer { name: "fc" type: "InnerProduct" bottom: "c" top: "fc" inner_product_param { num_output: 2 } }
"""


def _blobs():
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return [("conv", "Convolution", [f(4, 3, 3, 3), f(4)]),
            ("bn", "BatchNorm", [f(4), np.abs(f(4)), np.ones(1, np.float32)]),
            ("sc", "Scale", [f(4), f(4)]), ("fc", "InnerProduct", [f(2, 64), f(2)])]


def _v2_bytes(tmp: Path) -> bytes:
    write_caffemodel(tmp / "v2.caffemodel", _blobs(), name="f")
    return (tmp / "v2.caffemodel").read_bytes()


def _v1_bytes() -> bytes:
    net = pb.UNPACKED.NetParameter(name="f")        # legacy layout, unpacked floats
    for name, _, arrays in _blobs():
        layer = net.layers.add(name=name)
        for a in arrays:        # legacy num/channels/height/width: right-aligned in 4 axes
            layer.blobs.append(pb.blob(pb.UNPACKED, a.reshape((1,) * (4 - a.ndim) + a.shape), legacy=True))
    return net.SerializeToString()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seeds")
    return {"v2": _v2_bytes(tmp), "v1": _v1_bytes()}


@pytest.fixture(scope="module")
def plan():
    return plan_net(text=NET)


def _varint_positions(data: bytes) -> list:
    """Offsets that start a varint after a length-delimited tag (wire type 2) at the top level
    of messages: where an edited length does the most damage."""
    return [i + 1 for i in range(len(data) - 1) if data[i] & 7 == 2 and data[i] >> 3 in (1, 2, 5, 7, 100)]


@st.composite
def damaged(draw, base: bytes):
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "length", "insert", "delete"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[i] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[i:]
        elif kind == "length":
            positions = _varint_positions(bytes(data)) or [i]
            j = draw(st.sampled_from(positions))
            value = draw(st.sampled_from([0, 1, 127, 128, 2**21, 2**31 - 1, 2**32 + 5, 2**63]))
            out = bytearray()
            while True:
                b, value = value & 0x7F, value >> 7
                out.append(b | (0x80 if value else 0))
                if not value:
                    break
            data[j:j + 1] = out
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[i:i + draw(st.integers(1, 16))]
    return bytes(data)


def _read_and_match(path: Path, plan) -> None:
    try:
        model = read_caffemodel(path)
    except ProtosegError:
        return
    try:
        state_dict(plan, model, strict=True)
    except ProtosegError:
        pass


FUZZ = settings(max_examples=int(os.environ.get("PROTOSEG_FUZZ_EXAMPLES", 150)), deadline=5000,
                derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                         HealthCheck.too_slow])


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_damaged_caffemodels_give_clear_errors(layout, seeds, plan, tmp_path):
    @FUZZ
    @given(data=damaged(seeds[layout]))
    def check(data):
        path = tmp_path / "m.caffemodel"
        path.write_bytes(data)
        _read_and_match(path, plan)
    check()


def test_a_partial_unpacked_record_is_an_error_not_a_loop(tmp_path):
    # found by the fuzzer: an old-style (unpacked) blob whose message ends 3 bytes into a float
    # record made the reader loop forever, appending empty arrays until memory ran out
    record = b"\x2d" + np.float32(1.5).tobytes()                 # field 5, fixed32
    blob = record + record[:4]                                    # one record and 3/4 of another
    layer = b"\x22\x01x" + b"\x32" + bytes([len(blob)]) + blob  # V1 layer: name "x", blobs
    path = tmp_path / "m.caffemodel"
    path.write_bytes(b"\x12" + bytes([len(layer)]) + layer + b"\x0a\x01n")   # layers, then name
    with pytest.raises(ProtosegError, match="field 5 runs past the end of its message"):
        read_caffemodel(path)


@pytest.mark.parametrize("case", ["empty-name-bytes", "invalid-utf8-name", "huge-length", "zero-bytes"])
def test_cli_on_damaged_files_exits_cleanly(case, seeds, tmp_path):
    # the command line itself (printing names, exit codes), in a subprocess
    data = {
        "empty-name-bytes": seeds["v2"].replace(b"conv", b"\x00\x00\x00\x00"),
        "invalid-utf8-name": seeds["v2"].replace(b"conv", b"\xff\xfe\xd8\x00"),
        "huge-length": seeds["v2"][:3] + b"\xff\xff\xff\xff\x0f" + seeds["v2"][4:],
        "zero-bytes": b"\x00" * 64,
    }[case]
    path = tmp_path / "m.caffemodel"
    path.write_bytes(data)
    prototxt = tmp_path / "f.prototxt"
    prototxt.write_text(NET)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "ascii"}
    for argv in (["inspect", str(path)], ["port", str(path), "--prototxt", str(prototxt), "-o",
                                          str(tmp_path / "w.safetensors")]):
        proc = subprocess.run([sys.executable, "-m", "protoseg", *argv], capture_output=True,
                              text=True, env=env, timeout=60)
        assert proc.returncode in (0, 2), proc.stderr
        assert "Traceback" not in proc.stderr
