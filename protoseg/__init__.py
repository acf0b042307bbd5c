"""protoseg: read Caffe nets without Caffe, compute every blob's shape exactly as Caffe does,
and compile them into PyTorch modules."""
__version__ = "0.1.0"

from .errors import ProtosegError  # noqa: E402
from .net import load_net  # noqa: E402
from .shapes import infer_shapes  # noqa: E402

__all__ = ["ProtosegError", "load_net", "infer_shapes", "load_caffemodel", "read_caffemodel",
           "compile_net"]


_LAZY = {   # loaded on first use: `import protoseg` and `protoseg shapes` need neither numpy nor torch
    "compile_net": "compile", "load_caffemodel": "caffemodel",
    "read_caffemodel": "caffemodel",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'protoseg' has no attribute {name!r}")
