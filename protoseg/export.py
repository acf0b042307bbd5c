"""`protoseg compile -o DIR`: the standalone module file, and with weights its safetensors beside
it, written as one transaction (both files or neither). No torch."""
from __future__ import annotations

import os

from .backends.source import generate_code
from .files import Outputs, make_folder, write_text
from .plan import Plan, plan_net
from .weights import metadata, state_dict, write_state_dict

__all__ = ["export_module", "write_module"]


def write_module(plan: Plan, out_dir, state: dict | None = None, *, prototxt=None,
                 caffemodel=None) -> list[str]:
    """Write DIR/<net>.py (and DIR/<net>.safetensors when `state` is given) for a plan; returns
    the paths written. `prototxt` and `caffemodel` are recorded in the safetensors metadata and
    are never overwritten."""
    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be a protoseg Plan, not {type(plan).__name__}")
    code = generate_code(plan)
    folder = make_folder(out_dir)
    stem = os.path.join(folder, plan.file_stem)
    paths = [stem + ".py"]
    with Outputs() as out:
        out.add(paths[0], lambda tmp: write_text(tmp, code), protect=(prototxt,))
        if state is not None:
            paths.append(write_state_dict(state, stem + ".safetensors", outputs=out,
                                          metadata=metadata(plan, prototxt, caffemodel),
                                          protect=(prototxt, caffemodel)))
    return paths


def export_module(prototxt=None, out_dir=".", weights=None, inputs: dict | None = None,
                  outputs=None, *, text: str | None = None, phase: str = "TEST", level: int = 0,
                  stages=(), strict: bool = True) -> list[str]:
    """Plan a net and write its standalone module file into `out_dir` (with `weights`, a
    .caffemodel path, or blobs in the prototxt, also the safetensors file for it, checked first:
    a mismatch writes nothing). Returns the paths written."""
    plan = plan_net(prototxt, inputs, outputs, text=text, phase=phase, level=level, stages=stages)
    state = state_dict(plan, weights, strict=strict)
    if weights is None and not state:   # no caffemodel, and no blobs in the prototxt
        state = None
    def path(x):
        return x if isinstance(x, (str, os.PathLike)) else None
    return write_module(plan, out_dir, state, prototxt=path(prototxt), caffemodel=path(weights))
