"""Fuzzing the paths after the parser (issue 12): small corpus nets, mutated so that they still
parse (fields and layers dropped, duplicated, moved; numbers made small, zero or negative; enum
values changed), go through

* compile and port: planned at small input sizes, compiled, run, and ported. A ProtosegError
  says why a net cannot be compiled, or the module runs and every value it computes has the
  shape protoseg inferred; the blobs of the unmutated net either port to the mutated one or a
  WeightsError says why;
* fmt and upgrade: the canonical text (upgraded or not) of a file mutated as
  tests/test_hostile_parse.py mutates them (bytes in comments and strings too), which must read
  back to itself (fmt(fmt(x)) == fmt(x));
* analysis and drawing: the cost, coordinate maps, the viewer's data and the DOT source of a net
  that got its shapes.

Nothing but a ProtosegError may come out. A short seeded run of each is in the default suite
(PROTOSEG_FUZZ_EXAMPLES sets how many); the campaign runs all three on each case:

    python tests/test_fuzz_paths.py CASES SEED
"""
from __future__ import annotations

import functools
import os
import re
import warnings
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoseg import compile_net, plan_net
from protoseg.analysis import coord_maps, costs
from protoseg.compile import check_shapes
from protoseg.draw import dot_source, drawing
from protoseg.errors import InputError, ProtosegError
from protoseg.net import load_net
from protoseg.shapes import infer_shapes
from protoseg.textwriter import format_prototxt
from protoseg.viewer import page_data
from protoseg.weights import state_dict
from test_hostile_parse import (CORPUS_FILES, NUMBER, _spot, drop_field, drop_layer, duplicate_field,
                                duplicate_layer, move_layer, swap_fields)
from test_hostile_parse import mutate as hostile_mutate      # bytes in comments and strings too
from test_optimize import random_blobs

SOURCES = [p for p in CORPUS_FILES if p.stat().st_size < 20_000]
MAX_MEMORY = 512 << 20          # what one case may allocate; a bigger plan is a ResourceError
SIDE = 40                       # spatial sizes above this are cut to it
SMALL = [b"0", b"1", b"2", b"3", b"5", b"7", b"16", b"-1", b"-2", b"0.5", b"1.5"]
ENUMS = [b"MAX", b"AVE", b"STOCHASTIC", b"SUM", b"PROD", b"CAFFE", b"CUDNN", b"DEFAULT", b"LINEAR",
         b"NEAREST", b"TRAIN", b"TEST", b"CORNER", b"CENTER_SIZE", b"ASUM", b"SUMSQ", b"MEAN"]
ENUM = re.compile(rb"\b(" + b"|".join(ENUMS) + rb")\b")


def small_number(rng, data):
    m = _spot(rng, NUMBER, data)
    return data if m is None else data[:m.start()] + rng.choice(SMALL) + data[m.end():]


def other_enum(rng, data):
    m = _spot(rng, ENUM, data)
    return data if m is None else data[:m.start()] + rng.choice(ENUMS) + data[m.end():]


MUTATIONS = [drop_field, duplicate_field, swap_fields, drop_layer, duplicate_layer, move_layer,
             other_enum] + [small_number] * 7     # most cases should still reach the modules


def mutate(rng, data: bytes) -> bytes:
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(MUTATIONS)(rng, data)
    return data


def _shapes(net):
    """The net's shapes; a net with data layers gets (2, 3, 24, 24) for each of their tops."""
    try:
        return infer_shapes(net)
    except InputError:
        return infer_shapes(net, {top: (2, 3, 24, 24) for layer in net.layers if not layer.bottoms
                                  for top in layer.tops})


def _small_inputs(net) -> dict:
    """Every input at batch 1 and spatial sizes of at most SIDE."""
    return {name: (1,) + tuple(shape[1:2]) + tuple(min(d, SIDE) for d in shape[2:])
            for name, shape in _shapes(net).inputs.items()}


@lru_cache(maxsize=None)
def _original_blobs(source: Path):
    try:
        net = load_net(str(source))
        return random_blobs(plan_net(net, _small_inputs(net)))
    except ProtosegError:
        return None


def _property(check):
    """One property over one mutated file: `check(path, ...)` returns how far the case got (for
    the campaign's counts); a ProtosegError is an acceptable end, if it can be printed."""
    @functools.wraps(check)
    def run(path: Path, data: bytes, *args) -> str:
        path.write_bytes(data)
        try:
            return check(path, *args)
        except ProtosegError as e:
            str(e).encode("utf-8")
            return type(e).__name__
    return run


@_property
def compile_and_port(path: Path, source: Path) -> str:
    """Compiled at small sizes, run with the shapes checked, the original's blobs ported."""
    net = load_net(str(path))
    inputs = _small_inputs(net)
    model = compile_net(net, inputs=inputs, max_memory=MAX_MEMORY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checked, bad = check_shapes(model)
    assert not bad, f"executed shapes differ from the inferred ones: {bad}"
    blobs = _original_blobs(source)
    if blobs is not None:
        state_dict(plan_net(net, inputs), blobs)
    return "ran and ported"


@_property
def format_both_ways(path: Path) -> str:
    """fmt and upgrade: canonical text that reads back to itself."""
    for upgrade in (False, True):
        text = format_prototxt(str(path), upgrade=upgrade)
        assert format_prototxt(text=text, upgrade=upgrade) == text, "fmt is not idempotent"
    return "formatted"


@_property
def analyse_and_draw(path: Path) -> str:
    """Cost, coordinate maps, the viewer's data and the DOT source."""
    shapes = _shapes(load_net(str(path)))
    costs(shapes), coord_maps(shapes), page_data(shapes), dot_source(drawing(shapes))
    return "analysed"


def fuzzed(examples: int):
    """A test over seeded mutations of the small corpus nets: `examples` derandomized cases
    (PROTOSEG_FUZZ_EXAMPLES overrides), 30 s each at most; skipped without the corpus."""
    def wrap(test):
        test = given(source=st.sampled_from(SOURCES or [Path(__file__)]),
                     rng=st.randoms(use_true_random=False))(test)
        test = settings(derandomize=True, database=None, deadline=timedelta(seconds=30),
                        max_examples=int(os.environ.get("PROTOSEG_FUZZ_EXAMPLES", examples)),
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(test)
        return pytest.mark.skipif(not SOURCES, reason="../shared/corpus is not present")(test)
    return wrap


@fuzzed(60)
def test_mutated_nets_compile_run_and_port_or_fail_with_a_protoseg_error(tmp_path_factory, source, rng):
    compile_and_port(tmp_path_factory.getbasetemp() / "fuzz-compile.prototxt",
                     mutate(rng, source.read_bytes()), source)


@fuzzed(100)
def test_mutated_nets_format_idempotently_or_fail_with_a_protoseg_error(tmp_path_factory, source, rng):
    format_both_ways(tmp_path_factory.getbasetemp() / "fuzz-fmt.prototxt",
                     hostile_mutate(rng, source.read_bytes()))


@fuzzed(100)
def test_mutated_nets_analyse_and_draw_or_fail_with_a_protoseg_error(tmp_path_factory, source, rng):
    analyse_and_draw(tmp_path_factory.getbasetemp() / "fuzz-analysis.prototxt", mutate(rng, source.read_bytes()))


def campaign(cases: int, seed: int) -> None:
    """Every small corpus net, `cases` mutations from `seed`, each through the three paths; prints
    how far the cases got and every failure that is not a ProtosegError, grouped, with the file
    that shows it."""
    import collections
    import random
    import tempfile
    import traceback
    rng = random.Random(seed)
    reached, found = collections.Counter(), collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.prototxt"
        for case in range(cases):
            source = rng.choice(SOURCES)
            data, hostile = mutate(rng, source.read_bytes()), hostile_mutate(rng, source.read_bytes())
            for name, check in (("compile", lambda: compile_and_port(path, data, source)),
                                ("fmt", lambda: format_both_ways(path, hostile)),
                                ("analysis", lambda: analyse_and_draw(path, data))):
                try:
                    reached[f"{name}: {check()}"] += 1
                except Exception as e:      # noqa: BLE001 -- what the campaign is looking for
                    where = traceback.extract_tb(e.__traceback__)[-1]
                    key = (f"{name}: {type(e).__name__} at {Path(where.filename).name}:{where.lineno}: "
                           f"{str(e)[:160]}")
                    found[key].append((case, source.name))
                    keep = Path(d).parent / f"protoseg-fuzz-{name}-{seed}-{case}.prototxt"
                    keep.write_bytes(path.read_bytes())
            if case % 500 == 0:
                print(f"{case} cases, {len(found)} kinds of failure", flush=True)
    print(f"{cases} cases from seed {seed}: {sum(map(len, found.values()))} failures, {len(found)} kinds")
    for key, n in sorted(reached.items()):
        print(f"  {n:6d} {key}")
    for key, hits in sorted(found.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(hits)}x {key}  (first: case {hits[0][0]}, {hits[0][1]})")


if __name__ == "__main__":
    import sys
    campaign(int(sys.argv[1]), int(sys.argv[2]))
