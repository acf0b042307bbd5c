"""Data layers: the sources of a net's blobs (caffe-semantics.md §2.1).

Follows input_layer.cpp, dummy_data_layer.cpp, data_layer.cpp, image_data_layer.cpp,
memory_data_layer.cpp, window_data_layer.cpp, hdf5_data_layer.cpp and the forks' ImageSegData
(DeepLab), DenseImageData (SegNet) and AnnotatedData (SSD). A top whose shape the params do not
fix is None: the user gives it with --input.
"""
from __future__ import annotations

from ..geometry import INT_MAX
from ..spec import LayerSpec, free
from ...text import fmt_shape


def _blob_shape(ctx, bs) -> tuple:
    """A BlobShape's dims, each checked (Blob::Reshape: a dim is a C int; protoseg also refuses 0,
    which Caffe allows only for an empty blob)."""
    dims = tuple(bs.get("dim"))
    for j, d in enumerate(dims):
        if not 1 <= d <= INT_MAX:
            ctx.fail(f"dim {d}: a blob dimension must be between 1 and {INT_MAX:,}",
                     span=bs.span_of("dim", j))
    return dims


def input_shape(ctx, bottoms):
    """InputParameter: no shape (deferred), one shape for every top, or one per top."""
    shapes = ctx.p.get("shape") if ctx.p is not None else []
    n = len(ctx.layer.tops)
    if not shapes:
        return [None] * n
    if len(shapes) not in (1, n):
        ctx.fail(f"input_param has {len(shapes)} shapes for {n} tops: give 1 (shared) or {n}",
                 "shape")
    out = [_blob_shape(ctx, shapes[0 if len(shapes) == 1 else i]) for i in range(n)]
    if len(shapes) == 1 and n > 1:
        ctx.note(f"one shape {fmt_shape(out[0])} shared by the {n} tops")
    return out


def dummy_data_shape(ctx, bottoms):
    p, n = ctx.p, len(ctx.layer.tops)
    shapes = p.get("shape")
    legacy = [p.get(k) for k in ("num", "channels", "height", "width")]
    if shapes and any(legacy):
        ctx.fail("dummy_data_param gives both shape and num/channels/height/width", "shape")
    if shapes:
        if len(shapes) not in (1, n):
            ctx.fail(f"{len(shapes)} shapes for {n} tops: give 1 or {n}", "shape")
        return [_blob_shape(ctx, shapes[0 if len(shapes) == 1 else i]) for i in range(n)]
    for name, values in zip(("num", "channels", "height", "width"), legacy):
        if len(values) not in (1, n):
            ctx.fail(f"{name} has {len(values)} values for {n} tops: give 1 or {n}", name)
    return [tuple(v[0 if len(v) == 1 else i] for v in legacy) for i in range(n)]


def _crop(ctx):
    tp = ctx.params.get("transform_param")
    return tp.get("crop_size")


def data_shape(ctx, bottoms):
    """Data (LMDB/LevelDB): C, H, W come from the first record of the database, which protoseg
    does not read: top 0 needs --input; the label top is (batch_size,)."""
    batch = ctx.p.get("batch_size")
    out = [None]
    if len(ctx.layer.tops) > 1:
        out.append((batch,))
    crop = _crop(ctx) or ctx.p.get("crop_size")
    ctx.note(f"batch {batch}" + (f", crop {crop}x{crop}" if crop else "") +
             "; channels and size come from the database: give them with --input")
    return out


def image_data_shape(ctx, bottoms):
    """ImageData: (batch_size, is_color ? 3 : 1, H, W) with H, W = crop_size, else new_height/
    new_width when both are set, else the first image's size (unknown: --input)."""
    p = ctx.p
    batch = p.get("batch_size")
    channels = 3 if p.get("is_color") else 1
    crop = _crop(ctx) or p.get("crop_size")
    nh, nw = p.get("new_height"), p.get("new_width")
    if (nh > 0) != (nw > 0):
        ctx.fail("new_height and new_width must be set together", "new_height")
    if crop:
        hw = (crop, crop)
    elif nh > 0:
        hw = (nh, nw)
    else:
        hw = None
    out = [(batch, channels) + hw if hw else None]
    out += [(batch,)] * (len(ctx.layer.tops) - 1)
    return out


def image_seg_data_shape(ctx, bottoms):
    """DeepLab ImageSegData: image (batch, 3, crop, crop), label (batch, 1, crop, crop),
    optional data_dim (batch, 1, 1, 2). Without crop_size the size comes from the images."""
    p = ctx.p
    batch = p.get("batch_size")
    crop = _crop(ctx)
    channels = 3 if p.get("is_color") else 1
    nh, nw = p.get("new_height"), p.get("new_width")
    hw = (crop, crop) if crop else ((nh, nw) if nh > 0 and nw > 0 else None)
    tops = [(batch, channels) + hw if hw else None]
    if len(ctx.layer.tops) > 1:
        tops.append((batch, 1) + hw if hw else None)
    if len(ctx.layer.tops) > 2:
        tops.append((batch, 1, 1, 2))
    return tops


def dense_image_data_shape(ctx, bottoms):
    """SegNet DenseImageData: image (batch, C, H, W), label (batch, 1, H, W); H, W from
    crop_height/crop_width, else new_height/new_width, else the images (--input)."""
    p = ctx.p
    batch = p.get("batch_size")
    channels = 3 if p.get("is_color") else 1
    if p.get("crop_height") and p.get("crop_width"):
        hw = (p.get("crop_height"), p.get("crop_width"))
    elif p.get("new_height") and p.get("new_width"):
        hw = (p.get("new_height"), p.get("new_width"))
    else:
        hw = None
    tops = [(batch, channels) + hw if hw else None]
    if len(ctx.layer.tops) > 1:
        tops.append((batch, 1) + hw if hw else None)
    return tops


def memory_data_shape(ctx, bottoms):
    p = ctx.p
    b = p.get("batch_size")
    return [(b, p.get("channels"), p.get("height"), p.get("width")), (b,)][:len(ctx.layer.tops)]


def window_data_shape(ctx, bottoms):
    p = ctx.p
    crop = _crop(ctx) or p.get("crop_size")
    b = p.get("batch_size")
    if not crop:
        ctx.fail("WindowData needs crop_size > 0", "crop_size")
    return [(b, 3, crop, crop), (b,)][:len(ctx.layer.tops)]


def unknown_shape(ctx, bottoms):
    """HDF5Data, a Python data layer, AnnotatedData...: the data's shape is only known at run time."""
    return [None] * len(ctx.layer.tops)


def annotated_data_shape(ctx, bottoms):
    """SSD AnnotatedData: image size from transform_param.resize_param (height, width) when set."""
    tp = ctx.params.get("transform_param")
    batch = ctx.p.get("batch_size") if ctx.p is not None else None
    out = [None] * len(ctx.layer.tops)
    if tp.has("resize_param") and batch:
        rp = tp.get("resize_param")
        if rp.get("height") and rp.get("width"):
            out[0] = (batch, 3, rp.get("height"), rp.get("width"))
    return out


SPECS = [
    LayerSpec("Input", input_shape, param="input_param", bottoms=(0, 0), tops=(1, None),
              source=True, cost=free),
    LayerSpec("DummyData", dummy_data_shape, param="dummy_data_param", bottoms=(0, 0),
              tops=(1, None), source=True, cost=free),
    LayerSpec("Data", data_shape, param="data_param", bottoms=(0, 0), tops=(1, 2), source=True,
              cost=free),
    LayerSpec("ImageData", image_data_shape, param="image_data_param", bottoms=(0, 0),
              tops=(1, 2), source=True, cost=free),
    LayerSpec("ImageSegData", image_seg_data_shape, param="image_data_param", bottoms=(0, 0),
              tops=(1, 3), source=True, fork="deeplab", cost=free),
    LayerSpec("DenseImageData", dense_image_data_shape, param="dense_image_data_param",
              bottoms=(0, 0), tops=(1, 2), source=True, cost=free),
    LayerSpec("MemoryData", memory_data_shape, param="memory_data_param", bottoms=(0, 0),
              tops=(1, 2), source=True, cost=free),
    LayerSpec("WindowData", window_data_shape, param="window_data_param", bottoms=(0, 0),
              tops=(1, 2), source=True, cost=free),
    LayerSpec("HDF5Data", unknown_shape, param="hdf5_data_param", bottoms=(0, 0),
              tops=(1, None), source=True, cost=free),
    LayerSpec("AnnotatedData", annotated_data_shape, param="data_param", bottoms=(0, 0),
              tops=(1, 2), source=True, fork="ssd", cost=free),
]
