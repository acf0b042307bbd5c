"""protoseg: read Caffe nets without Caffe, compute every blob's shape exactly as Caffe does,
and compile them into PyTorch modules."""
__version__ = "0.1.0"

from .errors import ProtosegError  # noqa: E402
from .net import load_net  # noqa: E402
from .shapes import infer_shapes  # noqa: E402

__all__ = ["ProtosegError", "load_net", "infer_shapes"]
