"""Seeded random nets (tests/random_nets.py) against the reference Caffe.

For each seed Caffe builds the net, fills its weights from injected fillers (tests/caffe_ref.py),
saves the caffemodel and runs it on a seeded input; protoseg must give Caffe's layers, every
blob's shape, and every blob's values (max|diff| <= REL * max|Caffe| + ATOL per blob; a blob rewritten
in place is compared in its last version, as Caffe keeps it). All nets run in one Caffe process.

CI runs COUNT nets; PROTOSEG_RANDOM_NETS=N runs seeds 0..N-1 (the long campaign recorded in
docs/fidelity.md).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from protoseg import compile_net, infer_shapes, load_net

import caffe_ref
from opencv_helpers import forward
from random_nets import random_net

pytestmark = [pytest.mark.caffe, caffe_ref.skip_unless_available()]

REL = 1e-5
ATOL = 1e-6     # blobs that are 0 up to rounding (the mean of a mean-subtracted blob): noise ~1e-7
COUNT = int(os.environ.get("PROTOSEG_RANDOM_NETS", "20"))
SEEDS = range(COUNT)


def _inputs(seed: int, shapes: dict) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-1, 1, s).astype(np.float32) for k, s in shapes.items()}


@pytest.fixture(scope="module")
def caffe_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("random-nets")
    jobs = []
    for seed in SEEDS:
        net = random_net(seed)
        jobs.append(caffe_ref.Job(f"random{seed}", net.text, _inputs(seed, net.inputs), fill_seed=seed,
                                  save=str(tmp / f"random{seed}.caffemodel"), all_blobs=True))
    return {job.id: (job, r) for job, r in zip(jobs, caffe_ref.run(jobs).values())}


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"random{s}") for s in SEEDS])
def test_random_net_matches_caffe(seed, caffe_runs):
    job, r = caffe_runs[f"random{seed}"]
    r.check()
    text = r.prototxt
    shapes = infer_shapes(load_net(text=text, file=job.id))
    caffe_ref.assert_same_net(r, shapes)
    blobs = [b for b in shapes.blobs if b not in r.inputs]
    got = forward(compile_net(text=text, weights=job.save, outputs=blobs), job.inputs, blobs)
    for b in blobs:
        caffe_ref.compare(got[b], r.data[b], f"random{seed}: {b}", REL, atol=ATOL)
