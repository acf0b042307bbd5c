"""The legacy layer type names, read from the V1 LayerType enum of grammars/caffe.proto, whose
values carry their V2 type string (option `v2`) and the V0 type string they replaced (`v0`):
the one table behind both the prototxt upgrade (net.py) and the caffemodel reader."""
from __future__ import annotations

from functools import lru_cache

from .schema import caffe_schema


@lru_cache(maxsize=1)
def _enum():
    return caffe_schema().message("V1LayerParameter").enums["LayerType"]


@lru_cache(maxsize=1)
def v1_types() -> dict[str, str]:
    """V1 enum name -> V2 type string (UpgradeV1LayerType; the forks' values included)."""
    return {name: o["v2"] for name, o in _enum().options.items() if "v2" in o}


@lru_cache(maxsize=1)
def v1_types_by_number() -> dict[int, str]:
    """V1 enum number -> V2 type string; where a fork reuses a BVLC number, BVLC's name wins."""
    out: dict[int, str] = {}
    for name, number in _enum().values.items():
        if name in v1_types():
            out.setdefault(number, v1_types()[name])
    return out


@lru_cache(maxsize=1)
def v0_types() -> dict[str, str]:
    """V0 type string -> V1 enum name (UpgradeV0LayerType)."""
    return {o["v0"]: name for name, o in _enum().options.items() if "v0" in o}
