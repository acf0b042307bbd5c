"""Run nets in the reference Caffe (built by tools/reference_caffe/build.sh) from the tests.

pycaffe is built for Debian's /usr/bin/python3 (its numpy 1.24), and a Caffe error aborts the
whole process, so nets run in a child process: this file is also the child's script. The parent
side (`run`) needs only the standard library and numpy; the child side (`_child_main`) imports
caffe and Caffe's own protobuf messages (caffe_pb2).

A `Job` is one net: prototxt text (or a path), input arrays, and what to do with it:

* `weights`: a caffemodel for Caffe to load (`Net(..., weights=)`);
* `deploy`: make a deploy net of it first (with Caffe's protobuf messages): every layer without
  bottoms (Input, Data, ImageData, HDF5Data, Python data layers, ...) is removed and its tops
  become net inputs (`input:` + `input_shape`) of the shapes of the given arrays; a top with no
  array given (a label) is dropped with every layer that reads it, transitively, and so are
  the losses and Accuracy: what deploy files are. DetectionOutput's save_output_param (the
  result files it writes) goes too;
* `fill_seed`: random weights that Caffe itself makes: gaussian fillers are injected into every
  layer that has fillers (msra for weights, N(0, 0.1) for biases, N(1, 0.2) for Scale / Normalize
  / BN slopes, N(0.25, 0.1) for PReLU) and Caffe fills them at construction (caffe.set_random_seed);
  the running statistics no filler touches (BatchNorm mean / variance / factor, BN mean /
  variance) get seeded random values; `scale_weights` {layer: factor} then multiplies the first
  blob of those layers (an SSD net's class-score heads, so that detections pass its confidence
  threshold); then `net.save(save)` writes the caffemodel, and with `save_v1` the same blobs are
  also written in the legacy V1 `layers` form (see `_write_v1`).

The result (`Result`) has the text Caffe ran, every layer (name, type, bottoms, tops), every
blob's shape, the data of the output blobs (or of every blob with `all_blobs`), the parameter
blobs with `params`, and Caffe's stderr when it aborted or raised. A job that aborts the child is
reported as such and the jobs after it run in a fresh child.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PYTHON = "/usr/bin/python3"         # Debian's: the interpreter _caffe.so is compiled against
CAFFE_HOME = Path(os.environ.get("PROTOSEG_CAFFE_HOME")
                  or Path.home() / ".cache" / "protoseg" / "reference-caffe")
BUILD_HINT = "run tools/reference_caffe/build.sh"
MARK = "@@protoseg-caffe-job "       # the child writes this + the job index to stderr before each job


# ---------------------------------------------------------------------------------------------
# parent side


@dataclass
class Job:
    id: str
    prototxt: str                   # the text, or a path
    inputs: dict = field(default_factory=dict)      # {blob: array}
    weights: str | None = None
    deploy: bool = False
    fill_seed: int | None = None
    scale_weights: dict = field(default_factory=dict)     # {layer: factor}, after the fill
    save: str | None = None
    save_v1: str | None = None
    stages: tuple = ()
    forward: bool = True            # False: build the net only (shapes, no data)
    all_blobs: bool = False
    params: bool = False


@dataclass
class Result:
    id: str
    error: str | None = None        # Caffe's own message (stderr) when it aborted or raised
    prototxt: str = ""              # the text Caffe ran
    layers: list = field(default_factory=list)      # [(name, type, bottoms, tops)] as Caffe built them
    shapes: dict = field(default_factory=dict)      # {blob: shape} as set up, before forward
    inputs: list = field(default_factory=list)      # net.inputs
    outputs: list = field(default_factory=list)     # net.outputs
    data: dict = field(default_factory=dict)        # {blob: array}: the outputs, or every blob
    params: dict = field(default_factory=dict)      # {layer: [arrays]}

    def check(self) -> "Result":
        if self.error is not None:
            raise CaffeError(f"Caffe failed on {self.id!r}:\n{self.error}")
        return self

    @property
    def user_layers(self) -> list:
        """`layers` without the Split layers Caffe inserts where a blob has several readers
        (insert_splits.cpp names them `<blob>_<layer>_<i>_split`, tops `..._split_<k>`)."""
        return [ly for ly in self.layers
                if not (ly[1] == "Split" and ly[0].endswith("_split")
                        and all(t == f"{ly[0]}_{k}" for k, t in enumerate(ly[3])))]


class CaffeError(AssertionError):
    """Caffe aborted or raised on a net; the message carries Caffe's stderr."""


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """Why the reference Caffe cannot run here, or None when it can."""
    done = CAFFE_HOME / "BUILT"
    if not done.is_file():
        return f"the reference Caffe is not built (no {done}): {BUILD_HINT}"
    if not os.access(PYTHON, os.X_OK):
        return f"{PYTHON} (Debian's python3, which pycaffe is built for) is missing: {BUILD_HINT}"
    p = subprocess.run([PYTHON, "-c", "import caffe"], env=_env(), capture_output=True, text=True)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"the reference Caffe in {CAFFE_HOME} does not import ({last}): {BUILD_HINT}"
    return None


def skip_unless_available():
    """A pytest skipif mark for the tests that run Caffe (the check runs once per session)."""
    import pytest

    reason = unavailable_reason()
    return pytest.mark.skipif(reason is not None, reason=str(reason))


def _env() -> dict:
    """The child's environment: none of this interpreter's PYTHON* settings (a venv's path or
    home would break Debian's python3), pycaffe's folder on PYTHONPATH, glog quieter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = CAFFE_HOME / "BUILT"
    env["PYTHONPATH"] = done.read_text().strip() if done.is_file() else ""
    env["GLOG_minloglevel"] = "1"       # warnings and errors only
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def run(jobs, timeout: float = 900) -> dict:
    """Run `jobs` (a list of Job) in as few Caffe processes as the aborts allow; {id: Result}."""
    jobs = list(jobs)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="protoseg-caffe-") as tmp:
        tmp = Path(tmp)
        for i, job in enumerate(jobs):
            text = job.prototxt if ("\n" in job.prototxt or "{" in job.prototxt) \
                else Path(job.prototxt).read_text()
            (tmp / f"{i}.prototxt").write_text(text)
            np.savez(tmp / f"{i}.in.npz", **{k: np.asarray(v, np.float32) for k, v in job.inputs.items()})
        start = 0
        while start < len(jobs):
            spec = [{**{k: v for k, v in vars(j).items() if k not in ("prototxt", "inputs")}, "index": i}
                    for i, j in enumerate(jobs) if i >= start]
            (tmp / "jobs.json").write_text(json.dumps(spec))
            try:
                p = subprocess.run([PYTHON, __file__, str(tmp)], env=_env(), capture_output=True,
                                   text=True, timeout=timeout)
                stderr, rc = p.stderr, p.returncode
            except subprocess.TimeoutExpired as e:
                stderr = (e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr) or ""
                stderr += f"\n(timed out after {timeout:.0f} s)"
                rc = None
            done = start
            while done < len(jobs) and (tmp / f"{done}.json").is_file():
                results[jobs[done].id] = _load(jobs[done].id, tmp, done)
                done += 1
            if done == len(jobs):
                break
            if rc == 0:         # pragma: no cover - the child writes every result it returns 0 for
                raise RuntimeError(f"the Caffe child exited without a result for job {done}:\n{stderr}")
            how = "timed out" if rc is None else f"aborted (exit status {rc})"
            results[jobs[done].id] = Result(jobs[done].id, error=f"Caffe {how}:\n{_job_stderr(stderr, done)}")
            start = done + 1
    return results


def run_one(job: Job, timeout: float = 900) -> Result:
    return run([job], timeout)[job.id]


def assert_same_net(result: Result, shapes) -> None:
    """protoseg's `shapes` (protoseg.shapes.Shapes of the text Caffe ran) has Caffe's layers in
    order (name, type, tops; without the Splits Caffe inserts) and every blob's shape."""
    ours = [(ls.layer.name, ls.layer.type, list(ls.layer.tops)) for ls in shapes.layers]
    caffe = [(name, type_, list(tops)) for name, type_, _, tops in result.user_layers]
    assert ours == caffe, "layers differ (protoseg, Caffe): " + "; ".join(
        f"{a} != {b}" for a, b in zip(ours + [None] * len(caffe), caffe + [None] * len(ours)) if a != b)
    tops = {t for *_, ts in caffe for t in ts}
    ours = {b: tuple(s) for b, s in shapes.blobs.items()}
    caffe = {b: s for b, s in result.shapes.items() if b in tops}
    assert ours == caffe, "blob shapes differ (protoseg, Caffe): " + "; ".join(
        f"{b}: {ours.get(b)} != {caffe.get(b)}" for b in {**ours, **caffe} if ours.get(b) != caffe.get(b))


def compare(got, want, what: str, rel: float, exact: bool = False, atol: float = 0.0) -> float:
    """protoseg's `got` against Caffe's `want`: the same shape, the same non-finite values (NaN,
    inf) where Caffe has them, and the finite ones bit for bit (`exact`) or with
    max|got - want| <= rel * max|want| + atol. Returns max|got - want| / max|want|."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != Caffe's {want.shape}"
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite], err_msg=f"{what}: non-finite values")
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=f"{what} (Caffe's, bit for bit)")
    if not finite.any():
        return 0.0
    ref = float(np.abs(want[finite]).max())
    diff = float(np.abs(got[finite].astype(np.float64) - want[finite]).max())
    assert np.isfinite(got[finite]).all(), f"{what}: non-finite values where Caffe's are finite"
    assert diff <= rel * ref + atol, (f"{what}: max|diff| {diff:.3e} > {rel:g} * max|Caffe| {ref:.3e} + {atol:g} "
                                      f"(relative {diff / ref if ref else math.inf:.3e})")
    return diff / ref if ref else 0.0


def compare_detections(got, want, what: str, rel: float, exact_scores: bool = False) -> float:
    """A DetectionOutput top (1, 1, N, 7) against Caffe's: the same detections in the same order
    (image and label bit for bit), the scores bit for bit with `exact_scores` (they are copied
    from the input) else within `rel`, the boxes within `rel` (glibc's expf and the correctly
    rounded exp protoseg uses differ in the last bit for about 1 value in 1600). Returns the
    boxes' max|got - want| / max|want|."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: {got.shape} detections, Caffe {want.shape}"
    np.testing.assert_array_equal(got[..., :2], want[..., :2], err_msg=f"{what}: image and label, in order")
    compare(got[..., 2], want[..., 2], f"{what}: scores", rel, exact_scores)
    return compare(got[..., 3:], want[..., 3:], f"{what}: boxes", rel)


def _job_stderr(stderr: str, index: int) -> str:
    """The part of the child's stderr written while job `index` ran."""
    mark = f"{MARK}{index}\n"
    return stderr.split(mark, 1)[1].strip() if mark in stderr else stderr.strip()


def _load(job_id: str, tmp: Path, i: int) -> Result:
    meta = json.loads((tmp / f"{i}.json").read_text())
    if meta.get("error"):
        return Result(job_id, error=meta["error"])
    r = Result(job_id, prototxt=meta["prototxt"], inputs=meta["inputs"], outputs=meta["outputs"],
               layers=[tuple(ly) for ly in meta["layers"]],
               shapes={k: tuple(v) for k, v in meta["shapes"].items()})
    with np.load(tmp / f"{i}.out.npz") as z:
        for key in z.files:
            kind, name = key.split("/", 1)
            if kind == "blob":
                r.data[name] = z[key]
            else:
                layer, _, j = name.rpartition("/")
                r.params.setdefault(layer, []).append((int(j), z[key]))
    r.params = {k: [a for _, a in sorted(v, key=lambda t: t[0])] for k, v in r.params.items()}
    return r


# ---------------------------------------------------------------------------------------------
# child side: runs under /usr/bin/python3 with pycaffe on PYTHONPATH

# the parameter message holding a layer's fillers, by V2 type / V1 enum name / V0 type
_FILLED = {"Convolution": "convolution_param", "Deconvolution": "convolution_param",
           "InnerProduct": "inner_product_param", "Embed": "embed_param", "Scale": "scale_param",
           "Bias": "bias_param", "PReLU": "prelu_param", "Normalize": "norm_param", "BN": "bn_param",
           "CONVOLUTION": "convolution_param", "DECONVOLUTION": "convolution_param",
           "INNER_PRODUCT": "inner_product_param"}
_V0_FILLED = {"conv", "innerproduct"}


def _filler(f, layer_type: str, name: str) -> None:
    """Set FillerParameter `f` (field `name` of a `layer_type` layer) to a random filler."""
    f.Clear()
    if name == "weight_filler":
        f.type = "msra"                 # gaussian, std sqrt(2 / fan_in)
    elif name == "bias_filler":
        f.type, f.std = "gaussian", 0.1
    elif layer_type == "PReLU":
        f.type, f.mean, f.std = "gaussian", 0.25, 0.1
    else:                               # Scale / Bias filler, Normalize scale, BN slope
        f.type, f.mean, f.std = "gaussian", 1.0, 0.2


def _inject_fillers(net_param) -> None:
    from caffe.proto import caffe_pb2

    def fill_message(msg, layer_type):
        for fd in msg.DESCRIPTOR.fields:
            if fd.message_type is caffe_pb2.FillerParameter.DESCRIPTOR:
                _filler(getattr(msg, fd.name), layer_type, fd.name)

    for layer in net_param.layer:
        if layer.type in _FILLED:
            fill_message(getattr(layer, _FILLED[layer.type]), layer.type)
    for layer in net_param.layers:
        if layer.HasField("layer"):                 # V0: the fillers are on the V0 layer itself
            if layer.layer.type in _V0_FILLED:
                fill_message(layer.layer, layer.layer.type)
            continue
        type_name = caffe_pb2.V1LayerParameter.LayerType.Name(layer.type)
        if type_name in _FILLED:
            fill_message(getattr(layer, _FILLED[type_name]), type_name)


def _fill_statistics(net, rng) -> None:
    """Seeded random running statistics (no filler fills them: Caffe sets them to 0 / 1)."""
    for name, layer in zip(net._layer_names, net.layers):
        blobs = layer.blobs
        if layer.type == "BatchNorm":               # mean, variance, scale factor
            blobs[0].data[...] = rng.normal(0, 0.5, blobs[0].data.shape)
            blobs[1].data[...] = rng.uniform(0.5, 2.0, blobs[1].data.shape)
            blobs[2].data[...] = rng.uniform(0.5, 2.0, blobs[2].data.shape)
        elif layer.type == "BN" and len(blobs) == 4:    # slope, bias, mean, variance
            blobs[2].data[...] = rng.normal(0, 0.5, blobs[2].data.shape)
            blobs[3].data[...] = rng.uniform(0.5, 2.0, blobs[3].data.shape)


def _layer_blocks(text: str) -> list:
    """(start, end) of every top-level `layer { }` / `layers { }` block of a prototxt, in order
    (braces in strings and # comments do not count)."""
    blocks, depth, word, start, i = [], 0, None, None, 0
    while i < len(text):
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if c in "\"'":
            i += 1
            while i < len(text) and text[i] != c:
                i += 2 if text[i] == "\\" else 1
        elif depth == 0 and (c.isalpha() or c == "_"):
            m = re.compile(r"\w+").match(text, i)
            word = (i, m.group())
            i = m.end()
            continue
        elif c == "{":
            if depth == 0 and word and word[1] in ("layer", "layers"):
                start = word[0]
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and start is not None:
                blocks.append((start, i + 1))
                start = None
        elif depth == 0 and c not in " \t\r\n:":
            word = None
        i += 1
    return blocks


def _is_loss(layer, caffe_pb2) -> bool:
    """A loss or Accuracy layer (V2 type string, V1 enum or V0 type): no part of a deploy net."""
    if isinstance(layer, caffe_pb2.LayerParameter):
        kind = layer.type
    elif layer.HasField("layer"):
        kind = layer.layer.type
    else:
        kind = caffe_pb2.V1LayerParameter.LayerType.Name(layer.type)
    return "loss" in kind.lower() or kind.lower() == "accuracy"


def _deploy_text(text: str, shapes: dict):
    """The net as a deploy net: the layers without bottoms (data layers) are cut out of the text
    before Caffe's messages parse it strictly (their fork-only fields, e.g. SegNet's
    dense_image_data_param, are no concern of the net), their tops become net inputs of `shapes`,
    and a top with no shape given (a label) is dropped with every layer that reads it,
    transitively, and so are the loss and Accuracy layers (an autoencoder's loss reads no label).
    Unknown fields in the kept layers still fail, as they do in Caffe."""
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    lenient = caffe_pb2.NetParameter()
    text_format.Merge(text, lenient, allow_unknown_field=True)
    layers = lenient.layer or lenient.layers
    blocks = _layer_blocks(text)
    if len(blocks) != len(layers):
        raise ValueError(f"found {len(blocks)} layer blocks in the text for {len(layers)} layers")
    sources = [i for i, layer in enumerate(layers) if not layer.bottom]
    for i in reversed(sources):
        text = text[:blocks[i][0]] + text[blocks[i][1]:]
    net_param = caffe_pb2.NetParameter()
    text_format.Merge(text, net_param)
    tops = list(net_param.input) + [t for i in sources for t in layers[i].top]
    layers = net_param.layer or net_param.layers
    keep, missing = [], {t for t in tops if t not in shapes}
    for layer in layers:
        if any(b in missing for b in layer.bottom) or _is_loss(layer, caffe_pb2):
            missing.update(layer.top)
        else:
            missing.difference_update(layer.top)
            keep.append(type(layer)())
            keep[-1].CopyFrom(layer)
            if net_param.layer and keep[-1].HasField("detection_output_param"):   # files it writes, not the forward
                keep[-1].detection_output_param.ClearField("save_output_param")
    del layers[:]
    layers.extend(keep)
    v0 = any(layer.HasField("layer") for layer in net_param.layers)
    del net_param.input[:], net_param.input_dim[:], net_param.input_shape[:]
    for name in dict.fromkeys(t for t in tops if t in shapes):
        net_param.input.append(name)
        if v0:      # Caffe's V0 upgrade keeps input_dim only
            net_param.input_dim.extend(int(d) for d in shapes[name])
        else:
            net_param.input_shape.add().dim.extend(int(d) for d in shapes[name])
    return net_param


def _write_v1(net, saved_path: str, v1_path: str) -> None:
    """The blobs of `saved_path` (what net.save wrote) as a legacy V1 caffemodel: NetParameter
    `layers` (V1LayerParameter, type enum) with 4-axis num/channels/height/width blobs, as
    pre-2015 Caffe wrote them. Only layers whose type has a V1 enum can be written."""
    from caffe.proto import caffe_pb2

    v2 = caffe_pb2.NetParameter()
    with open(saved_path, "rb") as f:
        v2.ParseFromString(f.read())
    v1 = caffe_pb2.NetParameter(name=v2.name)
    enum = caffe_pb2.V1LayerParameter.LayerType
    v1_name = {"Convolution": "CONVOLUTION", "Deconvolution": "DECONVOLUTION",
               "InnerProduct": "INNER_PRODUCT"}
    for layer in v2.layer:
        if not layer.blobs:
            continue
        out = v1.layers.add(name=layer.name, type=enum.Value(v1_name[layer.type]))
        for b in layer.blobs:
            dims = [1] * (4 - len(b.shape.dim)) + list(b.shape.dim)
            out.blobs.add(num=dims[0], channels=dims[1], height=dims[2], width=dims[3], data=b.data)
    with open(v1_path, "wb") as f:
        f.write(v1.SerializeToString())


def _run_job(tmp: Path, spec: dict) -> dict:
    import caffe
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    i = spec["index"]
    with np.load(tmp / f"{i}.in.npz") as z:
        inputs = {k: z[k] for k in z.files}
    text = (tmp / f"{i}.prototxt").read_text()
    if spec["deploy"] or spec["fill_seed"] is not None:
        if spec["deploy"]:
            net_param = _deploy_text(text, {k: v.shape for k, v in inputs.items()})
        else:
            net_param = text_format.Merge(text, caffe_pb2.NetParameter())
        if spec["fill_seed"] is not None:
            _inject_fillers(net_param)
        text = text_format.MessageToString(net_param)
        (tmp / f"{i}.prototxt").write_text(text)
    meta = {"prototxt": text}
    if spec["fill_seed"] is not None:
        caffe.set_random_seed(spec["fill_seed"])
    net = caffe.Net(str(tmp / f"{i}.prototxt"), caffe.TEST, stages=spec["stages"],
                    **({"weights": spec["weights"]} if spec["weights"] else {}))
    if spec["fill_seed"] is not None:
        _fill_statistics(net, np.random.RandomState(spec["fill_seed"]))
    for name, factor in spec["scale_weights"].items():
        net.params[name][0].data[...] *= factor
    if spec["save"]:
        net.save(spec["save"])
        if spec["save_v1"]:
            _write_v1(net, spec["save"], spec["save_v1"])
    for name, array in inputs.items():
        if name not in net.blobs:
            raise ValueError(f"input array {name!r}: the net has no such blob")
        net.blobs[name].reshape(*array.shape)
        net.blobs[name].data[...] = array
    net.reshape()
    meta["shapes"] = {n: list(b.data.shape) for n, b in net.blobs.items()}   # as set up (DetectionOutput's
    if spec["forward"]:                                                     # top changes in forward)
        net.forward()
    names = list(net._blob_names)
    meta["layers"] = [(n, layer.type, [names[j] for j in net._bottom_ids(k)],
                       [names[j] for j in net._top_ids(k)])
                      for k, (n, layer) in enumerate(zip(net._layer_names, net.layers))]
    meta["inputs"] = list(net.inputs)
    meta["outputs"] = list(net.outputs)
    keep = [] if not spec["forward"] else names if spec["all_blobs"] else meta["outputs"]
    arrays = {f"blob/{n}": net.blobs[n].data.copy() for n in keep}
    if spec["params"]:
        for k, (n, layer) in enumerate(zip(net._layer_names, net.layers)):
            for j, b in enumerate(layer.blobs):
                arrays[f"param/{n}/{j}"] = b.data.copy()
    np.savez(tmp / f"{i}.out.npz", **arrays)
    return meta


def _child_main(tmp: str) -> None:
    import traceback

    tmp = Path(tmp)
    for spec in json.loads((tmp / "jobs.json").read_text()):
        sys.stderr.write(f"{MARK}{spec['index']}\n")
        sys.stderr.flush()
        try:
            meta = _run_job(tmp, spec)
        except Exception as e:      # pycaffe's own Python errors (a Caffe CHECK aborts instead)
            meta = {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"}
        (tmp / f"{spec['index']}.json").write_text(json.dumps(meta))


if __name__ == "__main__":
    _child_main(sys.argv[1])
