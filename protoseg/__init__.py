"""protoseg: read Caffe nets without Caffe, compute every blob's shape exactly as Caffe does,
and compile them into PyTorch modules.

`import protoseg` imports neither numpy nor torch: the functions that need them are loaded on
first use.
"""
__version__ = "0.1.0"

from .errors import ProtosegError  # noqa: E402
from .net import load_net  # noqa: E402
from .shapes import infer_shapes  # noqa: E402

__all__ = ["ProtosegError", "load_net", "infer_shapes", "plan_net", "compile_net",
           "export_module", "export_onnx", "load_caffemodel", "read_caffemodel", "port", "state_dict",
           "segment_images"]

_LAZY = {
    "plan_net": "plan", "compile_net": "compile", "export_module": "export", "export_onnx": "export",
    "load_caffemodel": "caffemodel", "read_caffemodel": "caffemodel", "port": "weights",
    "state_dict": "weights", "segment_images": "segmentation",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'protoseg' has no attribute {name!r}")
