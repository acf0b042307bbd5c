"""`protoseg inspect`: a caffemodel's layers, blob shapes, dtypes and parameter counts."""
from __future__ import annotations

from ..text import dims, human_bytes
from .output import table


def register(sub):
    p = sub.add_parser("inspect", help="list a .caffemodel's layers, blob shapes, dtypes and "
                                       "parameter counts")
    p.add_argument("caffemodel")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    from ..caffemodel import read_caffemodel
    print(format_inspect(read_caffemodel(args.caffemodel, progress=False if args.quiet else None)))
    return 0


def format_inspect(model) -> str:
    """An aligned table of layers, types, blob shapes, dtypes and parameter counts, with totals."""
    rows = []
    legacy = False
    for layer in model.layers:
        shapes = [dims(b.shape) + ("*" if b.legacy else "") for b in layer.blobs]
        legacy |= any(b.legacy for b in layer.blobs)
        dtypes = sorted({str(b.data.dtype) for b in layer.blobs})
        params = sum(int(b.data.size) for b in layer.blobs)
        rows.append((layer.name, layer.type or "-", ", ".join(shapes) or "-",
                     "/".join(dtypes) or "-", f"{params:,}"))
    blobs = [b for layer in model.layers for b in layer.blobs]
    params = sum(int(b.data.size) for b in blobs)
    nbytes = sum(int(b.data.nbytes) for b in blobs)
    with_blobs = sum(1 for layer in model.layers if layer.blobs)
    out = [f"{model.path}: format {model.format}, net '{model.name}', "
           f"{model.size:,} bytes ({human_bytes(model.size)})", "",
           table(("layer", "type", "blobs", "dtype", "params"), rows, right=(4,)), "",
           f"total: {len(model.layers)} layers ({with_blobs} with blobs), {len(blobs)} blobs, "
           f"{params:,} parameters ({human_bytes(nbytes)})"]
    if legacy:
        out.append("* legacy num/channels/height/width shape")
    return "\n".join(out)
