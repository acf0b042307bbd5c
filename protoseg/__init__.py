"""protoseg: read Caffe nets without Caffe, compute every blob's shape exactly as Caffe does,
and compile them into PyTorch modules."""
__version__ = "0.1.0"
